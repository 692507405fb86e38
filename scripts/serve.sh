#!/usr/bin/env bash
# Serve EvalHub with a Celery worker beside it; Ctrl-C stops both.
# The worker consumes the three queues (`celery`: the reaper and checks; `gpu`: generation
# and training; `cpu`: image imports and judgment exports) and embeds `celery beat` (-B),
# which runs the reaper of dead workers' jobs on its schedule (file under var/celery/).
# One -B per deployment: beat must run only once.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
HOST="${DEMO_HOST:-127.0.0.1:8000}"

"$PY" -m celery -A evalhub worker -B -Q celery,gpu,cpu --loglevel=info --concurrency=2 -n "evalhub@%h" &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM

echo "EvalHub on http://$HOST/ (Celery worker and beat, pid $worker). Ctrl-C stops both."
"$PY" manage.py runserver "$HOST"
