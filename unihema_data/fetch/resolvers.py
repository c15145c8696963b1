"""Turn a catalog entry into concrete downloads, one resolver per ``access`` kind.

Each resolver returns a list of :class:`ResolvedFile`. Values pinned in the catalog
(size, sha256) always win; values published by a host API (size, md5 or sha256) are
used as *additional* checks, which protects even files the catalog does not pin yet.
A file that cannot be downloaded automatically (behind a login, Kaggle without
credentials, TCIA Aspera packages, Google Drive folders) comes back with
``manual=True`` and a reason; the ladder in :mod:`.core` then looks for it in the
manual folder. Nothing here ever tries to get past a login wall.

``record`` syntax per access kind (DOIs and landing-page URLs are accepted too):

* zenodo   ``1234567`` | ``10.5281/zenodo.1234567``
* figshare ``23804523`` | ``23804523/v2`` | ``10.6084/m9.figshare.23804523.v2``
* mendeley ``snkd93bnjr/1`` | ``10.17632/snkd93bnjr.1``
* github   ``owner/repo@ref`` (an empty ``files`` list means the repository archive at ``ref``)
* kaggle   ``owner/dataset-slug`` | ``owner/dataset-slug@<version number>``
* tcia     the NBIA collection name (e.g. ``C-NMC-2019``)
"""
from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from ..catalog import DatasetEntry, FileSpec
from .download import Location
from .errors import ManualDownloadRequired, ResolveError
from .neterr import network_cause
from .settings import USER_AGENT, FetchSettings


@dataclass
class ResolvedFile:
    """One file of a source, ready for the download/verify/extract ladder."""

    name: str
    locations: list[Location] = field(default_factory=list)
    size: Optional[int] = None  # catalog pin, else host-published size
    sha256: Optional[str] = None  # catalog pin only
    host_checksums: dict[str, str] = field(default_factory=dict)
    pinned: bool = False  # catalog pins both size and sha256
    archive: str = "auto"
    extract_to: Optional[str] = None
    optional: bool = False
    manual: bool = False
    manual_reason: str = ""
    hint: str = ""  # appended to download errors (e.g. Google Drive quota)


@dataclass
class Context:
    settings: FetchSettings
    session: requests.Session
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    log: Callable[[str], None] = lambda m: None
    lookups: bool = True  # False (dry runs): skip API calls that only add host checksums


def _api_needed(entry: DatasetEntry, ctx: Context) -> bool:
    """The host API must be asked when a file has no URL; otherwise only for its checksums."""
    return not entry.files or any(not s.url for s in entry.files) or ctx.lookups


def _from_spec(spec: FileSpec, locations: list[Location], host: Optional[dict] = None) -> ResolvedFile:
    host = host or {}
    return ResolvedFile(
        name=spec.name, locations=locations,
        size=spec.size if spec.size is not None else host.get("size"),
        sha256=spec.sha256, host_checksums=dict(host.get("checksums", {})), pinned=spec.verified,
        archive=spec.archive, extract_to=spec.extract_to, optional=spec.optional)


def _urls(spec: FileSpec, **loc_kw) -> list[Location]:
    return [Location(u, **loc_kw) for u in ([spec.url] if spec.url else []) + list(spec.mirrors)]


def _get_json(ctx: Context, url: str, what: str, **kw):
    try:
        r = ctx.session.get(url, headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                            timeout=ctx.settings.timeout, **kw)
    except requests.RequestException as e:
        raise ResolveError(f"{what}: cannot reach {url} ({network_cause(e)})") from None
    if r.status_code != 200:
        raise ResolveError(f"{what}: {url} answered HTTP {r.status_code}")
    try:
        return r.json()
    except ValueError:
        raise ResolveError(f"{what}: {url} did not answer JSON (an HTML page?)") from None


def _with_host(entry: DatasetEntry, ctx: Context, host_files: Optional[dict[str, dict]], api_error: str,
               make_default: Callable[[str, dict], ResolvedFile]) -> list[ResolvedFile]:
    """Shared logic for API hosts: match catalog files to the host's listing by name."""
    if not entry.files:
        if host_files is None:
            raise ResolveError(api_error)
        return [make_default(n, h) for n, h in host_files.items()]
    out = []
    for spec in entry.files:
        h = (host_files or {}).get(spec.name)
        if spec.url:
            out.append(_from_spec(spec, _urls(spec), h))
        elif h is not None:
            out.append(_from_spec(spec, [Location(h["url"])] + [Location(m) for m in spec.mirrors], h))
        elif host_files is None:
            raise ResolveError(api_error)
        else:
            raise ResolveError(f"{entry.id}: file {spec.name!r} is not in the host record "
                               f"(it lists: {', '.join(sorted(host_files)) or 'nothing'})")
    if host_files is None and ctx.lookups:
        ctx.log(f"  {api_error}; downloading from the catalog URLs without host checksums")
    return out


# --------------------------------------------------------------------------- http / manual
def resolve_http(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    out = []
    for spec in entry.files:
        if spec.url or spec.mirrors:
            out.append(_from_spec(spec, _urls(spec)))
        else:
            out.append(_manual(spec, "no download URL in the catalog"))
    return out


def _manual(spec: FileSpec, reason: str) -> ResolvedFile:
    f = _from_spec(spec, [])
    f.manual, f.manual_reason = True, reason
    return f


def resolve_manual(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    if not entry.files:
        raise ManualDownloadRequired(f"{entry.id}: manual source without a file list in the catalog",
                                     entry.manual_instructions or "")
    return [_manual(s, "behind a login, request form or licence click-through") for s in entry.files]


# --------------------------------------------------------------------------- zenodo
def zenodo_id(record: str) -> str:
    m = re.search(r"zenodo\.(\d+)$", record) or re.search(r"/records?/(\d+)", record) or re.fullmatch(r"(\d+)", record)
    if not m:
        raise ResolveError(f"not a Zenodo record id or DOI: {record!r}")
    return m.group(1)


def resolve_zenodo(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    host, err = None, "host checksums not looked up"
    if entry.record and _api_needed(entry, ctx):
        rid = zenodo_id(entry.record)
        api = f"{ctx.settings.zenodo_api}/api/records/{rid}"
        try:
            # recorded shape (zenodo.org REST API, InvenioRDM legacy serialisation):
            # {"files": [{"key": "x.zip", "size": 1, "checksum": "md5:<hex>", "links": {"self": "..."}}]}
            data = _get_json(ctx, api, f"{entry.id} (Zenodo record {rid})")
            host = {}
            for f in data.get("files", []):
                links = f.get("links", {})
                url = links.get("content") or links.get("download") or links.get("self") \
                    or f"{ctx.settings.zenodo_api}/records/{rid}/files/{f['key']}?download=1"
                algo, _, hexd = (f.get("checksum") or "").partition(":")
                host[f["key"]] = {"url": url, "size": f.get("size"),
                                  "checksums": {algo: hexd} if algo in ("md5", "sha256") and hexd else {}}
        except ResolveError as e:
            err = str(e)
    elif not entry.record:
        err = f"{entry.id}: zenodo source without a record id"

    def default(name: str, h: dict) -> ResolvedFile:
        return ResolvedFile(name=name, locations=[Location(h["url"])], size=h.get("size"),
                            host_checksums=h.get("checksums", {}))
    return _with_host(entry, ctx, host, err, default)


# --------------------------------------------------------------------------- figshare
def figshare_id(record: str) -> tuple[str, Optional[str]]:
    m = (re.search(r"figshare\.(\d+)(?:\.v(\d+))?$", record) or re.fullmatch(r"(\d+)(?:/?v(\d+))?", record)
         or re.search(r"/articles/(?:[^/]+/)*?(\d+)(?:/(\d+))?/?$", record))
    if not m:
        raise ResolveError(f"not a Figshare article id or DOI: {record!r}")
    return m.group(1), m.group(2)


def resolve_figshare(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    host, err = None, "host checksums not looked up"
    if entry.record and _api_needed(entry, ctx):
        aid, ver = figshare_id(entry.record)
        api = f"{ctx.settings.figshare_api}/v2/articles/{aid}" + (f"/versions/{ver}" if ver else "")
        try:
            # recorded shape (api.figshare.com/v2 article): {"files": [{"name", "size", "download_url",
            #   "computed_md5", "supplied_md5", "is_link_only"}]}
            data = _get_json(ctx, api, f"{entry.id} (Figshare article {aid})")
            host = {}
            for f in data.get("files", []):
                if f.get("is_link_only"):
                    continue
                md5 = f.get("computed_md5") or f.get("supplied_md5")
                host[f["name"]] = {"url": f["download_url"], "size": f.get("size"),
                                   "checksums": {"md5": md5} if md5 else {}}
        except ResolveError as e:
            err = str(e)
    elif not entry.record:
        err = f"{entry.id}: figshare source without an article id"

    def default(name: str, h: dict) -> ResolvedFile:
        return ResolvedFile(name=name, locations=[Location(h["url"])], size=h.get("size"),
                            host_checksums=h.get("checksums", {}))
    return _with_host(entry, ctx, host, err, default)


# --------------------------------------------------------------------------- mendeley
def mendeley_id(record: str) -> tuple[str, Optional[str]]:
    m = (re.search(r"10\.17632/([a-z0-9]+)(?:\.(\d+))?$", record)
         or re.search(r"/datasets/([a-z0-9]+)(?:/(\d+))?", record)
         or re.fullmatch(r"([a-z0-9]+)(?:[/.@](\d+))?", record))
    if not m:
        raise ResolveError(f"not a Mendeley Data id or DOI: {record!r}")
    return m.group(1), m.group(2)


def resolve_mendeley(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    if not entry.record:
        return resolve_http(entry, ctx)
    did, ver = mendeley_id(entry.record)
    base = ctx.settings.mendeley_api
    if not entry.files:
        # no file list: the whole dataset as one zip (public, no login), as Mendeley's "Download All"
        if not ver:
            raise ResolveError(f"{entry.id}: give the Mendeley record with its version, e.g. '{did}/1'")
        return [ResolvedFile(name=f"{did}-{ver}.zip", locations=[Location(f"{base}/public-api/zip/{did}/download/{ver}")],
                             archive="zip")]
    host, err = None, "host checksums not looked up"
    params = {"folder_id": "root"}
    if ver:
        params["version"] = ver
    # the root listing gives URLs for files the catalog lists without one, and sha256s for all
    if not _api_needed(entry, ctx):
        return _with_host(entry, ctx, None, err, lambda n, h: ResolvedFile(name=n))
    try:
        # recorded shape (data.mendeley.com public API, root folder listing):
        # [{"filename": "x.zip", "size": 1, "content_details": {"sha256_hash": "<hex>", "size": 1,
        #   "download_url": "https://.../x.zip?signature"}}]
        data = _get_json(ctx, f"{base}/public-api/datasets/{did}/files?{urlencode(params)}",
                         f"{entry.id} (Mendeley dataset {did})")
        host = {}
        for f in data if isinstance(data, list) else []:
            cd = f.get("content_details") or {}
            if not cd.get("download_url"):
                continue
            sha = cd.get("sha256_hash")
            host[f["filename"]] = {"url": cd["download_url"], "size": cd.get("size", f.get("size")),
                                   "checksums": {"sha256": sha} if sha else {}}
    except ResolveError as e:
        err = str(e)
    return _with_host(entry, ctx, host, err, lambda n, h: ResolvedFile(name=n))


# --------------------------------------------------------------------------- github
_RELEASE = re.compile(r"/([^/]+)/([^/]+)/releases/download/([^/]+)/([^/?#]+)$")


def github_record(record: str) -> tuple[str, str, Optional[str]]:
    m = re.fullmatch(r"(?:https?://github\.com/)?([\w.-]+)/([\w.-]+?)(?:\.git)?(?:@(.+))?", record.strip())
    if not m:
        raise ResolveError(f"not a GitHub 'owner/repo@ref' record: {record!r}")
    return m.group(1), m.group(2), m.group(3)


def resolve_github(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    if not entry.files:
        if not entry.record:
            raise ResolveError(f"{entry.id}: github source without files or record")
        owner, repo, ref = github_record(entry.record)
        if not ref:
            raise ResolveError(f"{entry.id}: pin the GitHub archive to a commit or tag ('{owner}/{repo}@<ref>')")
        safe_ref = ref.replace("/", "-")
        url = f"{ctx.settings.github_web}/{owner}/{repo}/archive/{ref}.zip"
        return [ResolvedFile(name=f"{repo}-{safe_ref}.zip", locations=[Location(url)], archive="zip",
                             hint="GitHub generates repository archives on the fly; pin them by commit.")]
    out = []
    releases: dict[tuple[str, str, str], Optional[dict]] = {}
    for spec in entry.files:
        host = None
        m = _RELEASE.search(urlsplit(spec.url or "").path)
        if m:
            owner, repo, tag, asset = m.groups()
            key = (owner, repo, tag)
            if key not in releases and not ctx.lookups:
                releases[key] = None
            if key not in releases:
                try:
                    # recorded shape (GitHub REST "get a release by tag name"): {"assets": [{"name", "size",
                    #   "browser_download_url", "digest": "sha256:<hex>" (present on assets since 2025)}]}
                    releases[key] = _get_json(ctx, f"{ctx.settings.github_api}/repos/{owner}/{repo}/releases/tags/{tag}",
                                              f"{entry.id} (GitHub release {owner}/{repo}@{tag})")
                except ResolveError as e:
                    ctx.log(f"  {e}; continuing without the release's published sizes")
                    releases[key] = None
            for a in (releases[key] or {}).get("assets", []):
                if a.get("name") == asset:
                    algo, _, hexd = (a.get("digest") or "").partition(":")
                    host = {"size": a.get("size"), "checksums": {"sha256": hexd} if algo == "sha256" and hexd else {}}
        out.append(_from_spec(spec, _urls(spec), host))
    return out


# --------------------------------------------------------------------------- google drive
def gdrive_file_id(url: str) -> Optional[str]:
    m = re.search(r"/file/d/([\w-]{10,})", url) or re.search(r"[?&]id=([\w-]{10,})", url)
    return m.group(1) if m else None


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"id": a.get("id"), "action": a.get("action") or "", "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def gdrive_interstitial(settings: FetchSettings) -> Callable[[str, str], Optional[str]]:
    """Google Drive's "can't scan this file for viruses" page -> the confirmed download URL.

    The page holds ``<form id="download-form" action=".../download">`` with hidden
    ``id``/``export``/``confirm``/``uuid`` inputs (older pages: a link with ``confirm=``).
    Only forms posting back to Google Drive (or the configured base) are followed.
    """
    allowed = {urlsplit(settings.gdrive_url).hostname, "drive.usercontent.google.com", "drive.google.com",
               "docs.google.com"}

    def follow(page: str, url: str) -> Optional[str]:
        p = _FormParser()
        try:
            p.feed(page)
        except Exception:  # malformed HTML: treat as not an interstitial
            return None
        for form in p.forms:
            if "id" in form["inputs"] and ("confirm" in form["inputs"] or form["id"] == "download-form"):
                action = urljoin(url, html.unescape(form["action"]))
                if urlsplit(action).hostname in allowed:
                    return action + "?" + urlencode(form["inputs"])
        m = re.search(r'href="(/uc\?export=download[^"]*confirm=[^"]+)"', page)
        if m:
            return urljoin(url, html.unescape(m.group(1)))
        return None
    return follow


def resolve_gdrive(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    out = []
    for spec in entry.files:
        if spec.url and "/folders/" in spec.url:
            out.append(_manual(spec, f"Google Drive folders cannot be downloaded without a Google account/API key: "
                                     f"open {spec.url}, use 'Download all' and save the result as {spec.name}"))
            continue
        fid = gdrive_file_id(spec.url or "")
        if not fid:
            out.append(_from_spec(spec, _urls(spec)))
            continue
        url = f"{ctx.settings.gdrive_url}/download?{urlencode({'id': fid, 'export': 'download'})}"
        locs = [Location(url, interstitial=gdrive_interstitial(ctx.settings))] + [Location(m) for m in spec.mirrors]
        f = _from_spec(spec, locs)
        f.hint = ("Google Drive sometimes refuses automated downloads (daily quota, or the file is not "
                  "shared publicly); try again later or download it in a browser into the manual folder.")
        out.append(f)
    return out


# --------------------------------------------------------------------------- kaggle
def kaggle_credentials(env: dict[str, str], config_dir: Optional[str] = None) -> Optional[tuple[str, str]]:
    """(username, key) from KAGGLE_USERNAME/KAGGLE_KEY, else ``<KAGGLE_CONFIG_DIR or ~/.kaggle>/kaggle.json``."""
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return env["KAGGLE_USERNAME"], env["KAGGLE_KEY"]
    d = Path(config_dir or env.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle")
    try:
        data = json.loads((d / "kaggle.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("username") and data.get("key"):
        return str(data["username"]), str(data["key"])
    return None


def kaggle_record(record: str) -> tuple[str, str, Optional[str]]:
    m = re.search(r"(?:datasets/)?([\w.-]+)/([\w.-]+?)(?:@(\d+))?/?$", record.strip())
    if not m:
        raise ResolveError(f"not a Kaggle 'owner/dataset' slug: {record!r}")
    return m.group(1), m.group(2), m.group(3)


def resolve_kaggle(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    if not entry.record:
        return resolve_http(entry, ctx)
    owner, slug, ver = kaggle_record(entry.record)
    page = f"https://www.kaggle.com/datasets/{owner}/{slug}"
    creds = kaggle_credentials(ctx.env, ctx.settings.kaggle_config_dir)
    api = f"{ctx.settings.kaggle_api}/datasets/download/{owner}/{slug}" + (
        f"?{urlencode({'datasetVersionNumber': ver})}" if ver else "")
    specs = entry.files or [FileSpec(name=f"{slug}.zip", archive="zip")]
    out = []
    for spec in specs:
        if spec.url and not spec.url.startswith(ctx.settings.kaggle_api):
            out.append(_from_spec(spec, _urls(spec)))  # a plain mirror: no credentials sent
            continue
        if creds is None:
            out.append(_manual(spec, f"Kaggle needs your own credentials: set KAGGLE_USERNAME and KAGGLE_KEY or "
                                     f"put kaggle.json (from kaggle.com > Settings > API) in ~/.kaggle/, or "
                                     f"download {page} in a browser and save it as {spec.name}"))
            continue
        f = _from_spec(spec, [Location(spec.url or api, auth=creds)] + [Location(m) for m in spec.mirrors])
        f.hint = (f"Kaggle answers 401/403 when the credentials are wrong or the dataset's rules were not "
                  f"accepted on {page} with your account.")
        out.append(f)
    return out


# --------------------------------------------------------------------------- tcia
def resolve_tcia(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    """Catalog files with URLs are downloaded directly; files without are manual (Aspera packages).

    With no file list, ``record`` names an NBIA collection whose DICOM series are listed
    (``getSeries``) and downloaded one zip per series (``getImage``). Non-DICOM
    collections (the hematology TIFF sets) list no series: they are manual downloads.
    """
    if entry.files:
        out = []
        for spec in entry.files:
            if spec.url or spec.mirrors:
                out.append(_from_spec(spec, _urls(spec)))
            else:
                out.append(_manual(spec, "TCIA distributes this collection as an IBM Aspera/Faspex package "
                                         "(browser plugin); download it from the collection page"))
        return out
    if not entry.record:
        raise ResolveError(f"{entry.id}: tcia source without files or collection name")
    base = ctx.settings.tcia_api
    # recorded shape (NBIA REST v1 getSeries): [{"SeriesInstanceUID": "1.2...", "Collection": "...", ...}]
    series = _get_json(ctx, f"{base}/getSeries?{urlencode({'Collection': entry.record, 'format': 'json'})}",
                       f"{entry.id} (TCIA collection {entry.record})")
    uids = [s["SeriesInstanceUID"] for s in series if isinstance(s, dict) and s.get("SeriesInstanceUID")]
    if not uids:
        raise ManualDownloadRequired(
            f"{entry.id}: TCIA lists no DICOM series for collection {entry.record!r}",
            entry.manual_instructions or f"Download the collection package from {entry.homepage} "
                                         f"(IBM Aspera/Faspex) and put its files in the manual folder.")
    return [ResolvedFile(name=f"{uid}.zip", archive="zip", extract_to=uid,
                         locations=[Location(f"{base}/getImage?{urlencode({'SeriesInstanceUID': uid})}")])
            for uid in uids]


RESOLVERS: dict[str, Callable[[DatasetEntry, Context], list[ResolvedFile]]] = {
    "http": resolve_http,
    "manual": resolve_manual,
    "zenodo": resolve_zenodo,
    "figshare": resolve_figshare,
    "mendeley": resolve_mendeley,
    "github": resolve_github,
    "gdrive": resolve_gdrive,
    "kaggle": resolve_kaggle,
    "tcia": resolve_tcia,
}


def resolve(entry: DatasetEntry, ctx: Context) -> list[ResolvedFile]:
    """Resolve ``entry`` with the resolver of its access kind."""
    try:
        fn = RESOLVERS[entry.access]
    except KeyError:
        raise ResolveError(f"{entry.id}: no resolver for access kind {entry.access!r}") from None
    try:
        return fn(entry, ctx)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        # a host API answered with a shape we do not know: say so instead of a traceback
        raise ResolveError(f"{entry.id}: unexpected answer from the {entry.access} API "
                           f"({type(e).__name__}: {e}); the host may have changed its format") from None
