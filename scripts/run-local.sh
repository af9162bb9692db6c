#!/usr/bin/env bash
# Runs trtd's main job on this machine: a daemon on run/{inbox,outbox,...},
# a real ONNX model dropped into the inbox the way an upload ends (a rename),
# then the report it produced. Without TensorRT the job waits in the
# documented "TensorRT not available" state and the report says so.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/run
bin=$PWD/bin
mkdir -p "$root"/{inbox,outbox,state,failed}
cat >"$root/config.toml" <<TOML
log_format = "text"
[paths]
inbox = "$root/inbox"
outbox = "$root/outbox"
state = "$root/state"
failed = "$root/failed"
worker = "${TRTD_WORKER:-$bin/trtd-worker}"
[inbox]
settle = "1s"
[worker]
user = ""
[swap]
enabled = false
TOML
model=${1:-internal/testmodels/small_cnn.onnx}
name=$(basename "$model")
base=${name%.onnx}
rm -f "$root/outbox/$base".*
"$bin/trtd" run --config "$root/config.toml" 2>"$root/trtd.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -f "$root/state/status.json" ] && break; sleep 0.1; done
echo "== trtd is running (pid $pid); dropping $name into $root/inbox"
cp "$model" "$root/inbox/.$name.part"
mv "$root/inbox/.$name.part" "$root/inbox/$name"
for _ in $(seq 300); do [ -f "$root/outbox/$base.report.md" ] && break; sleep 0.2; done
echo "== trtd status"
"$bin/trtd" status --config "$root/config.toml" || true
echo
echo "== $root/outbox"
ls -l "$root/outbox"
echo
echo "== $root/outbox/$base.report.md"
cat "$root/outbox/$base.report.md"
echo
echo "== daemon log ($root/trtd.log)"
tail -n 20 "$root/trtd.log"
