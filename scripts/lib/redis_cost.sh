# What the feature store costs Redis, from INFO commandstats (sourced by bench-store.sh and eval-online.sh).
#
# redis_command_usec PORT CALLS → "<µs inside the window script per EVALSHA> <µs of every command per call>"
#
# Redis counts a script's own commands in commandstats as well as in the script's time, so the second
# number adds the top-level commands only: the scripts (EVALSHA/EVAL) and what clients send outside them
# (score recording: HSET, EXPIRE; labels: HMGET; evaluation samples: HSET, EXPIRE, ZADD…), leaving out the
# commands the scripts run inside (they use PEXPIRE, never EXPIRE, so the two are told apart). The few
# ZADD/ZREM/DEL the evaluation's day index sends outside scripts (one per batch) are left out with them.
redis_command_usec() {
  local port="$1" calls="$2"
  redis-cli -p "$port" info commandstats | tr -d '\r' | awk -F'[:,=]' -v n="$calls" '
    BEGIN { split("zrange zremrangebyscore zadd zrem zcount zscore exists del zunionstore pexpire", inner, " ")
            for (i in inner) skip["cmdstat_" inner[i]] = 1 }
    /^cmdstat_/ { if (!($1 in skip)) all += $5 }
    /^cmdstat_evalsha:/ { script = $7 }
    END { printf "%.1f %.1f\n", script, (n > 0 ? all / n : 0) }'
}
