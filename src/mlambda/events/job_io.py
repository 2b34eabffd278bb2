"""Where a batch job reads and writes: an S3-compatible bucket (boto3) or a folder on the
platform's machine. Blocking calls: the runner makes them in threads."""

from __future__ import annotations

import os
from typing import Any, Protocol

from mlambda.events.job_plan import JobSpec, Location
from mlambda.events.s3_client import s3_client


class Files(Protocol):
    """Keys are S3 keys or absolute paths. ``listing`` raises FileNotFoundError when the
    location does not exist; ``write`` replaces an object (S3: whole; a file: in place)."""

    def listing(self, location: Location) -> list[str]: ...

    def read(self, key: str) -> bytes: ...

    def write(self, key: str, body: bytes) -> None: ...


class BucketFiles:
    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self.client = client

    def listing(self, location: Location) -> list[str]:
        keys: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=location.path
        )
        for page in pages:
            keys.extend(item["Key"] for item in page.get("Contents", []))
        if location.path in keys and not location.path.endswith("/"):
            return [location.path]  # one object named, not a prefix
        return keys

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def write(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)


class FolderFiles:
    def listing(self, location: Location) -> list[str]:
        if os.path.isfile(location.path):
            return [location.path]
        if not os.path.isdir(location.path):
            raise FileNotFoundError(f"{location.path} is neither a folder nor a file")
        found: list[str] = []
        for folder, dirs, files in os.walk(location.path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            found.extend(os.path.join(folder, name) for name in sorted(files))
        return found

    def read(self, key: str) -> bytes:
        with open(key, "rb") as file:
            return file.read()

    def write(self, key: str, body: bytes) -> None:
        # In place, not written beside and renamed (a rename costs three times the write here):
        # a result is whole once its item is marked done, and one cut short by a crash is
        # written again when the job resumes.
        try:
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(key), exist_ok=True)
            descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(descriptor, 0o644)  # readable by others, whatever serve's umask
            file.write(body)


def files_for(location: Location, spec: JobSpec) -> Files:
    if location.kind == "file":
        return FolderFiles()
    return BucketFiles(location.bucket, s3_client(spec.endpoint_url, spec.region))
