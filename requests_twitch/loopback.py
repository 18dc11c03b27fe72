"""The browser flow's redirect, served on ``http://localhost:PORT/`` (the loopback interface only).

Imported by ``TwitchCredentials.login_browser()`` only: most processes never log in,
and http.server and webbrowser cost milliseconds at import.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import webbrowser
from typing import Iterable
from urllib.parse import parse_qs, urlsplit

from . import _clock
from .exceptions import TwitchAuthError
from .oauth import OAuthClient
from .login import Prompt, authorize_url, print_to_stderr

__all__ = ["wait_for_redirect"]

LOGIN_TIMEOUT = 600.0
"""Seconds the browser flow waits for the redirect."""


class _RedirectServer(http.server.HTTPServer):
    redirect_path: str | None = None


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    server: _RedirectServer
    timeout = 5  # an idle connection must not hold the one-request-at-a-time server past the login's timeout

    def do_GET(self) -> None:  # noqa: N802
        query = parse_qs(urlsplit(self.path).query)
        if "code" not in query and "error" not in query:  # a favicon, a stray local client: not the redirect
            self.send_error(404)
            return
        self.server.redirect_path = self.path
        body = b"<!doctype html><title>requests-twitch</title><p>Done: you can close this tab.</p>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the query holds the authorization code: never log it


def wait_for_redirect(
    oauth: OAuthClient,
    scopes: Iterable[str],
    *,
    port: int = 0,
    open_browser: bool = True,
    prompt: Prompt = print_to_stderr,
    force_verify: bool = False,
    timeout: float = LOGIN_TIMEOUT,
) -> tuple[str, str, str]:
    """Serve ``http://localhost:PORT/`` on the loopback interface only, send the user to Twitch, wait.

    Returns (the redirect URL Twitch sent the browser to, the redirect URI
    used, the state sent); the caller checks the state and exchanges the code.
    """
    server = _RedirectServer(("127.0.0.1", port), _RedirectHandler)
    try:
        redirect_uri = f"http://localhost:{server.server_address[1]}/"
        state = secrets.token_urlsafe(16)
        url = authorize_url(oauth, scopes, redirect_uri, state=state, force_verify=force_verify)
        prompt(f"To log in, open this URL in a browser (register {redirect_uri} as a redirect URL of the app): {url}")
        if open_browser:
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        deadline = _clock.monotonic() + timeout
        server.timeout = 0.5
        while server.redirect_path is None:
            if _clock.monotonic() > deadline:
                raise TwitchAuthError(f"no redirect reached {redirect_uri} within {timeout:g} s: run the login again.")
            server.handle_request()
        return f"http://localhost:{server.server_address[1]}{server.redirect_path}", redirect_uri, state
    finally:
        server.server_close()
