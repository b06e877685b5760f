#!/usr/bin/env bash
# Refreshes tests/fixtures/realcalico/<RELEASE>/ from a run of the realcalico harness: Calico's own tc
# programs, loaded into a private bpffs and driven with real traffic (see ../shared/realcalico/README.md).
#
#   sudo tests/tools/capture-realcalico.sh [-r RELEASE] [-H HARNESS] [-P]
#     RELEASE  a directory under HARNESS/objects (87c15906f20c, the default, or v3.30.7)
#     HARNESS  the harness directory; default ../shared/realcalico from the repository root
#     -P       after the harness's traffic, run tests/tools/realcalico-probes.py (Test-BpfFlow's ground
#              truth: a service without backends, one with a missing backend, a NodePort, a blackhole
#              route) and write tests/fixtures/realcalico-probes/<RELEASE>/ instead, maps as the probes
#              left them and probes.json
#
# It runs HARNESS/setup.sh into a temporary directory, copies what setup.sh wrote, adds what the tests
# need to rebuild the maps' descriptions without a kernel (capture.json: bpftool map show of every pin,
# the possible CPUs, the kernel, the objects' BUILD-INFO), and always runs HARNESS/teardown.sh, also
# when something fails or the script is interrupted. Nothing is written outside the temporary
# directory, the harness's own names (/tmp/rcal-*, rcal-* interfaces and netns) and the fixture folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REL=87c15906f20c
HARNESS=$ROOT/../shared/realcalico
PROBES=
while getopts r:H:P o; do
  case $o in
    r) REL=$OPTARG ;;
    H) HARNESS=$OPTARG ;;
    P) PROBES=1 ;;
    *) echo "usage: $0 [-r RELEASE] [-H HARNESS] [-P]" >&2; exit 2 ;;
  esac
done
HARNESS=$(cd "$HARNESS" && pwd)
[ "$(id -u)" = 0 ] || { echo "capture-realcalico.sh: run as root (the harness loads BPF programs)" >&2; exit 1; }
[ -x "$HARNESS/setup.sh" ] || { echo "capture-realcalico.sh: no harness at $HARNESS" >&2; exit 1; }
[ -d "$HARNESS/objects/$REL" ] || { echo "capture-realcalico.sh: $HARNESS/objects/$REL does not exist" >&2; exit 1; }
DEST=$ROOT/tests/fixtures/realcalico/$REL
[ -z "$PROBES" ] || DEST=$ROOT/tests/fixtures/realcalico-probes/$REL
LOCK=/tmp/rcal.lock
[ ! -e "$LOCK" ] || { echo "capture-realcalico.sh: another harness run holds $LOCK ($(cat "$LOCK/owner" 2>/dev/null)); wait for it or run its teardown.sh" >&2; exit 1; }
OUT=$(mktemp -d /tmp/rcal-capture.XXXXXX)

# Tears down only a run this script started (the lock names our OUTDIR), so a run someone else started
# between the check above and setup.sh's own lock is never touched.
cleanup() {
  local rc=$?
  if [ "$(cat "$LOCK/outdir" 2>/dev/null)" = "$OUT" ]; then
    "$HARNESS/teardown.sh" "$OUT" --rm >/dev/null 2>&1 || { echo "capture-realcalico.sh: teardown.sh failed; run $HARNESS/teardown.sh $OUT by hand" >&2; rc=1; }
  fi
  rm -rf "$OUT"
  [ -z "$MOUNTED_TRACEFS" ] || umount "$TRACING" 2>/dev/null || true
  exit $rc
}
MOUNTED_TRACEFS=
trap cleanup EXIT
trap 'exit 130' INT TERM

# setup.sh copies Calico's debug lines from $TRACING/trace; without tracefs there the copy is empty.
# Mounted here only when it is not, and unmounted again at the end.
TRACING=/sys/kernel/tracing MOUNTED_TRACEFS=
if [ ! -e "$TRACING/trace" ]; then
  mount -t tracefs nodev "$TRACING" && MOUNTED_TRACEFS=1
fi

# The trace buffer is shared and is not cleared here: lines older than this run (a trace-clock
# timestamp before this moment) are dropped from trace.txt below.
STARTED=$(cut -d' ' -f1 /proc/uptime)
COMMAND="$HARNESS/setup.sh -r $REL $OUT"
echo "== $COMMAND"
"$HARNESS/setup.sh" -r "$REL" "$OUT"
PIN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pin_path"])' "$OUT/setup.json")
[ -z "$PROBES" ] || python3 "$ROOT/tests/tools/realcalico-probes.py" "$OUT"

# What the dumps alone do not say: each pin's type and sizes, and the possible CPUs (per-CPU values).
python3 - "$OUT" "$PIN" "$HARNESS/objects/$REL" "$REL" "$COMMAND" "$STARTED" <<'PY'
import datetime, hashlib, json, os, platform, re, subprocess, sys, time
out, pin, obj, rel, command, started = sys.argv[1:7]
# The clocks as the maps were dumped (a moment ago, by setup.sh): the tests take ages relative to this.
clock = {"monotonic_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC), "realtime_ns": time.time_ns()}
trace = os.path.join(out, "trace.txt")
lines = open(trace, errors="replace").read().splitlines(True) if os.path.exists(trace) else []
ts = lambda l: float(m.group(1)) if (m := re.search(r"\]\s+\S*\s*(\d+\.\d+):", l)) else -1.0
kept = [l for l in lines if ts(l) >= float(started)]
open(trace, "w").write("".join(kept))
maps = {}
for name in sorted(os.listdir(pin)):
    r = subprocess.run(["bpftool", "-j", "map", "show", "pinned", os.path.join(pin, name)], capture_output=True, text=True)
    if r.returncode == 0:
        m = json.loads(r.stdout)
        maps[name] = {k: m[k] for k in ("type", "bytes_key", "bytes_value", "max_entries", "flags") if k in m}
info = dict(l.split("=", 1) for l in open(os.path.join(obj, "BUILD-INFO")).read().splitlines() if "=" in l)
cap = {
    "release": rel,
    "calico_commit": info.get("calico_commit"),
    "calico_tag": info.get("calico_tag"),
    "libbpf": info.get("libbpf"),
    "build_info_sha256": hashlib.sha256(open(os.path.join(obj, "BUILD-INFO"), "rb").read()).hexdigest(),
    "kernel": platform.release(),
    "machine": platform.machine(),
    "possible_cpus": open("/sys/devices/system/cpu/possible").read().strip(),
    "captured": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "command": command,
    "clock": clock,
    "trace_lines": {"kept": len(kept), "dropped_older_than_run": len(lines) - len(kept)},
    "maps": maps,
}
json.dump(cap, open(os.path.join(out, "capture.json"), "w"), indent=1)
PY

rm -rf "$DEST"
mkdir -p "$DEST/maps"
cp "$OUT"/setup.json "$OUT"/traffic.json "$OUT"/capture.json "$OUT"/trace.txt "$OUT"/loader.log "$DEST/"
cp "$OUT"/qdisc-*.json "$OUT"/link-*.json "$DEST/"
cp "$OUT"/maps/*.json "$DEST/maps/"
[ -z "$PROBES" ] || cp "$OUT"/probes.json "$DEST/"
echo "== wrote $DEST ($(du -sh "$DEST" | cut -f1))"
