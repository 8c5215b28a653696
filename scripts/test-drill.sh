#!/usr/bin/env bash
# The attack drill end to end (SPEC §7.1), in its quick form (every time constant ×0.1), on the seed-sized
# overlay deploy/k8s/overlays/seed-attack exactly as deployed (CPU factor 1):
#
#   1. `fraudops drill --quick`: replicas under real cgroup CPU quotas, the seeds' phases (50 → 200 → 500 →
#      1500 TPS) taking the deployed HPA 4 → 5 → 6 with the behaviour's spacing, the deployed rules firing
#      AdminNotification_MaxScaleHighCPU only after the sixth replica runs, the admin webhook holding exactly
#      that one notification, and a capacity statement (CPU per prediction; the rates that cross the HPA
#      target and the admin alert's line, for seed-attack and production) with admin_alert_tps >
#      hpa_scale_up_tps > 0;
#   2. `fraudops drill --quick --negative`: the load held at the profile's 200 TPS, below hpa_scale_up_tps;
#      the alert never even goes pending and nothing reaches the admin webhook.
#
# The drills judge themselves (exit status); this script checks the same outcomes again from the report
# files alone, and that nothing was left running or mounted. About 8 minutes (the deployed rules' 2-minute
# rate window is not scaled, so each drill needs ~3.5 minutes of load).
#
#   scripts/test-drill.sh [REPORT_DIR]          (default: a temporary directory)
#   scripts/test-drill.sh --full [REPORT_DIR]   the full drill instead (real time constants, ~35 minutes,
#                                               then the scale-down back to 4), for scripts/test.sh --long
#
# Needs root (cgroups), kubectl (renders the overlay), prometheus, prometheus-alertmanager (installed here
# if missing) and tansu (scripts/ensure/tansu.sh). DRILL_ALLOW_ACCOUNTING=1 accepts a machine without
# writable cgroups (the drill then says so in its report and CPU is not really limited).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # target_dir
full=0
if [[ "${1:-}" == "--full" ]]; then
  full=1
  shift
fi

scripts/ensure/apt.sh prometheus:prometheus promtool:prometheus prometheus-alertmanager:prometheus-alertmanager
command -v kubectl >/dev/null || { echo "test-drill: kubectl is required (kubectl kustomize renders the overlay)" >&2; exit 1; }
TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
export TANSU_BIN

# Release build: the drill's CPU factor is sized for it (deploy/README.md, README "Attack drill").
cargo build --quiet --release --locked -p fraudops-cli
target="$(target_dir)"
# A private copy: a concurrent build replacing target/release/fraudops must not change what new replicas run.
bin_dir="$(mktemp -d "${TMPDIR:-/tmp}/fraudops-drill-bin.XXXXXX")"
cp "$target/release/fraudops" "$bin_dir/fraudops"
out="${1:-$(mktemp -d "${TMPDIR:-/tmp}/fraudops-drill-test.XXXXXX")}"
mkdir -p "$out"
trap 'rm -rf "$bin_dir"' EXIT

failed=0
# cgroup_dirs: the drill's groups that exist now (another drill's may exist before this one starts).
cgroup_dirs() {
  local d
  for d in /sys/fs/cgroup/*/fraudops-drill-* /sys/fs/cgroup/fraudops-drill-*; do
    [[ -e "$d" ]] && echo "$d"
  done
  return 0
}
drill() {
  local name="$1"; shift
  echo "--- fraudops drill $* --report $out/$name"
  local t0=$SECONDS before after
  before="$(cgroup_dirs)"
  if "$bin_dir/fraudops" drill "$@" --report "$out/$name"; then
    echo "--- $name: the drill passed its own checks ($((SECONDS - t0)) s)"
  else
    echo "FAIL: fraudops drill $* exited non-zero; see $out/$name/summary.md" >&2
    failed=1
  fi
  # Nothing left behind: no child of the drill, no cgroup of the drill.
  if pgrep -f "$bin_dir/fraudops" >/dev/null; then
    echo "FAIL: processes of the drill are still running:" >&2
    pgrep -af "$bin_dir/fraudops" >&2
    failed=1
  fi
  after="$(cgroup_dirs)"
  if [[ -n "$(comm -13 <(echo "$before" | sort) <(echo "$after" | sort))" ]]; then
    echo "FAIL: cgroups of the drill were not removed:" >&2
    comm -13 <(echo "$before" | sort) <(echo "$after" | sort) >&2
    failed=1
  fi
}

if ((full)); then
  drill full
else
  drill quick --quick
  drill negative --quick --negative
fi

# The outcomes again, from the files alone.
python3 - "$out" "${DRILL_ALLOW_ACCOUNTING:-0}" "$full" <<'EOF' || failed=1
import csv, json, sys
from pathlib import Path

out, allow_accounting, full = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3] == "1"
positive = "full" if full else "quick"
problems = []
COLUMNS = ["t_seconds", "target_tps", "achieved_tps", "p95_ms", "replicas_current", "replicas_desired",
           "cpu_ratio_max", "alert_state"]
TITLE = "[FIRING:1] AdminNotification_MaxScaleHighCPU"
RESOLVED = "[RESOLVED] AdminNotification_MaxScaleHighCPU"

def load(name):
    d = out / name
    for f in ["series.csv", "replicas.csv", "chart.svg", "summary.md", "summary.json", "attack-results.json"]:
        if not (d / f).is_file() or (d / f).stat().st_size == 0:
            problems.append(f"{name}: {f} is missing or empty")
    try:
        summary = json.loads((d / "summary.json").read_text())
        rows = list(csv.DictReader((d / "series.csv").open()))
        header = (d / "series.csv").read_text().splitlines()[0].split(",")
    except (OSError, ValueError, IndexError) as e:
        problems.append(f"{name}: unreadable report: {e}")
        return None, []
    if header[:len(COLUMNS)] != COLUMNS:
        problems.append(f"{name}: series.csv columns {header[:len(COLUMNS)]} != {COLUMNS}")
    if not (d / "chart.svg").read_text().lstrip().startswith("<svg"):
        problems.append(f"{name}: chart.svg is not an SVG")
    if summary["cpu_mechanism"] == "accounting" and not allow_accounting:
        problems.append(f"{name}: CPU was not limited (accounting fallback)")
    # The deployed seed-sized overlay, unscaled: the drill reproduces a deployment that exists.
    if summary.get("overlay") != "k8s/overlays/seed-attack" or summary.get("cpu_factor") != 1.0 or summary.get("cpu_scaled"):
        problems.append(f"{name}: ran overlay {summary.get('overlay')!r} at CPU factor {summary.get('cpu_factor')}, "
                        "not k8s/overlays/seed-attack at 1")
    cap = summary.get("capacity") or {}
    names = [o.get("overlay") for o in cap.get("overlays", [])]
    if not (cap.get("cpu_seconds_per_request", 0) > 0 and names == ["k8s/overlays/seed-attack", "k8s/overlays/production"]
            and all(o["admin_alert_tps"] > o["hpa_scale_up_tps"] > 0 for o in cap["overlays"])):
        problems.append(f"{name}: capacity statement missing or inconsistent: {cap}")
    return summary, rows

s, rows = load(positive)
if s:
    ups = [e for e in s["scaling_events"] if e["to"] > e["from"]]
    if [(e["from"], e["to"]) for e in ups] != [(4, 5), (5, 6)]:
        problems.append(f"{positive}: scale-ups {[(e['from'], e['to']) for e in ups]} are not 4→5, 5→6")
    else:
        period = max(p["period"] for p in s["hpa"]["behavior"]["scale_up"]["policies"]) * s["time_scale"]
        gap = ups[1]["t_seconds"] - ups[0]["t_seconds"]
        if gap < period - 0.05:
            problems.append(f"{positive}: 5→6 came {gap:.1f} s after 4→5, less than the scaled policy period {period:.1f} s")
        at_six = ups[1]["t_seconds"]
        early = [r for r in rows if r["alert_state"] != "inactive" and float(r["t_seconds"]) < at_six]
        if early:
            problems.append(f"{positive}: the admin alert was {early[0]['alert_state']} at t={early[0]['t_seconds']} before the 6th replica")
        not_at_max = [r for r in rows if r["alert_state"] != "inactive" and int(r["replicas_current"]) < 6]
        if not_at_max:
            problems.append(f"{positive}: the admin alert was active with {not_at_max[0]['replicas_current']} replicas")
    if not any(r["alert_state"] == "firing" for r in rows):
        problems.append(f"{positive}: series.csv never shows the admin alert firing")
    if s["alert_firing_s"] is None or s["max_replicas_ready_s"] is None or s["alert_firing_s"] < s["max_replicas_ready_s"]:
        problems.append(f"{positive}: firing at {s['alert_firing_s']} s, 6th replica ready at {s['max_replicas_ready_s']} s")
    admin = s["admin_notifications"]
    titles = [n["body"].get("attachments", [{}])[0].get("title", "") for n in admin if isinstance(n["body"], dict)]
    # The full drill stops the load and watches the scale-down, so Alertmanager may also send the alert's
    # resolution (send_resolved), after the firing notification; nothing else may reach the admin.
    allowed = [TITLE] + ([RESOLVED] if full else [])
    firing = [t for t in titles if t.startswith(TITLE)]
    if (len(titles) != len(admin) or len(firing) != 1 or not titles[0].startswith(TITLE)
            or not all(any(t.startswith(a) for a in allowed) for t in titles) or len(titles) > len(allowed)):
        problems.append(f"{positive}: the admin webhook holds {len(admin)} notification(s) {titles}, not exactly one {TITLE!r}"
                        + (f" (then at most {RESOLVED!r})" if full else ""))
    payload = out / positive / "admin-notification.json"
    if not payload.is_file() or TITLE not in payload.read_text():
        problems.append(f"{positive}: admin-notification.json does not hold the notification")
    print(f"{positive}: 4→5 at {ups[0]['t_seconds']:.1f} s, 5→6 at {ups[-1]['t_seconds']:.1f} s, "
          f"alert pending {s['alert_pending_s']} s, firing {s['alert_firing_s']} s, admin notified {s['notification_s']} s"
          if len(ups) >= 2 else f"{positive}: no scaling")
    cap = s.get("capacity") or {}
    for o in cap.get("overlays", []):
        print(f"{positive}: capacity {o['overlay']}: {cap['cpu_seconds_per_request'] * 1e6:.0f} µs/prediction, "
              f"HPA target crossed at {o['hpa_scale_up_tps']:.0f} tx/s, admin alert's line at {o['admin_alert_tps']:.0f} tx/s")
    if cap and s.get("attack"):
        listed = [p for p in s["attack"].get("phases", []) if p.get("target_rate")]
        if listed and max(p["target_rate"] for p in listed) > 1500:
            problems.append(f"{positive}: the attack escalated past the seeds' 1500 tx/s: {[p['target_rate'] for p in listed]}")

s, rows = (None, []) if full else load("negative")
if s:
    active = [r for r in rows if r["alert_state"] != "inactive"]
    if active:
        problems.append(f"negative: the admin alert was {active[0]['alert_state']} at t={active[0]['t_seconds']}")
    if s["admin_notifications"]:
        problems.append(f"negative: the admin webhook received {len(s['admin_notifications'])} notification(s)")
    peak = max((float(r["target_tps"]) for r in rows), default=0)
    if s.get("capacity") and peak >= s["capacity"]["hpa_scale_up_tps"]:
        problems.append(f"negative: held {peak} tx/s, not below hpa_scale_up_tps {s['capacity']['hpa_scale_up_tps']:.0f}")
    print(f"negative: {len(rows)} samples over {s['duration_s']:.0f} s at up to {peak:.0f} tx/s, admin alert never active")

for p in problems:
    print("FAIL:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

if ((failed)); then
  echo "test-drill: FAILED; reports kept in $out" >&2
  exit 1
fi
echo "test-drill: passed; reports in $out"
