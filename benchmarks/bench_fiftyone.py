"""Load speed into FiftyOne: ``unihema_data.fiftyone_io.to_fiftyone`` against FiftyOne's own COCO
importer on the same images and boxes, in one process, against one warm ``mongod``.

Corpus: N BCCD-layout VOC images from ``make_voc_corpus.py`` (640x480 JPEG, 5-25 boxes each),
converted with ``unihema-data convert``; the same images plus a COCO ``instances.json`` written
from the converted rows (same boxes, canonical labels) feed the COCO importer.

Contenders (each repeat rotates their order; every repeat loads into a fresh dataset):

* ``coco``: ``fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset, data_path=...,
  labels_path=..., label_types="detections")``: reads the JSON, references the image files in
  place.
* ``unihema``: ``to_fiftyone(OUT)`` into a fresh dataset and a fresh media folder: reads the
  Parquet shards, writes every image out of Parquet into the content-addressed media folder, and
  carries every schema field (provenance, attributes, qc flags, class ids, row digest).
* ``unihema-reload``: ``to_fiftyone`` again on the unchanged corpus (informational; the
  incremental path, no row read).

The FiftyOne home (database, datasets, config) is a temporary folder unless ``--keep-home``.
Results: a section of ``benchmarks/RESULTS.md`` between ``<!-- keep:begin fiftyone -->`` and
``<!-- keep:end fiftyone -->`` (``bench_convert.py`` keeps such sections when it rewrites the file).

Usage::

    python benchmarks/bench_fiftyone.py [--n 500] [--repeats 3] [--results benchmarks/RESULTS.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))


def _setup_home(base: Path) -> None:
    os.environ.update({
        "FIFTYONE_DATABASE_DIR": str(base / "db"),
        "FIFTYONE_DEFAULT_DATASET_DIR": str(base / "datasets"),
        "FIFTYONE_CONFIG_PATH": str(base / "config.json"),
        "FIFTYONE_DO_NOT_TRACK": "true",
        "DO_NOT_TRACK": "1",
    })


def write_coco(out: Path, images_dir: Path, dest: Path) -> int:
    """COCO ``instances.json`` of the converted rows (``file_name`` = the native image name)."""
    from unihema_data.corpus_rows import corpus_shards, iter_rows, label_name

    cats: dict[str, int] = {}
    images, anns = [], []
    for _sh, rows in iter_rows(corpus_shards(out), columns=["sample_id", "width", "height", "objects"]):
        for r in rows:
            img_id = len(images) + 1
            fname = r["sample_id"].rsplit("/", 1)[-1]
            assert (images_dir / fname).exists(), fname
            images.append({"id": img_id, "file_name": fname, "width": r["width"], "height": r["height"]})
            for box, cat in zip(r["objects"]["bbox"], r["objects"]["category"]):
                c = cats.setdefault(label_name(cat), len(cats) + 1)
                anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": c, "bbox": [float(v) for v in box],
                             "area": float(box[2] * box[3]), "iscrowd": 0})
    dest.write_text(json.dumps({"images": images, "annotations": anns,
                                "categories": [{"id": i, "name": n} for n, i in cats.items()]}))
    return len(anns)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=500, help="images (default 500)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args(argv)
    command = "python benchmarks/bench_fiftyone.py " + " ".join(argv if argv is not None else sys.argv[1:])
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench-fo-"))
    work.mkdir(parents=True, exist_ok=True)
    _setup_home(work / "fo-home")
    try:
        from make_voc_corpus import make_corpus

        from unihema_data.convert import ConvertOptions, convert

        t = time.perf_counter()
        make_corpus(work / "raw" / "bccd", a.n, a.seed)
        out = work / "out"
        convert(["bccd"], work / "raw", out, ConvertOptions(num_proc=1, progress=False))
        images_dir = work / "raw" / "bccd" / "BCCD" / "JPEGImages"
        n_boxes = write_coco(out, images_dir, work / "instances.json")
        print(f"corpus: {a.n} images, {n_boxes} boxes ({time.perf_counter() - t:.1f} s)", flush=True)

        t = time.perf_counter()
        import fiftyone as fo

        from unihema_data.fiftyone_io import to_fiftyone

        fo.list_datasets()  # start mongod before timing anything
        startup = time.perf_counter() - t
        runs: dict[str, list[float]] = {"coco": [], "unihema": [], "unihema-reload": []}
        counts: dict[str, int] = {}
        for i in range(a.repeats):
            order = ["coco", "unihema"] if i % 2 == 0 else ["unihema", "coco"]
            for who in order:
                name = f"bench-{who}-{i}"
                t = time.perf_counter()
                if who == "coco":
                    ds = fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset, data_path=str(images_dir),
                                             labels_path=str(work / "instances.json"), label_types="detections",
                                             name=name, progress=False)
                    counts["coco"] = ds.count("ground_truth.detections")
                else:
                    ds, rep = to_fiftyone(out, name, media_dir=work / f"media-{i}")
                    counts["unihema"] = ds.count("detections.detections")
                runs[who].append(time.perf_counter() - t)
                print(f"repeat {i + 1}: {who} {runs[who][-1]:.2f} s ({len(ds)} samples)", flush=True)
                if who == "unihema":
                    t = time.perf_counter()
                    _, rep = to_fiftyone(out, name, media_dir=work / f"media-{i}")
                    assert rep.up_to_date
                    runs["unihema-reload"].append(time.perf_counter() - t)
                ds.delete()
        assert counts["coco"] == counts["unihema"] == n_boxes, counts
        med = {k: statistics.median(v) for k, v in runs.items()}
        ratio = med["coco"] / med["unihema"]
        lines = [
            "<!-- keep:begin fiftyone -->",
            "## Loading into FiftyOne (`to-fiftyone` vs FiftyOne's COCO importer)",
            "",
            f"Generated by `benchmarks/bench_fiftyone.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
            f"({platform.machine()}, {os.cpu_count()} cores, fiftyone {fo.__version__}):",
            "",
            "```",
            command.strip(),
            "```",
            "",
            f"{a.n} BCCD-layout images (640x480 JPEG), {n_boxes} boxes; one warm `mongod` (start-up "
            f"{startup:.1f} s, not counted); {a.repeats} repeats, order alternated, median. `unihema` writes every "
            f"image out of Parquet into a fresh media folder and stores all schema fields; `coco` references the "
            f"JPEGs in place.",
            "",
            "| contender | median s | images/s | runs (s) |",
            "|---|---:|---:|---|",
        ]
        for k in ("coco", "unihema", "unihema-reload"):
            lines.append(f"| {k} | {med[k]:.2f} | {a.n / med[k]:.0f} | {', '.join(f'{v:.2f}' for v in runs[k])} |")
        lines += ["", f"Target \"at least as fast as FiftyOne's COCO importer\": "
                      f"{'met' if ratio >= 1 else 'MISSED'} ({ratio:.2f}x: coco median / unihema median).",
                  "<!-- keep:end fiftyone -->", ""]
        section = "\n".join(lines)
        print(section)
        text = a.results.read_text(encoding="utf-8") if a.results.exists() else ""
        pat = re.compile(r"<!-- keep:begin fiftyone -->.*?<!-- keep:end fiftyone -->\n?", re.S)
        text = pat.sub(lambda _m: section, text) if pat.search(text) else text.rstrip("\n") + "\n\n" + section
        a.results.write_text(text, encoding="utf-8")
        print(f"written: {a.results}")
        return 0
    finally:
        _stop_database()
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _stop_database() -> None:
    """Stop the benchmark's own ``mongod`` before its folder is removed (FiftyOne would otherwise
    stop it at exit, after the folder is gone)."""
    if "fiftyone" not in sys.modules:
        return
    import atexit

    import fiftyone.core.odm.database as fodb

    atexit.unregister(fodb._delete_non_persistent_datasets_if_allowed)
    if fodb._client is not None:
        fodb._client.close()
    if fodb._db_service is not None:
        fodb._db_service.stop()


if __name__ == "__main__":
    raise SystemExit(main())
