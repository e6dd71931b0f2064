#!/usr/bin/env bash
# `make run`: a Celery worker in the background and Django's development server in front.
# Stopping the server (Ctrl-C) stops the worker too.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}

# -B runs the beat scheduler inside this worker (heartbeat), fine for a single dev worker.
$BIN/celery -A config worker -B --loglevel=INFO --concurrency=2 \
  --queues=default,training,exports,c3po --schedule=var/celerybeat-schedule &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null' EXIT INT TERM

database=${DATABASE_URL:-SQLite in var/db.sqlite3}
broker=${CELERY_BROKER_URL:-filesystem broker in var/broker}
cat <<MSG

  Feedback platform: http://$HOST:$PORT/
  Database: ${database%%@*}@…  Broker: ${broker%%@*}
  Demo logins (password demo-password): owner, researcher, annotator, rater
  API docs: http://$HOST:$PORT/api/docs/   Health: http://$HOST:$PORT/healthz

MSG
$BIN/python manage.py runserver "$HOST:$PORT"
