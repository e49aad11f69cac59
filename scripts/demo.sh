#!/usr/bin/env bash
# make demo: broker -> topics -> worker -> ingest the seed page -> print the clean topics -> stop.
set -euo pipefail
seed="${1:-data/seed/000_ab5b4fd25105b7c2.txt}"
cd "$(dirname "$0")/.."
export NEWSPIPE_APP_ID="newspipe-demo-$(date +%s)"
export NEWSPIPE_TOPIC_PREFIX="demo-$(date +%s)."
export NEWSPIPE_STATE_DIR=".cache/demo-state"
export NEWSPIPE_WEB_PORT="${NEWSPIPE_WEB_PORT:-6066}"
bin=.venv/bin

started_broker=0
if ! $bin/newspipe broker status >/dev/null 2>&1; then
  $bin/newspipe broker start
  started_broker=1
fi
worker_pid=""
cleanup() {
  if [ -n "$worker_pid" ] && kill -0 "$worker_pid" 2>/dev/null; then
    kill -TERM "$worker_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$worker_pid" 2>/dev/null || true
  fi
  if [ "$started_broker" = 1 ]; then $bin/newspipe broker stop; fi
}
trap cleanup EXIT

$bin/newspipe topics create
mkdir -p .cache
$bin/newspipe worker > .cache/demo-worker.log 2>&1 &
worker_pid=$!
echo "worker started (pid $worker_pid, log .cache/demo-worker.log)"
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$NEWSPIPE_WEB_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$worker_pid" 2>/dev/null || { echo "worker exited:"; tail -20 .cache/demo-worker.log; exit 1; }
  sleep 0.5
done
$bin/newspipe ingest "$seed"
$bin/newspipe show --articles 1 --comments 20 --timeout 90
echo "--- metrics (from the worker's /metrics) ---"
$bin/python - <<'PY'
import os, urllib.request
port = os.environ["NEWSPIPE_WEB_PORT"]
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
for line in text.splitlines():
    if line.startswith(("newspipe_records_in_total", "newspipe_records_out_total",
                        "newspipe_duplicates_total", "newspipe_dead_letters_total")):
        print(line)
PY
cat <<NEXT
--- next ---
The demo's topics stay in the broker's data under a per-run prefix (if the demo stopped the
broker, newspipe broker start brings them back); to read them again:
  NEWSPIPE_TOPIC_PREFIX=$NEWSPIPE_TOPIC_PREFIX NEWSPIPE_APP_ID=$NEWSPIPE_APP_ID .venv/bin/newspipe show
and to remove them:
  NEWSPIPE_TOPIC_PREFIX=$NEWSPIPE_TOPIC_PREFIX NEWSPIPE_APP_ID=$NEWSPIPE_APP_ID .venv/bin/newspipe topics delete --yes
Run it yourself: README "The same by hand"; every command: docs/cli.md.
NEXT
