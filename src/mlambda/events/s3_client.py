"""A boto3 S3 client for an S3-compatible store (AWS S3, MinIO, Ceph, moto's server): its
endpoint, region and credentials where given, else boto3's own chain (the standard AWS
variables and files of the platform's process)."""

from __future__ import annotations

from typing import Any


def s3_client(
    endpoint_url: str = "", region: str = "", access_key_id: str = "", secret_access_key: str = ""
) -> Any:
    try:
        import boto3
    except ImportError:
        raise RuntimeError("s3:// sources need boto3: pip install 'mlambda[s3]'") from None
    options: dict[str, Any] = {}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["region_name"] = region
    if access_key_id:
        options["aws_access_key_id"] = access_key_id
        options["aws_secret_access_key"] = secret_access_key
    # A session of its own: boto3's default session is not safe to share between threads.
    return boto3.session.Session().client("s3", **options)
