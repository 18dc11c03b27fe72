"""The browser flow's redirect, served on the redirect URI the app registered, on the loopback interface only.

Twitch compares the ``redirect_uri`` of a login with the app's registered OAuth
Redirect URLs character by character, port and trailing slash included, and on
a mismatch sends the browser to the *registered* URI with
``error=redirect_mismatch`` (docs/twitch.md#redirect-uris). So the server listens
on exactly the URI the user registered (default ``http://localhost:3000``, the
one twitch-cli asks for), never on a port of its own choosing.

Imported by ``TwitchCredentials.login_browser()`` only: most processes never log in,
and http.server and webbrowser cost milliseconds at import.
"""

from __future__ import annotations

import errno
import http.server
import os
import selectors
import socket
import socketserver
import threading
import webbrowser
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from . import _clock
from .exceptions import LoginError

__all__ = ["LOGIN_TIMEOUT", "RedirectListener", "loopback_address"]

LOGIN_TIMEOUT = 600.0
"""Seconds the browser flow waits for the redirect."""

_LOOPBACK_HOSTS = {"localhost": ("127.0.0.1", "::1"), "127.0.0.1": ("127.0.0.1",), "::1": ("::1",)}

_PAGE = "<!doctype html><meta charset=utf-8><title>requests-twitch</title><p>{}</p>"


def loopback_address(redirect_uri: str) -> tuple[str, int, str]:
    """(host, port, path) of a redirect URI this machine can serve: ``http://`` on a loopback host.

    Raises:
        ValueError: the URI is not ``http://localhost[:PORT][/path]`` (or
            127.0.0.1, [::1]): a login server on any other interface would take
            other machines' requests, and Twitch accepts plain http only for
            localhost (twitchdev/issues#342).
    """
    parts = urlsplit(redirect_uri)
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host not in _LOOPBACK_HOSTS or port == -1 or parts.query or parts.fragment:
        raise ValueError(
            "login_browser serves the redirect itself, so redirect_uri must be http:// on this machine's loopback"
            " interface, such as http://localhost:3000 (the app must have it registered exactly),"
            f" not {redirect_uri!r}."
            " For any other redirect URI, use authorize_url() and exchange_redirect()."
        )
    return host, port or 80, parts.path or "/"


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True  # a browser's idle preconnection must not hold the login up
    # A login run again right after the last one finds the port free; not on Windows, where
    # SO_REUSEADDR would let this server share a port another program is listening on.
    allow_reuse_address = os.name != "nt"

    def __init__(self, address: tuple[str, int], family: int, listener: RedirectListener) -> None:
        self.address_family = family
        self.listener = listener
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    timeout = 30  # a connection that never sends its request ends, and with it its thread

    def do_GET(self) -> None:  # noqa: N802
        status, text = self.server.listener.offer(self.path)
        body = _PAGE.format(text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the query holds the authorization code: never log it


class RedirectListener:
    """A server on ``redirect_uri``'s port of every loopback address its host names, for one login.

    It binds at once (so a port in use fails before the user is sent anywhere),
    and :meth:`wait` returns the first request to the redirect's path that
    carries the expected ``state``: Twitch's redirect, with a code or an error.
    Every other request (a favicon, a browser's prefetch, a second tab, a stale
    redirect of an earlier login) gets a short page and changes nothing.
    """

    def __init__(self, redirect_uri: str) -> None:
        host, port, self.path = loopback_address(redirect_uri)
        self.redirect_uri = redirect_uri
        self._state: str | None = None
        self._redirect: str | None = None
        self._lock = threading.Lock()
        self._servers: list[_Server] = []
        try:
            for address in _LOOPBACK_HOSTS[host]:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                try:
                    self._servers.append(_Server((address, port), family, self))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise LoginError(
                            f"port {port} of {address} is in use by another program, which would receive the"
                            f" redirect meant for {redirect_uri}: stop it, or register another redirect URI"
                            f" (such as http://localhost:{port + 1}) and log in with that one."
                        ) from None
                    if exc.errno == errno.EACCES:
                        raise LoginError(
                            f"this user may not listen on port {port} of {address}: register a redirect URI"
                            " with a port above 1023 (such as http://localhost:3000) and log in with that one."
                        ) from None
                    if host != "localhost" or family == socket.AF_INET:
                        raise
                    # localhost without IPv6 on this machine: the browser reaches 127.0.0.1.
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> RedirectListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening."""
        for server in self._servers:
            server.server_close()

    def offer(self, target: str) -> tuple[int, str]:
        """Take a request's target (path and query) if it is the redirect; returns the page to answer with."""
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        if (parts.path or "/") != self.path:
            return 404, "Not found. requests-twitch is waiting here for Twitch's redirect."
        with self._lock:
            if self._state is None or query.get("state") != [self._state]:
                return 400, "This is not the redirect of the login in progress (its state does not match): ignored."
            if self._redirect is None:
                self._redirect = target
        if "error" in query:
            return 200, "Twitch did not log you in; the program says why. You can close this tab."
        return 200, "Done: you can close this tab."

    def wait(
        self,
        state: str,
        authorize_url: str,
        *,
        prompt: Callable[[str], object],
        open_browser: bool = True,
        timeout: float = LOGIN_TIMEOUT,
    ) -> str:
        """Show ``authorize_url`` (prompt, and a browser), and return the URL Twitch redirected the browser to.

        Raises:
            LoginError: no redirect with ``state`` came within ``timeout`` seconds.
        """
        with self._lock:
            self._state = state
        prompt(authorize_url)
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(authorize_url,), daemon=True).start()
        deadline = _clock.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for server in self._servers:
                server.timeout = 0  # handle_request() below runs only once the socket is ready
                selector.register(server, selectors.EVENT_READ)
            while True:
                with self._lock:
                    if self._redirect is not None:
                        return self._redirect_url(self._redirect)
                left = deadline - _clock.monotonic()
                if left <= 0:
                    raise LoginError(
                        f"no redirect reached {self.redirect_uri} within {timeout:g} s. If the browser showed an error"
                        f" or ended on another address, the app's OAuth Redirect URLs must include {self.redirect_uri}"
                        " exactly (https://dev.twitch.tv/console); then run the login again."
                    )
                for key, _ in selector.select(timeout=min(0.2, left)):
                    key.fileobj.handle_request()  # type: ignore[union-attr]  # a thread answers it

    def _redirect_url(self, target: str) -> str:
        parts = urlsplit(self.redirect_uri)
        return f"{parts.scheme}://{parts.netloc}{target}"
