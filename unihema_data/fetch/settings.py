"""Fetch settings: host API base URLs, retry/backoff, timeouts and extraction limits.

Every value can be overridden by an environment variable (read when
:meth:`FetchSettings.from_env` is called), which is how tests point the host
resolvers at a local server on 127.0.0.1:

=========================  ===============================================================
``UNIHEMA_ZENODO_API``     Zenodo base (``https://zenodo.org``); records at ``/api/records/<id>``
``UNIHEMA_FIGSHARE_API``   Figshare API base (``https://api.figshare.com``); ``/v2/articles/<id>``
``UNIHEMA_MENDELEY_API``   Mendeley Data base (``https://data.mendeley.com``); ``/public-api/...``
``UNIHEMA_GITHUB_API``     GitHub REST API base (``https://api.github.com``)
``UNIHEMA_GITHUB_WEB``     GitHub web base for repository archives (``https://github.com``)
``UNIHEMA_GDRIVE_URL``     Google Drive download base (``https://drive.usercontent.google.com``)
``UNIHEMA_KAGGLE_API``     Kaggle public API base (``https://www.kaggle.com/api/v1``)
``UNIHEMA_TCIA_API``       TCIA NBIA REST API base (``.../nbia-api/services/v1``)
``UNIHEMA_FETCH_RETRIES``  attempts per URL for transient errors (default 5)
``UNIHEMA_FETCH_BACKOFF``  base delay in seconds; attempt *n* waits ``base * 2**(n-1)``, capped
``UNIHEMA_FETCH_TIMEOUT``  connect/read timeout in seconds (default 60)
``UNIHEMA_MAX_EXTRACT_BYTES``  total uncompressed bytes allowed per archive (default 200 GiB)
``UNIHEMA_MAX_MEMBERS``    members allowed per archive (default 2,000,000)
``UNIHEMA_MAX_EXTRACT_RATIO``  uncompressed bytes allowed per byte of archive (default 250; the
                           effective ceiling is ``min(MAX_EXTRACT_BYTES, ratio x archive size + 64 MiB)``)
=========================  ===============================================================
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Mapping, Optional

USER_AGENT = "unihema-data-fetch/0.1 (+https://github.com/; research dataset downloader)"


@dataclass(frozen=True)
class FetchSettings:
    zenodo_api: str = "https://zenodo.org"
    figshare_api: str = "https://api.figshare.com"
    mendeley_api: str = "https://data.mendeley.com"
    github_api: str = "https://api.github.com"
    github_web: str = "https://github.com"
    gdrive_url: str = "https://drive.usercontent.google.com"
    kaggle_api: str = "https://www.kaggle.com/api/v1"
    tcia_api: str = "https://services.cancerimagingarchive.net/nbia-api/services/v1"
    retries: int = 5
    backoff: float = 2.0
    backoff_cap: float = 60.0
    timeout: float = 60.0
    chunk_size: int = 1 << 20
    max_extract_bytes: int = 200 << 30
    max_members: int = 2_000_000
    max_extract_ratio: float = 250.0
    progress: bool = True
    kaggle_config_dir: Optional[str] = None

    _ENV = {
        "zenodo_api": "UNIHEMA_ZENODO_API",
        "figshare_api": "UNIHEMA_FIGSHARE_API",
        "mendeley_api": "UNIHEMA_MENDELEY_API",
        "github_api": "UNIHEMA_GITHUB_API",
        "github_web": "UNIHEMA_GITHUB_WEB",
        "gdrive_url": "UNIHEMA_GDRIVE_URL",
        "kaggle_api": "UNIHEMA_KAGGLE_API",
        "tcia_api": "UNIHEMA_TCIA_API",
        "retries": "UNIHEMA_FETCH_RETRIES",
        "backoff": "UNIHEMA_FETCH_BACKOFF",
        "timeout": "UNIHEMA_FETCH_TIMEOUT",
        "max_extract_bytes": "UNIHEMA_MAX_EXTRACT_BYTES",
        "max_members": "UNIHEMA_MAX_MEMBERS",
        "max_extract_ratio": "UNIHEMA_MAX_EXTRACT_RATIO",
    }

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None, **overrides) -> "FetchSettings":
        """Defaults, then environment variables, then keyword ``overrides``."""
        env = os.environ if env is None else env
        kw: dict = {}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in cls._ENV.items():
            if var in env and env[var] != "":
                raw = env[var]
                t = types[name]
                if t in ("int", int):
                    kw[name] = int(raw)
                elif t in ("float", float):
                    kw[name] = float(raw)
                else:
                    kw[name] = raw.rstrip("/")
        kw.update(overrides)
        return cls(**kw)

    def with_(self, **kw) -> "FetchSettings":
        return replace(self, **kw)
