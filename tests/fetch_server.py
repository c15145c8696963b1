"""A real HTTP server on 127.0.0.1 for the fetch tests (stdlib ``ThreadingHTTPServer``, port 0).

Each path is a :class:`Route` that serves fixture bytes and can be told to misbehave the
way real hosts do: answer 500/503 before succeeding, drop the connection mid-file,
ignore ``Range``, serve an HTML page instead of the file, require basic auth, or run a
custom handler (used for the host-API JSON and the Google Drive confirmation page).
Every request is logged (method, path, query, headers) so tests can assert on them.
"""
from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit
import base64

HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
             b"<body><form action='/login'>Please sign in to continue</form></body></html>")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/octet-stream"
    fail_with: list[int] = field(default_factory=list)  # statuses answered (in order) before success
    drop_after: Optional[int] = None  # bytes of body sent before the connection is cut ...
    drop_times: int = 0  # ... on this many requests
    ignore_range: bool = False
    html: bool = False  # serve HTML_PAGE (200, text/html) instead of the body
    require_auth: Optional[tuple[str, str]] = None
    handler: Optional[Callable[[Request], Reply]] = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


class FixtureServer:
    """Start with :meth:`start`, stop with :meth:`stop` (the pytest fixture does both)."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- configuration -------------------------------------------------------------------
    def add(self, path: str, body: bytes = b"", **kw) -> Route:
        r = Route(body=body, **kw)
        self.routes[path] = r
        return r

    def json(self, path: str, obj) -> Route:
        return self.add(path, json.dumps(obj).encode(), content_type="application/json")

    def url(self, path: str = "") -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.path == path]

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> "FixtureServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(head=True)

            def do_GET(self) -> None:
                self._serve(head=False)

            def _send(self, status: int, body: bytes, headers: dict[str, str], head: bool) -> None:
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                parts = urlsplit(self.path)
                req = Request(self.command, parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()},
                              {k: v for k, v in self.headers.items()})
                with server._lock:
                    server.log.append(req)
                    route = server.routes.get(parts.path)
                    if route is not None:
                        route.hits += 1
                        fail = route.fail_with.pop(0) if route.fail_with else None
                        drop = fail is None and route.drop_times > 0 and route.drop_after is not None
                        if drop:
                            route.drop_times -= 1
                if route is None:
                    return self._send(404, b"not found", {"Content-Type": "text/plain"}, head)
                if route.require_auth is not None:
                    want = "Basic " + base64.b64encode(":".join(route.require_auth).encode()).decode()
                    if self.headers.get("Authorization") != want:
                        return self._send(401, b'{"code":401,"message":"Unauthorized"}',
                                          {"Content-Type": "application/json"}, head)
                if fail is not None:
                    return self._send(fail, b"temporarily unavailable", {"Content-Type": "text/plain"}, head)
                if route.handler is not None:
                    rep = route.handler(req)
                    return self._send(rep.status, rep.body, rep.headers, head)
                if route.html:
                    return self._send(200, HTML_PAGE, {"Content-Type": "text/html; charset=utf-8"}, head)
                body = route.body
                base = {"Content-Type": route.content_type, "ETag": route.etag, **route.extra_headers}
                if not route.ignore_range:
                    base["Accept-Ranges"] = "bytes"
                status, start = 200, 0
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if rng and not route.ignore_range and (if_range is None or if_range == route.etag):
                    spec = rng.split("=", 1)[1].split(",")[0]
                    a, _, b = spec.partition("-")
                    start = int(a)
                    end = int(b) if b else len(body) - 1
                    if start >= len(body):
                        return self._send(416, b"", {"Content-Range": f"bytes */{len(body)}"}, head)
                    status = 206
                    base["Content-Range"] = f"bytes {start}-{end}/{len(body)}"
                    body = body[start:end + 1]
                if drop and not head:
                    self.send_response(status)
                    for k, v in {"Content-Length": str(len(body)), **base}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body[: route.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                return self._send(status, body, base, head)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)


# --------------------------------------------------------------------------- pytest fixtures
# Imported by the test_fetch_*.py modules (``from fetch_server import server, fast_settings``).
import pytest  # noqa: E402


@pytest.fixture
def server():
    srv = FixtureServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fast_settings(server):
    """Settings with every host API pointed at the local server, tiny backoff, no progress bars."""
    from unihema_data.fetch.settings import FetchSettings

    base = server.url("")
    return FetchSettings(zenodo_api=base + "/zenodo", figshare_api=base + "/figshare",
                         mendeley_api=base + "/mendeley", github_api=base + "/ghapi", github_web=base + "/gh",
                         gdrive_url=base + "/gdrive", kaggle_api=base + "/kaggle/api/v1",
                         tcia_api=base + "/tcia/v1", retries=4, backoff=0.01, backoff_cap=0.05, timeout=5,
                         chunk_size=4096, progress=False)


# --------------------------------------------------------------------------- small test catalogs
# Builders for catalogs used by the fetch tests (never the repository's catalog.yaml).
import io  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402

from unihema_data.catalog import Catalog, DatasetEntry  # noqa: E402


def entry_dict(sid: str, access: str = "http", files: list[dict] | None = None, **kw) -> dict:
    d = {"id": sid, "name": f"Test source {sid}", "citation": "Doe et al. 2024", "homepage": "https://example.org/",
         "license": "CC-BY-4.0", "redistributable": True, "access": access, "files": files or [],
         "tasks": ["classification"], "disease": ["normal"], "granularity": "single_cell",
         "native_format": "folders"}
    d.update(kw)
    return d


def entry(sid: str, access: str = "http", files: list[dict] | None = None, **kw) -> DatasetEntry:
    return DatasetEntry.model_validate(entry_dict(sid, access, files, **kw))


def catalog(*entries: dict) -> Catalog:
    return Catalog.model_validate({"version": 1, "datasets": list(entries)})


def write_catalog(path: Path, *entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "datasets": list(entries)}, sort_keys=False))
    return path


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return buf.getvalue()


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()
