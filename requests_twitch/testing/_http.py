"""FakeTwitch's HTTP server: one routing table, a deep listen queue, chunked bodies, and each answer in one write.

It knows nothing of FakeTwitch: it parses each request, serves the failures a test
queued (``State.queued``, ``State.redirects``), and otherwise hands the request to
the endpoint function ``ROUTES`` names, with the fake's state.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.server
import json
import socket
import threading
from http import HTTPStatus
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from . import _helix, _oauth
from ._gate import helix_error
from ._model import Answer, Endpoint, HelixRequest, Request, State


def _not_found(state: State, request: Request) -> Answer:
    return helix_error(404, "")


ROUTES: dict[tuple[str, str], Endpoint] = {
    ("POST", "/oauth2/token"): _oauth.token,
    ("POST", "/oauth2/device"): _oauth.device,
    ("GET", "/oauth2/authorize"): _oauth.authorize,
    ("GET", "/oauth2/validate"): _oauth.validate,
    ("POST", "/oauth2/revoke"): _oauth.revoke,
    ("GET", "/helix/users"): _helix.users,
    ("GET", "/helix/authorization/users"): _helix.authorization_users,
    ("GET", "/helix/games/top"): _helix.games_top,
    ("GET", "/helix/games"): _helix.games,
    ("GET", "/helix/streams"): _helix.streams,
    ("GET", "/helix/channels"): _helix.channels,
    ("GET", "/helix/chat/chatters"): _helix.chatters,
    ("GET", "/helix/polls"): _helix.polls,
    ("GET", "/helix/predictions"): _helix.predictions,
    ("GET", "/helix/schedule"): _helix.schedule,
    ("GET", "/helix/channel_points/custom_rewards/redemptions"): _helix.redemptions,
    ("GET", "/helix/channels/followers"): _helix.channel_followers,
    ("GET", "/helix/channels/followed"): _helix.followed_channels,
    ("GET", "/helix/eventsub/subscriptions"): _helix.eventsub_subscriptions,
    ("POST", "/helix/chat/messages"): _helix.send_chat_message,
}
"""(method, path) -> endpoint. Any other /helix/ request goes through Helix's gate to a 404; anything else gets
the 404 at once."""


def serve(state: State) -> Server:
    """Listen on 127.0.0.1 and a free port, and answer from ``state`` on a daemon thread until ``shutdown()``."""
    server = Server(state)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


class Server(http.server.ThreadingHTTPServer):
    # 32 threads connecting at once overflow socketserver's backlog of 5 (resets).
    request_queue_size = 1024
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: State) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state


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
        """Record a Helix request, then serve what a test set up for its path (queued answers first, then a
        redirect) before any endpoint: failure injection must win over the real answer."""
        state = self.server.state
        target, body = urlsplit(self.path), self._read_body()
        request = _request(self.command, target, {k.lower(): v for k, v in self.headers.items()}, body)
        if request.path.startswith("/helix/"):
            with state.lock:
                received = HelixRequest(self.command, target.path, target.query, dict(self.headers), body)
                state.helix_requests.append(received)
        queued = state.queued.get(request.path)
        if queued:
            if request.path == "/oauth2/token":  # an attempt all the same
                state.count(request.params.get("grant_type", ""))
            canned = queued.pop(0)
            if canned.kill_token:
                bearer = request.headers.get("authorization", "")
                with state.lock:
                    access = state.access.get(bearer[len("Bearer ") :]) if bearer.startswith("Bearer ") else None
                    if access is not None:
                        access.alive = False
            if canned.status == 0:  # the connection breaks before any answer
                self.close_connection = True
                return None
            return self._answer(canned.status, canned.body, canned.content_type, canned.headers)
        if request.path in state.redirects:
            return self._answer(302, b"", "text/plain", {"Location": state.redirects[request.path]})
        endpoint = ROUTES.get((request.method, request.path))
        if endpoint is None:
            endpoint = _helix.not_found if request.path.startswith("/helix/") else _not_found
        status, payload, extra = endpoint(state, request)
        data = b"" if payload is None else json.dumps(payload).encode()
        self._answer(status, data, "application/json", extra)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
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

    def _answer(self, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
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


def _request(method: str, target: SplitResult, headers: dict[str, str], body: bytes) -> Request:
    """The request as endpoints read it: id.twitch.tv takes parameters in the query or a POST's form."""
    params = dict(parse_qsl(target.query))
    if method == "POST":
        params.update(_form(body, headers.get("content-type", "")))
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(target.query):
        query.setdefault(key, []).append(value)
    return Request(method, target.path, params, query, headers, body)


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
