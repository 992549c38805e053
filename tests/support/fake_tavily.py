"""A local HTTP server speaking Tavily's ``POST /search`` protocol, for the web-search tests (no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Results = Callable[[dict[str, Any]], list[dict[str, Any]]]
"""Request body -> the ``results`` list to answer with."""


@dataclass
class FakeTavily:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    """Every request received: ``{path, auth, body}``."""


@contextmanager
def fake_tavily(results: Results, *, api_key: str | None = None) -> Iterator[FakeTavily]:
    """Serve on 127.0.0.1 until the block ends; with ``api_key``, other keys get Tavily's 401."""
    state = FakeTavily(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            auth = self.headers.get("Authorization")
            state.requests.append({"path": self.path, "auth": auth, "body": body})
            if api_key is not None and auth != f"Bearer {api_key}":
                self._reply(401, {"detail": {"error": "Unauthorized: missing or invalid API key."}})
                return
            self._reply(200, {"query": body.get("query"), "answer": None, "images": [], "results": results(body),
                              "response_time": 0.01})

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
