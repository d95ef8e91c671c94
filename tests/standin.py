"""A local HTTP server for the remote APIs that cannot run here (Management API, PostgREST).

Tests give it a route function; it records every request so a test can pin the request shape.
"""

import json
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Reply]


@dataclass
class StandIn:
    url: str
    requests: list[Request]


@contextmanager
def serve(route: Route):
    """Serve `route` on 127.0.0.1 in a thread; yields StandIn(url, requests)."""
    seen: list[Request] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            parts = urlsplit(self.path)
            request = Request(self.command, parts.path, parse_qsl(parts.query, keep_blank_values=True),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            seen.append(request)
            try:
                reply = route(request)
            except Exception as exc:  # noqa: BLE001 - a broken route answers 500, like a broken server
                reply = Reply(500, {"message": f"stand-in route failed: {exc}"})
            body = b"" if reply.body is None else (
                reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body, default=str).encode())
            self.send_response(reply.status)
            headers = {"Content-Type": "application/json", **reply.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        def log_message(self, *args):  # keep test output clean
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the default listen backlog of 5 resets a burst of concurrent inserts

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StandIn(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
