"""FakeTwitch's HTTP server: a deep listen queue, chunked bodies, and each answer in one write."""

from __future__ import annotations

import collections
import email.parser
import email.policy
import http.server
import json
import socket
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Dict, List
from urllib.parse import parse_qsl, urlsplit

from ._helix import helix_error
from ._model import HelixRequest

if TYPE_CHECKING:
    from . import FakeTwitch




class Server(http.server.ThreadingHTTPServer):
    # 32 threads connecting at once overflow socketserver's backlog of 5 (resets).
    request_queue_size = 1024
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeTwitch


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Twitch
    timeout = 60  # idle keep-alive connections end, and with them their threads
    server: Server

    def setup(self) -> None:
        super().setup()
        # Each answer is one write; with Nagle off it leaves at once.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: tests and users' scripts read their own output

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def _handle(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        path, body = parts.path, self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        params = dict(parse_qsl(parts.query))
        if self.command == "POST":
            params.update(_form(body, headers.get("content-type", "")))
        if path.startswith("/helix/"):
            with fake._lock:
                fake.helix_requests.append(HelixRequest(self.command, path, parts.query, dict(self.headers), body))
        queued = fake._queued.get(path)
        if queued:
            if path == "/oauth2/token":  # an attempt all the same
                fake._count(params.get("grant_type", ""))
            status, data, content_type, extra = queued.pop(0)
            if status == 0:  # the connection breaks before any answer
                self.close_connection = True
                return None
            return self._answer(status, data, content_type, extra)
        if path in fake._redirects:
            return self._answer(302, b"", "text/plain", {"Location": fake._redirects[path]})
        if path == "/oauth2/token" and self.command == "POST":
            answer = fake._token(params)
        elif path == "/oauth2/validate" and self.command == "GET":
            answer = fake._validate(headers)
        elif path == "/oauth2/revoke" and self.command == "POST":
            answer = fake._revoke(params)
        elif path == "/oauth2/device" and self.command == "POST":
            answer = fake._device(params)
        elif path == "/oauth2/authorize" and self.command == "GET":
            answer = fake._authorize(params)
        elif path.startswith("/helix/"):
            query: dict[str, List[str]] = collections.defaultdict(list)
            for key, value in parse_qsl(parts.query):
                query[key].append(value)
            answer = fake._helix(self.command, path, query, headers)
        else:
            answer = helix_error(404, "")
        status, payload, extra = answer
        data = b"" if payload is None else json.dumps(payload).encode()
        self._answer(status, data, "application/json", extra)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: List[bytes] = []
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes, content_type: str, extra: Dict[str, str]) -> None:
        """Write the whole response at once: a header write then a body write on a
        keep-alive connection stalls 40 ms on Nagle and delayed ACKs."""
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Date: {self.date_time_string()}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines += [f"{k}: {v}" for k, v in extra.items()]
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def _form(body: bytes, content_type: str) -> dict[str, str]:
    """Parameters of a urlencoded or multipart/form-data body (Twitch takes both)."""
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        out = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if name and isinstance(payload, bytes):
                out[str(name)] = payload.decode()
        return out
    try:
        return dict(parse_qsl(body.decode("utf-8")))
    except UnicodeDecodeError:
        return {}
