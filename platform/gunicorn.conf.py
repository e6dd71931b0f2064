"""Gunicorn settings for the web process (docker-compose.yml, benchmarks). Read by
`gunicorn -c platform/gunicorn.conf.py config.wsgi`; every value can be set from the environment."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Two processes per core keep both cores busy while one waits on PostgreSQL. Threaded workers
# because a sync worker streaming a long export stops heartbeating and is killed at `timeout`.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2))
worker_class = "gthread"
# The application (config.wsgi: settings, models and every view) is loaded once, in the master,
# and each worker is forked from it: starting or recycling a worker costs a fork, not seconds of
# imports. Nothing at import time opens a connection a forked worker could share.
preload_app = True
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
