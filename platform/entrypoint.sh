#!/usr/bin/env bash
# Container entry point: one image, one role per container.
#   web | worker | beat | manage <command> [args...]
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
    exec celery -A config worker --loglevel=INFO --queues=default,training,exports,c3po \
      --concurrency="${WORKER_CONCURRENCY:-2}"
    ;;
  beat)
    # The schedule is scratch state: /tmp is writable by the non-root user.
    exec celery -A config beat --loglevel=INFO --schedule=/tmp/celerybeat-schedule
    ;;
  manage)
    exec python manage.py "$@"
    ;;
  *)
    echo "usage: entrypoint.sh web|worker|beat|manage <command> [args...]" >&2
    exit 2
    ;;
esac
