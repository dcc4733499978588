"""A loopback HTTP proxy for tests that fails a share of the requests passing through it.

Point a client's endpoint (AWS_ENDPOINT_URL_S3) at `proxy.url`; each request arrives on its own connection
(responses carry `Connection: close`), is read completely, and then meets one fate:

- "pass": forwarded, and the response relayed;
- "error": answered 500 or 503 with an S3 error body (or the rule's own status and code, e.g. 503 SlowDown), never
  forwarded;
- "drop": the connection closed before forwarding (the request never reaches the server);
- "cut_request": half of the request forwarded, then both connections closed (the server sees a short body);
- "drop_response": forwarded, then the connection closed before any response byte (the request took effect);
- "cut_response": forwarded, then the response cut off halfway through its body (or in its status line).

Fates come from `rules` first (scripted faults for one test), else from a seeded RNG that fails `rate` of the
requests but never more than `max_consecutive` in a row, so that a client retrying that often always gets through.
"""

import random
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

FAULTS = ("error", "drop", "cut_request", "drop_response", "cut_response")
ERROR_BODY = b"<Error><Code>%s</Code><Message>injected by flaky_proxy</Message></Error>"


@dataclass
class Request:
    """One request as seen by the proxy."""

    method: str
    path: str
    headers: dict[str, str]
    head: bytes
    body: bytes


@dataclass
class Rule:
    """Give `fate` to the next `times` requests that `match` (an "error" answered with `error`, when given)."""

    match: Callable[[Request], bool]
    fate: str
    times: int = 1
    error: tuple[int, str] | None = None  # (HTTP status, S3 error code)


@dataclass
class FlakyProxy:
    """A threaded TCP proxy on 127.0.0.1 in front of `upstream` (http://host:port)."""

    upstream: str
    rate: float = 0.0
    seed: int = 0
    max_consecutive: int = 2
    faults: tuple[str, ...] = FAULTS
    rules: list[Rule] = field(default_factory=list)
    log: list[tuple[str, str, str]] = field(default_factory=list)

    def __post_init__(self):
        host, _, port = self.upstream.removeprefix("http://").rstrip("/").partition(":")
        self._upstream = (host, int(port))
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._consecutive = 0
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                proxy._handle(self.request)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The proxy's endpoint URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FlakyProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def add_rule(
        self, match: Callable[[Request], bool], fate: str, times: int = 1, error: tuple[int, str] | None = None
    ) -> Rule:
        """Script a fault (or "pass") for the next matching requests; returns the rule (times left)."""
        rule = Rule(match, fate, times, error)
        with self._lock:
            self.rules.append(rule)
        return rule

    def faults_seen(self) -> list[tuple[str, str, str]]:
        """(method, path, fate) of every request that did not simply pass."""
        with self._lock:
            return [entry for entry in self.log if entry[2] != "pass"]

    # --- one connection = one request --------------------------------------------------------------
    def _fate(self, request: Request) -> tuple[str, tuple[int, str]]:
        error = None
        with self._lock:
            for rule in self.rules:
                if rule.times > 0 and rule.match(request):
                    rule.times -= 1
                    fate, error = rule.fate, rule.error
                    break
            else:
                fate = "pass"
                if self._consecutive < self.max_consecutive and self._rng.random() < self.rate:
                    fate = self._rng.choice(self.faults)
            self._consecutive = 0 if fate == "pass" else self._consecutive + 1
            self.log.append((request.method, request.path, fate))
            status = self._rng.choice([(500, "InternalError"), (503, "ServiceUnavailable")])
        return fate, error or status

    def _handle(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        try:
            request = _read_request(reader, client)
        except (OSError, ValueError):
            return
        if request is None:
            return
        fate, (status, code) = self._fate(request)
        if fate == "drop":
            return
        if fate == "error":
            body = ERROR_BODY % code.encode()
            head = f"HTTP/1.1 {status} Injected\r\nContent-Type: application/xml\r\nContent-Length: {len(body)}\r\n"
            client.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)
            return
        with socket.create_connection(self._upstream, timeout=30) as upstream:
            if fate == "cut_request":
                upstream.sendall(request.head + request.body[: len(request.body) // 2])
                return
            upstream.sendall(request.head + request.body)
            response = _read_until_closed(upstream)
        if fate == "drop_response":
            return
        response = _with_connection_close(response)
        if fate == "cut_response":
            head_end = response.find(b"\r\n\r\n") + 4
            body_len = len(response) - head_end
            # no body to cut: cut the status line (a client reading cut headers would take them as complete)
            response = response[: head_end + body_len // 2] if body_len > 1 else response[:5]
        client.sendall(response)


def _read_request(reader, client: socket.socket) -> Request | None:
    """Read one request with a Content-Length body; answers `Expect: 100-continue` itself."""
    request_line = reader.readline()
    if not request_line:
        return None
    method, path, _ = request_line.decode("latin-1").split(" ", 2)
    lines, headers = [], {}
    while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        if name.strip().lower() not in ("connection", "expect"):
            lines.append(line)
    if "transfer-encoding" in headers:
        raise ValueError("chunked requests are not supported")
    length = int(headers.get("content-length", "0"))
    if length and headers.get("expect", "").lower() == "100-continue":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = reader.read(length) if length else b""
    head = request_line + b"".join(lines) + b"Connection: close\r\n\r\n"
    return Request(method, path, headers, head, body)


def _read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _with_connection_close(response: bytes) -> bytes:
    """The response with its Connection header replaced by `Connection: close`."""
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + sep + body
