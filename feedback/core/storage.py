"""Where the platform keeps the files it writes: export snapshots and reward-model artifacts.

Every such file is a FileField's, so it goes through Django's default storage: the local
filesystem under MEDIA_ROOT, or, with AWS_STORAGE_BUCKET_NAME set, an S3-compatible bucket
(`ObjectStorage`), which web servers and workers on separate hosts share. Nothing else in the
platform reads or writes a file path of its own.

Downloads are answered by `download_response` once the caller's permission is checked; readers
that need a file on local disk (loading an artifact) take `local_copy`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from django.conf import settings
from django.core.files import File
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

COPY_CHUNK = 1 << 20


class ObjectStorage(S3Storage):
    """django-storages' S3 backend, except that an object opened for reading streams: `open`
    starts one GET and hands out its body as it arrives. (The stock S3File downloads the whole
    object first, into memory unless AWS_S3_MAX_MEMORY_SIZE is set, before the first byte can be
    sent on.) Writing is the stock multipart upload."""

    def _open(self, name: str, mode: str = "rb") -> Any:
        if mode != "rb":
            return super()._open(name, mode)
        key = self._normalize_name(clean_name(name))
        try:
            response = self.bucket.Object(key).get()
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                raise FileNotFoundError(f"File does not exist: {name}") from error
            raise
        stored = File(response["Body"], name)
        stored.size = response["ContentLength"]
        return stored


def download_response(
    stored: FieldFile, *, content_type: str = "application/octet-stream"
) -> HttpResponseBase:
    """The answer to a download the caller may make (check that first): with
    STORAGE_DOWNLOAD_REDIRECT and a store that signs URLs, a redirect to a URL of the object
    that expires after STORAGE_DOWNLOAD_URL_SECONDS; otherwise the file, read and sent a block
    at a time, never whole in memory."""
    storage, name = stored.storage, _name(stored)
    filename = Path(name).name
    if settings.STORAGE_DOWNLOAD_REDIRECT and isinstance(storage, ObjectStorage):
        url = storage.url(
            name,
            parameters={
                "ResponseContentDisposition": content_disposition_header(True, filename),
                "ResponseContentType": content_type,
            },
            expire=settings.STORAGE_DOWNLOAD_URL_SECONDS,
        )
        return HttpResponseRedirect(url)
    opened = storage.open(name, "rb")
    response = FileResponse(
        opened, as_attachment=True, filename=filename, content_type=content_type
    )
    # FileResponse measures only files it can seek in; a streamed object knows its size.
    response["Content-Length"] = str(opened.size)
    return response


def local_copy(stored: FieldFile) -> Path:
    """A copy of the stored file on this host's disk, under STORAGE_CACHE_DIR. It is fetched
    once per name, size and modification time: an object replaced under the same name is
    fetched again, and two hosts never share a path."""
    storage, name = stored.storage, _name(stored)
    version = f"{name}\0{_size_and_time(storage, name)}"
    folder = Path(settings.STORAGE_CACHE_DIR)
    path = folder / (hashlib.sha256(version.encode()).hexdigest() + Path(name).suffix)
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    # Written beside its final name and renamed into place, so a concurrent reader sees the
    # whole copy or none.
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as partial:
        try:
            with storage.open(name, "rb") as source:
                shutil.copyfileobj(source, partial, COPY_CHUNK)
        except BaseException:
            os.unlink(partial.name)
            raise
    os.replace(partial.name, path)
    return path


def _size_and_time(storage: Any, name: str) -> str:
    """The object's size and modification time: from one HEAD request on a bucket (asking the
    storage for each would send two before every artifact load), from the file elsewhere."""
    if isinstance(storage, ObjectStorage):
        head = storage.bucket.Object(storage._normalize_name(clean_name(name)))
        return f"{head.content_length}\0{head.last_modified.isoformat()}"
    return f"{storage.size(name)}\0{storage.get_modified_time(name).isoformat()}"


def _name(stored: FieldFile) -> str:
    if not stored.name:
        raise FileNotFoundError(f"{stored.field} holds no file")
    return stored.name
