"""A local S3 server for tests: moto in server mode, in a process of its own on a free port.

The object store is a service the project does not own, so tests stand in for it over real HTTP:
django-storages and boto3 run as in production, against `S3Server.url`.

``with S3Server() as server:`` starts it and waits until it answers; ``server.bucket()`` creates
an empty bucket and returns its name; ``server.default_storage(bucket)`` is the STORAGES entry
that puts the platform's files in it, as config/settings.py builds it from AWS_* variables;
``server.client()`` is a boto3 client to look into the store.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any, Self

import boto3

REGION = "us-east-1"
# moto accepts any credentials; these reach it signed like real ones.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


class S3Server:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1):
                    return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto did not start on {self.url}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.url, region_name=REGION, **CREDENTIALS)

    def bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(entry["Key"] for entry in listed.get("Contents", []))

    def default_storage(self, bucket: str) -> dict[str, Any]:
        return {
            "BACKEND": "feedback.core.storage.ObjectStorage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": self.url,
                "region_name": REGION,
                "access_key": CREDENTIALS["aws_access_key_id"],
                "secret_key": CREDENTIALS["aws_secret_access_key"],
                "signature_version": "s3v4",
                "file_overwrite": False,
            },
        }
