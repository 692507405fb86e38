#!/usr/bin/env bash
# Serve EvalHub with a Celery worker beside it; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
HOST="${DEMO_HOST:-127.0.0.1:8000}"

"$PY" -m celery -A evalhub worker -Q celery,gpu --loglevel=info --concurrency=2 -n "evalhub@%h" &
worker=$!
trap 'kill "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true' EXIT INT TERM

echo "EvalHub on http://$HOST/ (Celery worker pid $worker). Ctrl-C stops both."
"$PY" manage.py runserver "$HOST"
