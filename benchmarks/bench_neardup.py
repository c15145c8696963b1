"""Cost of near-duplicate detection (unihema_data.neardup) per 10k images, and its accuracy on
planted copies.

Corpus (seeded, generated in memory, not timed): ``--n`` PBC-like 360x363 JPEG single-cell crops
(the fakes' cell drawing plus seeded granule dots, see :func:`textured`),
of which 10 % are copies of other crops as they circulate (resized to 28/64/128/224 px, the
MedMNIST centre-crop + resize, JPEG re-encoded at quality 40-95). Timed stages, as conversion
runs them:

1. ``hash``: :func:`neardup.image_phashes` of every image (done once per row during conversion);
2. ``candidates``: :func:`neardup.candidate_pairs` over all rows (every resolution pass);
3. ``confirm``: :func:`neardup.confirm` of every candidate pair not already joined (first pass;
   later passes read the decision cache).

Also times ``candidate_pairs`` alone at 5x and 20x ``--n`` random hashes (a multi-index: near-linear).

    python benchmarks/bench_neardup.py                 # --n 10000 (about 2-3 min on 2 cores)
    python benchmarks/bench_neardup.py --n 300 --results /tmp/r.md
"""
from __future__ import annotations

import argparse
import io
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unihema_data import neardup  # noqa: E402
from unihema_data.adapters import _synthetic as syn  # noqa: E402

MARK_BEGIN, MARK_END = "<!-- keep:begin neardup -->", "<!-- keep:end neardup -->"


def textured(img: Image.Image, seed: int) -> Image.Image:
    """Seeded granules/chromatin dots over the flat synthetic drawing: real cells are textured, and
    two flat cartoon cells centre-cropped and shrunk to 28 px can be indistinguishable (measured:
    1 false merge per 1,000 flat crops; different real PBC cells stay >= 22 grey levels apart)."""
    from PIL import ImageDraw

    rng = np.random.default_rng([seed, 31])
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(int(rng.integers(40, 90))):
        x, y, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, 6)
        g = int(rng.integers(40, 200))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=(g // 2, g // 4, g))
    return img


def corpus(n: int, seed: int) -> tuple[list[bytes], list[int]]:
    """``n`` images; ``origin[i]`` = index of the original a copy was made from (itself if none)."""
    rng = np.random.default_rng(seed)
    n_copies = n // 10
    originals = [syn.encode(textured(syn.single_cell(360, "wbc" if k % 5 else "platelet", seed * 1_000_003 + k,
                                                     size_h=363), seed * 1_000_003 + k), "JPEG", quality=85)
                 for k in range(n - n_copies)]
    images, origin = list(originals), list(range(len(originals)))
    for _ in range(n_copies):
        k = int(rng.integers(len(originals)))
        img = Image.open(io.BytesIO(originals[k])).convert("RGB")
        kind = rng.integers(3)
        buf = io.BytesIO()
        if kind == 0:
            s = int(rng.choice([28, 64, 128, 224]))
            img.resize((s, s), Image.Resampling.LANCZOS).save(buf, "PNG")
        elif kind == 1:
            s = int(rng.choice([28, 64, 128, 224]))
            neardup.centre_crop(img).resize((s, s), Image.Resampling.BICUBIC).save(buf, "PNG")
        else:
            img.save(buf, "JPEG", quality=int(rng.integers(40, 96)))
        images.append(buf.getvalue())
        origin.append(k)
    return images, origin


def run(n: int, seed: int) -> dict:
    t = time.perf_counter()
    images, origin = corpus(n, seed)
    gen = time.perf_counter() - t
    t, c = time.perf_counter(), time.process_time()
    hashes = [neardup.image_phashes(d) for d in images]
    t_hash, c_hash = time.perf_counter() - t, time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    pairs = neardup.candidate_pairs(hashes)
    t_cand, c_cand = time.perf_counter() - t, time.process_time() - c
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    t, c = time.perf_counter(), time.process_time()
    checked = 0
    for i, j, mode in pairs:
        if find(i) == find(j):
            continue
        checked += 1
        if neardup.confirm(images[i], images[j], mode):
            parent[max(find(i), find(j))] = min(find(i), find(j))
    t_conf, c_conf = time.perf_counter() - t, time.process_time() - c
    found = [find(i) for i in range(n)]
    truth = [origin[i] for i in range(n)]
    missed = sum(found[i] != found[truth[i]] for i in range(n))               # a copy not joined to its original
    by_group: dict[int, set[int]] = {}
    for i in range(n):
        by_group.setdefault(found[i], set()).add(truth[i])
    false = sum(len(s) - 1 for s in by_group.values())                         # distinct originals merged
    scale = {}
    for k in (5, 20):
        rnd = np.random.default_rng(seed).integers(0, 2**63, size=(k * n, 2), dtype=np.int64)
        rh = [[f"{int(a):016x}", f"{int(b):016x}"] for a, b in rnd]
        c = time.process_time()
        neardup.candidate_pairs(rh)
        scale[k] = time.process_time() - c
    return dict(n=n, copies=n // 10, generate_s=gen, hash_s=c_hash, candidates_s=c_cand, candidate_pairs=len(pairs),
                confirmed_checks=checked, confirm_s=c_conf, wall_s=t_hash + t_cand + t_conf, missed_copies=missed, false_merges=false,
                candidates_5n_s=scale[5], candidates_20n_s=scale[20])


def table(r: dict) -> str:
    per = 10_000 / r["n"]
    total = r["hash_s"] + r["candidates_s"] + r["confirm_s"]
    lines = [
        MARK_BEGIN,
        "## Near-duplicate detection (`benchmarks/bench_neardup.py`)",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, numpy {np.__version__}: `python benchmarks/bench_neardup.py --n {r['n']}`.",
        f"{r['n']} PBC-like 360x363 JPEG crops, {r['copies']} of them planted copies (resized 28-224 px, MedMNIST "
        "centre crop + resize, JPEG re-encoded at quality 40-95). CPU seconds of the single benchmark process "
        f"(the machine is shared: wall-clock for the three stages was {r['wall_s']:.1f} s).",
        "",
        "| stage | CPU s | CPU s per 10k images |",
        "|---|---:|---:|",
        f"| perceptual hashes (once per row, at conversion) | {r['hash_s']:.1f} | {r['hash_s'] * per:.1f} |",
        f"| candidate pairs, chunk index ({r['candidate_pairs']} found) | {r['candidates_s']:.2f} | "
        f"{r['candidates_s'] * per:.2f} |",
        f"| pixel confirmation ({r['confirmed_checks']} pairs checked) | {r['confirm_s']:.1f} | {r['confirm_s'] * per:.1f} |",
        f"| **total** | **{total:.1f}** | **{total * per:.1f}** |",
        f"| candidate pairs alone at {5 * r['n']} / {20 * r['n']} random hashes | {r['candidates_5n_s']:.2f} / "
        f"{r['candidates_20n_s']:.2f} | — |",
        "",
        f"Accuracy: {r['copies'] - r['missed_copies']} of {r['copies']} planted copies joined to their original "
        f"({r['missed_copies']} missed); {r['false_merges']} distinct originals merged with another.",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    a = ap.parse_args(argv)
    r = run(a.n, a.seed)
    block = table(r)
    print(block)
    text = a.results.read_text(encoding="utf-8") if a.results.exists() else ""
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + block.rstrip("\n") + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block
    a.results.write_text(text, encoding="utf-8")
    return 0 if r["missed_copies"] == 0 and r["false_merges"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
