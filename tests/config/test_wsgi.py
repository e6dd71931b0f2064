"""The web process loads every view before it serves: no request waits for the imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Printed by a process that imports the WSGI application and nothing else.
PROBE = """
import sys
import config.wsgi
print("rewardmodels.apis" in sys.modules, "feedback.views.debug" in sys.modules)
"""


def test_the_wsgi_application_has_imported_every_view_before_its_first_request() -> None:
    # given a production environment
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "a-long-production-like-secret-" * 2}

    # when a process imports the WSGI application, as gunicorn's master does
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # then the URLconf's views and APIs are loaded already: workers forked from it serve their
    # first request without importing them
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
