"""Near-duplicates (issue 17): resized (BloodMNIST-style) and re-encoded copies are found, different
cells of one smear are not merged; on synthetic images and on the real PBC sample."""
from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from unihema_data import integrity, neardup
from unihema_data.adapters import _synthetic as syn
from unihema_data.adapters.base import RawSample
from unihema_data.outdir import staged_source
from unihema_data.rows import SourceContext, build_row

REAL_PBC = Path(__file__).resolve().parents[2] / "shared" / "real-samples" / "pbc" / "PBC_dataset_normal_DIB"
SIZES = (28, 64, 128, 224)


def _enc(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def variants(data: bytes) -> dict[str, bytes]:
    """Copies of one image as they circulate: resized to 28/64/128/224 px (whole image, and the
    MedMNIST way: centre 200x200 of 360 then resized), re-encoded as JPEG at other qualities."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    out = {}
    for s in SIZES:
        out[f"resized{s}"] = _enc(img.resize((s, s), Image.Resampling.LANCZOS))
        out[f"medmnist{s}"] = _enc(neardup.centre_crop(img).resize((s, s), Image.Resampling.BICUBIC))
    for q in (40, 70, 95):
        out[f"jpeg{q}"] = _enc(img, "JPEG", quality=q)
    return out


def smear_crops() -> list[bytes]:
    """Different cells of ONE smear: 360x360 crops of a 1440x1080 field of view with 40 cells."""
    rng = np.random.default_rng(5)
    cells = [((float(rng.uniform(0, 1380)), float(rng.uniform(0, 1020)), 60.0, 60.0), "rbc") for _ in range(40)]
    cells += [((float(x), float(y), 200.0, 200.0), "wbc") for x in (80, 440, 800, 1160) for y in (80, 440, 800)]
    fov = syn.smear(1440, 1080, cells, seed=11)
    return [_enc(fov.crop((x, y, x + 360, y + 360)), "JPEG", quality=90)
            for x in (0, 360, 720, 1080) for y in (0, 360, 720)]


def groups_of(images: list[bytes]) -> list[set[int]]:
    """Connected components of confirmed near-duplicate pairs (singletons left out)."""
    hashes = [neardup.image_phashes(d) for d in images]
    parent = list(range(len(images)))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for i, j, mode in neardup.candidate_pairs(hashes):
        if find(i) != find(j) and neardup.confirm(images[i], images[j], mode):
            parent[find(j)] = find(i)
    comps: dict[int, set[int]] = {}
    for i in range(len(images)):
        comps.setdefault(find(i), set()).add(i)
    return sorted((c for c in comps.values() if len(c) > 1), key=min)


def _check(originals: list[bytes]) -> None:
    images, want = [], []
    for d in originals:
        start = len(images)
        images.append(d)
        images.extend(variants(d).values())
        want.append(set(range(start, len(images))))
    crops = smear_crops()
    images.extend(crops)
    assert groups_of(images) == want  # every copy found, nothing else merged (crops stay alone)


def test_synthetic_resized_and_reencoded_copies_found_smear_cells_not_merged():
    originals = [syn.encode(syn.single_cell(360, kind, seed, size_h=363), "JPEG", quality=85)
                 for seed, kind in ((1, "wbc"), (2, "wbc"), (3, "platelet"), (4, "rbc"))]
    _check(originals)


@pytest.mark.skipif(not REAL_PBC.is_dir(), reason="real PBC sample absent")
def test_real_pbc_copies_found_different_cells_not_merged():
    originals = [p.read_bytes() for p in sorted(REAL_PBC.glob("*/*.jpg"))]
    assert len(originals) == 8
    _check(originals)
    # different real cells (same stain, framing and background) are far from the thresholds
    for a, b in itertools.combinations(originals, 2):
        mad, corr, differing = neardup.compare(a, b)
        assert mad > 1.5 * neardup.MAX_MEAN_ABS_DIFF and corr < neardup.MIN_CORRELATION - 0.2
        assert differing > 5 * neardup.MAX_DIFFERING_FRACTION


def test_candidate_index_equals_all_pairs_comparison():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, size=400, dtype=np.int64).astype(np.uint64)
    for k in range(60):  # planted pairs 1..9 bits apart, bits spread over all chunks
        bits = rng.choice(64, size=1 + k % 9, replace=False)
        h[200 + k] = h[k] ^ np.uint64(sum(1 << int(b) for b in bits))
    h[300] = h[50] ^ np.uint64((1 << 10) - 1)  # 10 bits away: beyond the threshold
    cen = rng.integers(0, 2**63, size=400, dtype=np.int64).astype(np.uint64)
    cen[60] = h[360] ^ np.uint64(0b1011 << 40)  # centre of 60 ~ whole of 360 (3 bits)
    cen[380] = h[70] ^ np.uint64(1 << 3)       # whole of 70 ~ centre of 380
    hexes = [[f"{int(x):016x}", f"{int(c):016x}"] for x, c in zip(h, cen)]
    got = neardup.candidate_pairs(hexes)
    assert {(i, j) for i, j, _m in got} == neardup.exhaustive_pairs(hexes)
    assert {(k, 200 + k) for k in range(60)} <= {(i, j) for i, j, _m in got} and not any(p[:2] == (50, 300) for p in got)
    assert (60, 360, neardup.CENTRE_WHOLE) in got and (70, 380, neardup.WHOLE_CENTRE) in got
    with pytest.raises(ValueError):
        neardup.candidate_pairs(hexes, max_bits=2 * neardup.INDEX_CHUNKS)


def _rows(tmp: Path, source: str, files: dict[str, bytes], split: str) -> Path:
    ctx = SourceContext(source=source, license="MIT", granularity="single_cell", disease="normal",
                        adapter_tasks=("classification",))
    with staged_source(tmp, source) as st:
        for name, data in files.items():
            p = tmp / "img" / source / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            st.add(build_row(RawSample(rel_path=name, image_path=p, source_split=split), ctx))
        st.finish()
        keep = tmp / f"keep-{source}"
        st.folder.rename(keep)
    return keep


def test_resolution_puts_near_duplicates_in_one_split_and_flags_them(tmp_path):
    cells = [syn.encode(syn.single_cell(360, "wbc", s, size_h=363), "JPEG", quality=85) for s in (7, 8)]
    a = _rows(tmp_path, "a", {"c7.jpg": cells[0], "c8.jpg": cells[1]}, split="test")
    v = variants(cells[0])
    b = _rows(tmp_path, "b", {"small.png": v["medmnist28"], "q40.jpg": v["jpeg40"],
                              "other.png": variants(cells[1])["resized64"]}, split="")
    plan = integrity.resolve({"a": a, "b": b}, {}, out=tmp_path)
    ub = plan.updates["b"]
    assert ub["b/small.png"][0] == ub["b/q40.jpg"][0] == "test"  # published test beats generated
    assert "near_duplicate_of:a/c7.jpg" in ub["b/small.png"][1] and "near_duplicate_of:a/c7.jpg" in ub["b/q40.jpg"][1]
    assert "near_duplicate_of:a/c8.jpg" in ub["b/other.png"][1]
    assert "a" not in plan.updates  # the published rows stay as they are
    assert plan.near_pairs == 2 + 1  # c7~small, c7~q40 (small~q40 follows), c8~other
    # decisions are cached by image hashes: a second pass needs no image
    cache = neardup.DecisionCache(tmp_path)
    assert sum(cache.data.values()) == 3
    assert pq.read_table(next(b.glob("*.parquet")), columns=["image_phash"]).column(0).to_pylist()[0]


def test_committed_near_duplicates_validate_and_a_near_leak_is_reported(tmp_path):
    from unihema_data.outdir import commit, out_lock, read_manifest
    from unihema_data.validate import validate

    out = tmp_path / "out"
    cell = syn.encode(syn.single_cell(360, "wbc", 9, size_h=363), "JPEG", quality=85)
    a = _rows(tmp_path, "a", {"c9.jpg": cell}, split="test")
    b = _rows(tmp_path, "b", {"small.png": variants(cell)["resized64"]}, split="train")
    manifest = read_manifest(out)
    manifest["sources"]["a"] = {"kind": "source", "counts": {"test": 1}}
    manifest["sources"]["b"] = {"kind": "source", "counts": {"train": 1}}  # the policy updates it
    out.mkdir()
    with out_lock(out):
        commit(out, {"a": a}, manifest)
        plan = integrity.commit_with_policy(out, "b", b, manifest)
    assert plan.near_pairs == 1
    rows = pq.read_table(out / "data" / "b" / "test-00000-of-00001.parquet").to_pylist()
    assert rows[0]["split"] == "test" and "near_duplicate_of:a/c9.jpg" in rows[0]["qc_flags"]
    rep = validate(out)
    assert rep.ok, rep.summary()
    # a near-duplicate put back into train (e.g. by an older tool) is a leak validate reports
    leak = _rows(tmp_path / "x", "b", {"small.png": variants(cell)["resized64"]}, split="train")
    f = next(leak.glob("*.parquet"))
    t = pq.read_table(f).to_pylist()
    t[0]["qc_flags"] = ["near_duplicate_of:a/c9.jpg"]
    import pyarrow as pa

    from unihema_data.schema import ARROW_SCHEMA
    pq.write_table(pa.Table.from_pylist(t, schema=ARROW_SCHEMA), f)
    with out_lock(out):
        commit(out, {"b": leak}, manifest)
    rep = validate(out)
    assert not rep.ok and "is a near-duplicate of a/c9.jpg (test)" in rep.summary()


def _imagehash_hex(img: Image.Image) -> str:
    import imagehash

    h = imagehash.phash(img, hash_size=neardup.HASH_SIZE)
    return np.packbits(np.asarray(h.hash, dtype=bool).ravel()).tobytes().hex()


def test_phash_hex_is_imagehash_phash_bit_for_bit():
    """``neardup.phash_hex`` replaces ``imagehash.phash`` for speed; stored hashes must not change:
    noise, smooth gradients, flat images (every AC coefficient ~0: the median tie case), tiny and
    odd-sized images, and the real PBC samples when present."""
    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L")
              for h, w in [(64, 64), (60, 80), (97, 131), (5, 3), (1, 1), (300, 200)]]
    yy, xx = np.mgrid[0:90, 0:120]
    images.append(Image.fromarray(((xx * 2 + yy) % 256).astype(np.uint8), "L"))
    images += [Image.fromarray(np.full((70, 70), v, np.uint8), "L") for v in (0, 37, 255)]
    images += [syn_img.convert("L") for syn_img in _smear_images(rng, 20)]
    real = Path(__file__).resolve().parents[2] / "shared" / "real-samples"
    for p in sorted(real.glob("*/**/*.jpg"))[:40]:
        with Image.open(p) as im:
            images.append(im.convert("L"))
    for img in images:
        assert neardup.phash_hex(img) == _imagehash_hex(img), img.size


def _smear_images(rng, n):
    for k in range(n):
        arr = rng.normal(180, 30 + k, (120, 160, 3)).clip(0, 255).astype(np.uint8)
        yield Image.fromarray(arr, "RGB")
