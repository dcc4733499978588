"""The S3-compatible backend of the run store (AWS S3, MinIO, Ceph, R2...), through boto3.

Endpoint: AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL); credentials: the standard AWS chain (environment, shared
config, web identity, instance/pod role). CLEL_S3_ADDRESSING=path|virtual forces the URL style,
CLEL_S3_MAX_ATTEMPTS (default 10) bounds the attempts per request. See docs/STORAGE.md.
"""

import email.utils
import io
import os
import re
import time
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from runner.errors import PointerConflict, UserError, redact
from runner.store.base import Store, check_key, is_valid_key

BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
TRANSFER = TransferConfig(multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20)
DEFAULT_MAX_ATTEMPTS = 10
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
PRECONDITION_CODES = {"PreconditionFailed", "412"}
IN_FLIGHT_CODES = {"ConditionalRequestConflict", "409"}  # another conditional write is in progress: retry
BODY_ERRORS = (ResponseStreamingError, IncompleteReadError, ReadTimeoutError)  # raised after the call returned


def client_config(max_attempts: int, connect_timeout: float = 5, read_timeout: float = 60) -> Config:
    """Retries with backoff, timeouts, checksums only where required, and the optional addressing style."""
    addressing = os.environ.get("CLEL_S3_ADDRESSING", "").strip().lower()
    if addressing not in ("", "auto", "path", "virtual"):
        raise UserError(f"CLEL_S3_ADDRESSING={addressing!r}: expected path, virtual or auto")
    return Config(
        # standard mode: exponential backoff with jitter on 5xx, throttling and connection errors
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": addressing} if addressing else None,
        # boto3 >= 1.36 sends CRC32 checksums (aws-chunked bodies) by default, which MinIO and older stores reject;
        # integrity is checked end to end by the sha256 that LATEST records.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def max_attempts() -> int:
    """CLEL_S3_MAX_ATTEMPTS (attempts per request, retries included), default 10."""
    value = os.environ.get("CLEL_S3_MAX_ATTEMPTS", str(DEFAULT_MAX_ATTEMPTS))
    if not value.strip().isdigit() or int(value) < 1:
        raise UserError(f"CLEL_S3_MAX_ATTEMPTS={value!r}: expected a positive integer")
    return int(value)


def endpoint() -> str:
    """The endpoint boto3 will use, for messages (any user:password in it redacted)."""
    return redact(os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3")


def _client(config: Config):
    try:
        return boto3.client("s3", config=config)
    except ValueError as err:  # e.g. an endpoint URL without a scheme
        raise UserError(f"S3 endpoint {endpoint()}: {err}") from None


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class S3Store(Store):
    """s3://bucket/prefix; every key is stored under the prefix."""

    def __init__(self, uri: str):
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not BUCKET.fullmatch(bucket) or not is_valid_key(prefix.strip("/"), prefix=True):
            raise UserError(
                f"store {redact(uri)}: expected s3://bucket[/prefix] (bucket: 3-63 of a-z, 0-9, '.', '-'; "
                "prefix: letters, digits, '.', '_', '-' and '/')"
            )
        self.uri, self.bucket, self.prefix = uri.rstrip("/"), bucket, prefix.strip("/")
        self.attempts = max_attempts()
        self.client = _client(client_config(self.attempts))

    def _key(self, key: str, prefix: bool = False) -> str:
        check_key(key, prefix)
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        # Short timeouts and two attempts: a wrong endpoint fails in seconds, before any training.
        probe = _client(client_config(2, connect_timeout=2, read_timeout=5))
        where = f"store {self.uri} at {endpoint()}"
        try:
            probe.head_bucket(Bucket=self.bucket)
        except NoCredentialsError:
            raise UserError(
                f"{where}: no S3 credentials "
                "(set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_SHARED_CREDENTIALS_FILE)"
            ) from None
        except EndpointConnectionError:
            raise UserError(f"{where}: cannot reach the endpoint") from None
        except ClientError as err:
            code = _code(err)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise UserError(f"{where}: bucket '{self.bucket}' does not exist") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise UserError(
                    f"{where}: access denied ({code}): check the S3 credentials (AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE) and the bucket's permissions"
                ) from None
            raise UserError(f"{where}: {code or err}") from None
        except BotoCoreError as err:
            raise UserError(f"{where}: {err}") from None

    def _get(self, key: str) -> tuple[bytes, str] | None:
        """(body, ETag) of an object, or None if absent; a body cut off mid-transfer is fetched again."""
        for attempt in range(self.attempts):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as err:
                if _code(err) in MISSING_CODES:
                    return None
                raise
            try:
                return response["Body"].read(), response["ETag"]
            except BODY_ERRORS:
                if attempt + 1 == self.attempts:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def read(self, key: str) -> bytes:
        found = self._get(key)
        if found is None:
            raise KeyError(key)
        return found[0]

    def read_tail(self, key: str, max_bytes: int) -> bytes:
        """One ranged GET (bytes=-max_bytes): the object's last bytes without fetching the rest."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes=-{max_bytes}")
        except ClientError as err:
            if _code(err) in MISSING_CODES:
                raise KeyError(key) from None
            if _code(err) in ("InvalidRange", "416"):  # an empty object has no last bytes
                return b""
            raise
        return response["Body"].read()[-max_bytes:]

    def write(self, key: str, data: bytes) -> None:
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key), Config=TRANSFER)

    def upload(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key), Config=TRANSFER)

    def list(self, prefix: str) -> list[str]:
        keys = []
        strip = len(self._key("", prefix=True))
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix, prefix=True)):
            keys += [item["Key"][strip:] for item in page.get("Contents", [])]
        return sorted(key for key in keys if is_valid_key(key))  # a planted key never reaches a caller

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def read_pointer(self, key: str) -> tuple[bytes, str] | None:
        return self._get(key)

    def pointer_age(self, key: str) -> float | None:
        """The object's Last-Modified against the response's Date header: both the server's clock, so a client's
        skewed clock never makes a lease look older or younger than it is."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if _code(err) in MISSING_CODES:
                return None
            raise
        date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        if date is None:
            return None
        now = email.utils.parsedate_to_datetime(date)
        return max(0.0, (now - response["LastModified"]).total_seconds())

    def write_pointer(self, key: str, data: bytes, expected_tag: str | None) -> str:
        condition = {"IfNoneMatch": "*"} if expected_tag is None else {"IfMatch": expected_tag}
        for attempt in range(self.attempts):
            try:
                return self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **condition)["ETag"]
            except ClientError as err:
                code = _code(err)
                if code in IN_FLIGHT_CODES and attempt + 1 < self.attempts:
                    time.sleep(0.05 * 2**attempt)
                    continue
                if code not in PRECONDITION_CODES | IN_FLIGHT_CODES | MISSING_CODES:  # If-Match on a deleted one: 404
                    raise
                break
        # The condition failed. When botocore retried a PUT whose first attempt landed (its response was lost),
        # the retry fails the condition on our own write: the pointer then holds exactly our data.
        current = self.read_pointer(key)
        if current is not None and current[0] == data:
            return current[1]
        raise PointerConflict(f"{key} was moved by another writer")
