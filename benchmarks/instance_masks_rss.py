"""Peak memory of ``convert`` on a large instance-segmentation source (issue 16, "Done means").

Writes a synthetic instance-mask source: ``--images`` field-of-view JPEGs of ``--width`` x
``--height`` (default 4000x3000) with a 16-bit PNG instance mask each holding ``--cells`` (default
250) labelled cells, converts it with ``--num-proc`` workers (default 2) through the
:class:`~unihema_data.adapters.families.InstanceMaskPairAdapter` family (objects handed to the
workers as lazy ``(mask file, instance value)`` references), and samples the resident memory of
the whole process tree (main + workers, summed) every 20 ms. Prints one JSON line::

    {"images": 4, "cells_per_image": 250, "objects": 1000, "peak_rss_mb": 612.3, "seconds": 31.2, ...}

and exits 1 when the peak is above ``--limit-mb`` (default 1024). Every decoded mask is checked:
the object count of the output equals the number of cells written.

Usage: ``python benchmarks/instance_masks_rss.py [--images 4] [--cells 250] [--num-proc 2]``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unihema_data.adapters.base import FakeSample, FakeTruth  # noqa: E402
from unihema_data.adapters.families import InstanceMaskPairAdapter  # noqa: E402

SID = "bench_instances"


class BenchInstances(InstanceMaskPairAdapter):
    """``images/<n>.jpg`` + ``masks/<n>.png`` (uint16 instance ids, 0 = background)."""

    id = SID
    markers = ("images", "masks")
    mask_suffixes = (".png",)
    width, height, cells, images = 4000, 3000, 250, 4

    def instance_category(self, rec, value) -> str:
        return "wbc" if value % 10 == 0 else "rbc"

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        rng = np.random.default_rng(seed)
        root = Path(out)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(exist_ok=True)
        truth = {}
        W, H = self.width, self.height
        for i in range(self.images):
            mask = Image.new("I;16", (W, H), 0)
            dm = ImageDraw.Draw(mask)
            im = Image.fromarray(rng.integers(200, 240, size=(H // 8, W // 8, 3), dtype=np.uint8)).resize((W, H))
            di = ImageDraw.Draw(im)
            cols, rows = int(np.ceil(np.sqrt(self.cells * W / H))), 0
            rows = int(np.ceil(self.cells / cols))
            cw, ch = W / cols, H / rows
            for k in range(self.cells):  # one cell per grid slot: every instance survives
                cx, cy = (k % cols + 0.5) * cw, (k // cols + 0.5) * ch
                r = float(rng.uniform(0.25, 0.45)) * min(cw, ch)
                box = [cx - r, cy - r * 0.9, cx + r, cy + r * 0.9]
                dm.ellipse(box, fill=k + 1)
                di.ellipse(box, fill=(120, 70, 160) if (k + 1) % 10 == 0 else (214, 120, 130))
            im.save(root / "images" / f"{i:03d}.jpg", quality=85)
            mask.save(root / "masks" / f"{i:03d}.png")
            truth[f"images/{i:03d}.jpg"] = FakeSample(f"images/{i:03d}.jpg")
        return FakeTruth(root, truth)


def _tree_rss(proc) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except Exception:  # noqa: BLE001 - a worker may exit between listing and reading
            pass
    return total


def run(images: int, cells: int, num_proc: int, width: int, height: int, workdir: Path) -> dict:
    import psutil
    import pyarrow.parquet as pq
    import yaml

    import unihema_data.convert as cv
    from unihema_data.adapters import REGISTRY
    from unihema_data.catalog import Catalog, DatasetEntry, load_catalog
    from unihema_data.outdir import all_parquet_files
    from unihema_data.taxonomy import load_taxonomy

    BenchInstances.images, BenchInstances.cells, BenchInstances.width, BenchInstances.height = images, cells, width, height
    BenchInstances().fake(workdir / "raw" / SID)
    tax = yaml.safe_load(Path(load_taxonomy.__code__.co_filename).with_name("taxonomy.yaml").read_text())
    tax["sources"][SID] = {"labels": {"wbc": "lymphocyte", "rbc": "rbc"}}
    (workdir / "taxonomy.yaml").write_text(yaml.safe_dump(tax, allow_unicode=True))
    REGISTRY[SID] = BenchInstances
    entry = DatasetEntry(id=SID, name=SID, citation="benchmark", homepage="https://example.org", license="MIT",
                         redistributable=True, access="manual", manual_instructions="synthetic",
                         tasks=["detection", "segmentation"], disease=["normal"], granularity="field_of_view",
                         native_format="instance_masks")
    base = load_catalog()
    cv.load_catalog = lambda: base.merged(Catalog(datasets=[entry]))

    proc = psutil.Process()
    peak = [_tree_rss(proc)]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc))
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.perf_counter()
    rep = cv.convert([SID], workdir / "raw", workdir / "out",
                     cv.ConvertOptions(num_proc=num_proc, progress=False, taxonomy_path=str(workdir / "taxonomy.yaml")))[0]
    seconds = time.perf_counter() - t0
    done.set()
    t.join()
    objects = sum(len(o) for f in all_parquet_files(workdir / "out")
                  for o in pq.read_table(f, columns=["objects"]).column("objects").combine_chunks().field("bbox").to_pylist())
    return {"images": rep.total, "cells_per_image": cells, "objects": objects, "width": width, "height": height,
            "num_proc": num_proc, "peak_rss_mb": round(peak[0] / 2**20, 1), "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--cells", type=int, default=250)
    ap.add_argument("--num-proc", type=int, default=2)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--limit-mb", type=float, default=1024)
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="unihema-rss-") as tmp:
        res = run(a.images, a.cells, a.num_proc, a.width, a.height, a.workdir or Path(tmp))
    res["limit_mb"] = a.limit_mb
    res["ok"] = res["peak_rss_mb"] < a.limit_mb and res["objects"] == res["images"] * a.cells
    print(json.dumps(res))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
