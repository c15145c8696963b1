"""A fake Hugging Face Hub on 127.0.0.1 (stdlib ``ThreadingHTTPServer``, port 0) for the publish tests.

It answers the endpoints ``huggingface_hub.HfApi`` uses to create a dataset repo and upload a folder
through regular (non-LFS) commits: ``/api/repos/create``, ``/api/validate-yaml``,
``/api/datasets/<repo>/tree|preupload|commit|revision/<rev>``. Files committed are kept in memory
(``repos[repo_id][path] = bytes``); every request is logged with its headers and body so tests can
check the token travels only in the ``Authorization`` header. Requests without the expected token
get 401. Paths it does not know answer 404 and are logged in ``unknown``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional
from urllib.parse import parse_qs, urlsplit


SIZE_CATEGORIES = {"n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T", "other"}
ANNOTATION_CREATORS = {"found", "crowdsourced", "expert-generated", "machine-generated", "no-annotation", "other"}


def hub_metadata_rules(content: str) -> Optional[str]:
    """The dataset-card metadata rules the Hub documents (https://huggingface.co/docs/hub/datasets-cards,
    hub-docs ``datasetcard.md``, ``repositories-licenses.md``), applied to a README text: the first
    problem found, or None. The real Hub checks more; this is what the tests can know offline."""
    import re

    import yaml

    from unihema_data.card import HUB_LICENSES

    m = re.match(r"^---\n(.*?)\n---\n", content, re.S)
    if not m:
        return "no YAML metadata block"
    try:
        meta = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        return f"invalid YAML: {e}"
    lic = meta.get("license")
    for x in (lic if isinstance(lic, list) else [lic] if lic else []):
        if x not in HUB_LICENSES:
            return f'"license" must be one of the Hub license ids, got {x!r}'
    if lic and "other" in (lic if isinstance(lic, list) else [lic]):
        if not meta.get("license_name") or not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", meta["license_name"]):
            return '"license_name" (lowercase id) is required with license: other'
        if not meta.get("license_link"):
            return '"license_link" is required with license: other'
    for sc in meta.get("size_categories", []):
        if sc not in SIZE_CATEGORIES:
            return f'"size_categories" value {sc!r} is not allowed'
    for ac in meta.get("annotations_creators", []):
        if ac not in ANNOTATION_CREATORS:
            return f'"annotations_creators" value {ac!r} is not allowed'
    for lang in meta.get("language", []):
        if not re.fullmatch(r"[a-z]{2,3}", lang):
            return f'"language" must be ISO 639 codes, got {lang!r}'
    names = set()
    for cfg in meta.get("configs", []):
        name = cfg.get("config_name")
        if not name or name in names:
            return f"configs: missing or repeated config_name {name!r}"
        names.add(name)
        for df in cfg.get("data_files", []):
            if not isinstance(df, dict) or "split" not in df or "path" not in df:
                return f"configs[{name}].data_files entries need split and path"
    for info in meta.get("dataset_info", []) if isinstance(meta.get("dataset_info"), list) else []:
        if info.get("config_name") not in names:
            return f"dataset_info names unknown config {info.get('config_name')!r}"
    return None


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Logged:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHub:
    token: str
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    private: dict[str, bool] = field(default_factory=dict)
    log: list[Logged] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    commits: list[dict] = field(default_factory=list)
    validate_yaml: Optional[Callable[[str], Optional[str]]] = hub_metadata_rules  # error text or None
    url: str = ""

    # ----------------------------------------------------------------------------------------- routes
    def handle(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> tuple[int, object]:
        if headers.get("authorization") != f"Bearer {self.token}" and path != "/api/validate-yaml":
            return 401, {"error": "Invalid credentials"}  # (validate-yaml is public, as on the Hub)
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/api/repos/create":
            req = json.loads(body)
            repo = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
            if req.get("type") != "dataset":
                return 400, {"error": "expected a dataset repo"}
            existed = repo in self.repos
            self.repos.setdefault(repo, {})
            if not existed:
                self.private[repo] = req.get("visibility", "private" if req.get("private") else "public") == "private"
            if existed:
                return 409, {"error": "You already created this dataset repo", "url": f"{self.url}/datasets/{repo}"}
            return 200, {"url": f"{self.url}/datasets/{repo}", "name": repo}
        if method == "POST" and path == "/api/validate-yaml":
            content = json.loads(body)["content"]
            problem = self.validate_yaml(content) if self.validate_yaml else None
            return (400, {"errors": [{"message": problem}]}) if problem else (200, {"errors": [], "warnings": []})
        if len(parts) >= 6 and parts[:2] == ["api", "datasets"]:
            repo = f"{parts[2]}/{parts[3]}"
            action = parts[4]
            if repo not in self.repos:
                return 404, {"error": "Repository not found"}
            files = self.repos[repo]
            if method == "GET" and action == "tree":
                return 200, [{"type": "file", "path": p, "oid": git_blob_sha1(b), "size": len(b)}
                             for p, b in sorted(files.items())]
            if method == "GET" and action == "revision":
                return 200, {"id": repo, "sha": self._sha(repo), "siblings": [{"rfilename": p} for p in files]}
            if method == "POST" and action == "preupload":
                req = json.loads(body)
                return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                        "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None}
                                       for f in req["files"]]}
            if method == "POST" and action == "commit":
                commit = {"added": [], "deleted": []}
                for line in body.splitlines():
                    item = json.loads(line)
                    if item["key"] == "file":
                        v = item["value"]
                        files[v["path"]] = base64.b64decode(v["content"])
                        commit["added"].append(v["path"])
                    elif item["key"] in ("deletedFile", "deletedFolder"):
                        p = item["value"]["path"]
                        for k in [k for k in files if k == p or k.startswith(p.rstrip("/") + "/")]:
                            del files[k]
                            commit["deleted"].append(k)
                    elif item["key"] == "lfsFile":
                        return 400, {"error": "this fake hub takes regular files only"}
                self.commits.append(commit)
                sha = self._sha(repo)
                return 200, {"commitUrl": f"{self.url}/datasets/{repo}/commit/{sha}", "commitOid": sha,
                             "pullRequestUrl": None}
        self.unknown.append(f"{method} {path}")
        return 404, {"error": f"fake hub: unknown endpoint {method} {path}"}

    def _sha(self, repo: str) -> str:
        h = hashlib.sha1()
        for p, b in sorted(self.repos[repo].items()):
            h.update(p.encode() + b"\0" + git_blob_sha1(b).encode())
        return h.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub

    def _serve(self, method: str) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        u = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.hub.log.append(Logged(method, self.path, headers, body))
        status, payload = self.hub.handle(method, u.path, parse_qs(u.query), headers, body)
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._serve("GET")

    def do_POST(self):  # noqa: N802
        self._serve("POST")

    def do_HEAD(self):  # noqa: N802
        self._serve("HEAD")

    def log_message(self, *args):  # quiet
        pass


class FakeHubServer:
    def __init__(self, token: str):
        self.hub = FakeHub(token)
        handler = type("H", (_Handler,), {"hub": self.hub})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = self.hub.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
