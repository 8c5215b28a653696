# Shell helpers that the benchmark and image scripts share. Source it from the repository root
# (`source scripts/lib/common.sh`); it defines functions only and runs nothing.

# A free TCP port on 127.0.0.1, chosen by the kernel (another process could still take it before the
# caller binds it; the scripts bind right away).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The median of its arguments (numbers): the middle one, or the mean of the two middle ones.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
