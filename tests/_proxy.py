"""A forward HTTP proxy on 127.0.0.1 that records what it relays (for tests of ``session.proxies``).

FakeTwitch speaks plain http, so a client sends the proxy absolute-form requests
(``GET http://127.0.0.1:PORT/oauth2/validate HTTP/1.1``): the proxy sees every path
and header, and relays each request on a new connection of its own.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "transfer-encoding", "te",
              "trailer", "upgrade"}


@dataclass(frozen=True)
class Relayed:
    """One request the proxy relayed."""

    method: str
    url: str
    headers: dict[str, str]
    client_port: int
    """The port of the client's connection to the proxy: a new one for each new connection."""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


class RecordingProxy:
    """A threaded forward proxy for http:// URLs; ``relayed`` lists what it relayed, in order."""

    def __init__(self) -> None:
        self.relayed: list[Relayed] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.relayed.append(Relayed(self.command, self.path, dict(self.headers.items()),
                                             self.client_address[1]))
                target = urlsplit(self.path)
                upstream = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                    path = target.path + (f"?{target.query}" if target.query else "")
                    upstream.request(self.command, path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    data = answer.read()
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self, prefix: str = "/oauth2/") -> list[str]:
        """The paths relayed that start with ``prefix`` (default: the token calls), in order."""
        return [r.path for r in self.relayed if r.path.startswith(prefix)]

    def __enter__(self) -> RecordingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
