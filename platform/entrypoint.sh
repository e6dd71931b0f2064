#!/usr/bin/env bash
# Container entry point: one image, one role per container.
#   web | worker [celery args...] | beat | manage <command> [args...]
# worker: WORKER_QUEUES (comma-separated; all queues by default), WORKER_CONCURRENCY (2).
set -euo pipefail
cd "$(dirname "$0")/.."

role=${1:-}
if (($#)); then shift; fi

case "$role" in
  web)
    python manage.py migrate --no-input
    exec gunicorn -c platform/gunicorn.conf.py config.wsgi
    ;;
  worker)
    # One pool per queue on several machines (WORKER_QUEUES=training), or all of them in one
    # worker. Further arguments go to celery as they are.
    exec celery -A config worker --loglevel=INFO \
      --queues="${WORKER_QUEUES:-default,exports,training,c3po}" \
      --concurrency="${WORKER_CONCURRENCY:-2}" "$@"
    ;;
  beat)
    # The schedule is scratch state: /tmp is writable by the non-root user.
    exec celery -A config beat --loglevel=INFO --schedule=/tmp/celerybeat-schedule
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    echo "usage: entrypoint.sh web|worker [celery args...]|beat|manage <command> [args...]" >&2
    exit 2
    ;;
esac
