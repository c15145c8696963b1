"""Smoke test of the conversion benchmarks: the scripts run end to end on a tiny corpus and write a
results table. No timing assertions (timings on CI machines mean nothing)."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


def test_make_voc_corpus_layout_distinct_and_deterministic(tmp_path):
    for name in ("a", "b"):
        subprocess.run([sys.executable, str(BENCH / "make_voc_corpus.py"), str(tmp_path / name), "--n", "6",
                        "--seed", "3"], check=True, capture_output=True, cwd=REPO)
    root = tmp_path / "a" / "BCCD"
    jpgs = sorted((root / "JPEGImages").glob("*.jpg"))
    xmls = sorted((root / "Annotations").glob("*.xml"))
    assert [p.stem for p in jpgs] == [p.stem for p in xmls] and len(jpgs) == 6
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in jpgs]
    assert len(set(digests)) == 6, "every image must have distinct bytes (convert deduplicates)"
    assert all(30_000 < p.stat().st_size < 150_000 for p in jpgs)
    listed = sum(len((root / "ImageSets" / "Main" / f"{s}.txt").read_text().split()) for s in ("train", "val", "test"))
    assert listed == 6
    again = [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((tmp_path / "b" / "BCCD" / "JPEGImages").glob("*.jpg"))]
    assert again == digests, "same seed must give the same corpus"


def test_bench_convert_writes_table(tmp_path):
    results = tmp_path / "RESULTS.md"
    kept = "<!-- keep:begin fiftyone -->\n## Loading into FiftyOne\n| coco | 1 |\n<!-- keep:end fiftyone -->"
    results.write_text("# old results\n\n" + kept + "\n")  # another benchmark's section survives a rerun
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_convert.py"), "--n", "10", "--peers", "copy,copy+sha256,unihema", "--extras", "",
         "--repeats", "1", "--no-warmup", "--num-proc", "1", "--wait-quiet", "0", "--retries", "0", "--settle", "0", "--workdir", str(tmp_path / "work"),
         "--results", str(results)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = results.read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "copy" in rows and "unihema" in rows and "copy+sha256" in rows
    for peer in ("copy", "copy+sha256", "unihema"):
        cells = [c.strip() for c in rows[peer].split("|")[1:-1]]
        assert cells[2] != "FAILED" and float(cells[2]) > 0  # wall seconds
    assert "## Targets" in text and "within 2× of `shutil.copytree`" in text
    assert "within 2× of copying the files plus hashing them" in text  # the targets table
    target = next(line for line in text.splitlines() if line.startswith("| within 2× of copying"))
    assert re.search(r"(met|\*\*missed\*\*) \(", target)  # computed, not "not measured"
    assert "--peers copy,copy+sha256,unihema" in text  # the exact command is recorded
    assert "## Failures" not in text
    assert text.count(kept) == 1 and "# old results" not in text


def test_make_voc_corpus_kinds_have_no_near_duplicates(tmp_path):
    """Every image has its own cell layout: no two images are near-duplicates (convert would
    spend the benchmark confirming them), and the noisy kind is large, the small kind tiny."""
    sys.path.insert(0, str(BENCH))
    from make_voc_corpus import make_corpus

    from unihema_data.neardup import candidate_pairs, image_phashes

    for kind, lo, hi in (("smear", 30_000, 150_000), ("noisy", 180_000, 300_000), ("small", 1_000, 15_000)):
        root = make_corpus(tmp_path / kind, 40, seed=5, kind=kind)
        jpgs = sorted((root / "JPEGImages").glob("*.jpg"))
        assert len(jpgs) == 40 and all(lo < p.stat().st_size < hi for p in jpgs), kind
        hashes = [image_phashes(p.read_bytes()) for p in jpgs]
        assert not candidate_pairs(hashes), kind


def test_bench_convert_two_corpus_kinds_and_rss(tmp_path):
    """One command covers both corpus kinds, the scaling target and the RSS check."""
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_convert.py"), "--n", "6", "--corpus-kind", "smear,noisy",
         "--peers", "copy+sha256,unihema,unihema-np1", "--extras", "", "--rss-n", "8,16", "--repeats", "1",
         "--no-warmup", "--num-proc", "2", "--wait-quiet", "0", "--retries", "0", "--settle", "0",
         "--workdir", str(tmp_path / "work"), "--results", str(results)],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = results.read_text()
    assert "## Corpus `smear`" in text and "## Corpus `noisy`" in text
    targets = text.split("## Targets (issue 19")[1]
    scaling = next(line for line in targets.splitlines() if line.startswith("| ≥ 1.7×"))
    assert len(re.findall(r"(met|\*\*missed\*\*) \(", scaling)) == 2  # computed on both corpora
    assert "Peak RSS flat from 8 to 16 images" in targets


def test_bench_convert_floor_rows_give_the_machine_ratio(tmp_path):
    """The framework-free floor (read + sha256 + strict decode of every image) runs with 1 and 2
    processes, and its ratio is reported beside the 1 -> 2 processes target."""
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_convert.py"), "--n", "8", "--peers", "floor,floor-np1,unihema,unihema-np1",
         "--extras", "", "--repeats", "1", "--no-warmup", "--num-proc", "2", "--wait-quiet", "0", "--retries", "0",
         "--settle", "0", "--workdir", str(tmp_path / "work"), "--results", str(results)],
        capture_output=True, text=True, cwd=REPO, timeout=180, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = results.read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    for peer in ("floor", "floor-np1"):
        cells = [c.strip() for c in rows[peer].split("|")[1:-1]]
        assert float(cells[2]) > 0 and float(cells[3]) > 0  # wall and work seconds
        assert cells[8] == "0.0"  # writes nothing
    target = next(line for line in text.splitlines() if line.startswith("| ≥ 1.7× from 1 to 2"))
    assert re.search(r"(met|\*\*missed\*\*) \(\d+\.\d+× by wall", target)
    assert re.search(r"this machine's own 1 → 2 process ratio on the per-image floor alone .*: \d+\.\d+×", target)
    assert "## Failures" not in text
