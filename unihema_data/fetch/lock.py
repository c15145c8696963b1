"""The lock file ``ROOT/unihema-lock.json``: what was fetched, from where, with which size and sha256.

Format (version 1)::

    {"version": 1,
     "sources": {"<id>": {"complete": true, "completed_at": "2025-01-01T00:00:00+00:00",
                          "files": {"<name>": {"url": "<redacted url or manual path>", "size": 123,
                                               "sha256": "<hex>", "fetched_at": "...",
                                               "origin": "download" | "manual", "pinned": true}}}}}

Sizes and sha256 of files the catalog does not pin are trusted on first download
("registered") and enforced on later downloads. Writes are atomic (temp file +
``os.replace``). :func:`exclusive` takes an advisory lock so two fetches cannot write
the same ``.part`` files at once.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

from .errors import FetchError

LOCK_NAME = "unihema-lock.json"
MARKER_NAME = ".unihema-complete.json"


def now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def atomic_write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class LockFile:
    def __init__(self, root: Path):
        self.path = Path(root) / LOCK_NAME
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.data = {"version": 1, "sources": {}}
        except ValueError as e:
            raise FetchError(f"{self.path} is not valid JSON ({e}); move it away to start a fresh lock") from None
        self.data.setdefault("sources", {})

    def source(self, sid: str) -> dict:
        return self.data["sources"].setdefault(sid, {"complete": False, "files": {}})

    def file(self, sid: str, name: str) -> Optional[dict]:
        return self.data["sources"].get(sid, {}).get("files", {}).get(name)

    def record_file(self, sid: str, name: str, *, url: str, size: int, sha256: str, origin: str,
                    pinned: bool) -> None:
        self.source(sid)["files"][name] = {"url": url, "size": size, "sha256": sha256, "fetched_at": now(),
                                           "origin": origin, "pinned": pinned}

    def set_complete(self, sid: str, complete: bool) -> None:
        s = self.source(sid)
        s["complete"] = complete
        if complete:
            s["completed_at"] = now()
        else:
            s.pop("completed_at", None)

    def save(self) -> None:
        atomic_write_json(self.path, self.data)


@contextlib.contextmanager
def exclusive(root: Path) -> Iterator[None]:
    """Advisory lock on ``ROOT/.unihema-fetch.lock`` (POSIX ``flock``; a no-op elsewhere)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(root / ".unihema-fetch.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FetchError(f"another 'unihema-data fetch' is running on {root}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
