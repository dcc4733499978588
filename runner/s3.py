"""The S3-compatible backend of the run store (AWS S3, MinIO, Ceph, R2...), through boto3.

Endpoint: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL); credentials: the standard AWS chain
(environment, shared config, instance/pod role). CLEL_S3_ADDRESSING=path forces path-style URLs.
"""

import io
import os
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from runner.errors import UserError
from runner.store import PointerConflict, Store

TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20)
PRECONDITION_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def client_config(max_attempts: int, connect_timeout: float = 5, read_timeout: float = 60) -> Config:
    """Retries with backoff, timeouts, checksums only when required (MinIO and older stores accept that)."""
    return Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": os.environ.get("CLEL_S3_ADDRESSING", "auto")},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class S3Store(Store):
    """s3://bucket/prefix; every key is stored under the prefix."""

    def __init__(self, uri: str):
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise UserError(f"store {uri}: expected s3://bucket[/prefix]")
        self.uri, self.bucket, self.prefix = uri.rstrip("/"), bucket, prefix.strip("/")
        attempts = int(os.environ.get("CLEL_S3_MAX_ATTEMPTS", "10"))
        self.client = boto3.client("s3", config=client_config(attempts))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
        probe = boto3.client("s3", config=client_config(2, connect_timeout=3, read_timeout=10))
        try:
            probe.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise UserError(f"store {self.uri}: no S3 credentials (set AWS_ACCESS_KEY_ID/...)") from None
        except EndpointConnectionError:
            raise UserError(f"store {self.uri}: cannot reach the S3 endpoint {endpoint}") from None
        except ClientError as err:
            code = _code(err)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise UserError(f"store {self.uri}: bucket '{self.bucket}' does not exist at {endpoint}") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise UserError(f"store {self.uri}: access denied ({code}) at {endpoint}") from None
            raise UserError(f"store {self.uri}: {code or err} at {endpoint}") from None
        except BotoCoreError as err:
            raise UserError(f"store {self.uri}: {err}") from None

    def read(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                raise KeyError(key) from None
            raise

    def write(self, key: str, data: bytes) -> None:
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key), Config=TRANSFER)

    def upload(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key), Config=TRANSFER)

    def download(self, key: str, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(self.read(key))

    def list(self, prefix: str) -> list[str]:
        keys = []
        strip = len(self._key(""))
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def read_pointer(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if _code(err) in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read(), response["ETag"]

    def write_pointer(self, key: str, data: bytes, expected_tag: str | None) -> str:
        condition = {"IfNoneMatch": "*"} if expected_tag is None else {"IfMatch": expected_tag}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)
        except ClientError as err:
            if _code(err) not in PRECONDITION_CODES:
                raise
            # A retried PUT whose first attempt landed fails its own condition: that is our write.
            current = self.read_pointer(key)
            if current is not None and current[0] == data:
                return current[1]
            raise PointerConflict(f"{key} was moved by another writer") from None
        return response["ETag"]
