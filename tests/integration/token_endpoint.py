"""A small real OAuth2 token endpoint on loopback for the built-in IMAP OAuth2 tests: it grants the
client-credentials and refresh-token grants with tokens the test names, records every request, and
on cue answers garbage, an HTTP error, an OAuth2 error, or hangs."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from typing import Any


class TokenEndpoint:
    """`mode`: "ok", "garbage" (200, not JSON), "http500" (an HTML error page), "invalid_grant"
    (400 with an OAuth2 error), "hang" (answers only after `hang_seconds`)."""

    def __init__(self, access_token: str = "ya29.good-token", expires_in: int = 3600) -> None:
        owner = self
        self.access_token = access_token
        self.expires_in = expires_in
        self.mode = "ok"
        self.hang_seconds = 5.0
        self.new_refresh_token: str | None = None
        self.requests: list[dict[str, str]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
                owner.requests.append(form)
                mode = owner.mode
                if mode == "hang":
                    time.sleep(owner.hang_seconds)
                if mode == "garbage":
                    self._answer(200, b"<html>Service Unavailable</html>", "text/html")
                elif mode == "http500":
                    self._answer(500, b"<html><h1>500 Internal Server Error</h1></html>", "text/html")
                elif mode == "invalid_grant":
                    body = {"error": "invalid_grant", "error_description": "AADSTS70000: token revoked"}
                    self._answer(400, json.dumps(body).encode(), "application/json")
                else:
                    answer: dict[str, Any] = {
                        "access_token": owner.access_token,
                        "token_type": "Bearer",
                        "expires_in": owner.expires_in,
                    }
                    if owner.new_refresh_token:
                        answer["refresh_token"] = owner.new_refresh_token
                    self._answer(200, json.dumps(answer).encode(), "application/json")

            def _answer(self, code: int, body: bytes, kind: str) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting (the hang case)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/oauth2/v2.0/token"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
