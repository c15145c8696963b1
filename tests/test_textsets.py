"""Text sets end to end: fake WBCAtt / LeukemiaAttri -> convert -> `unihema-data generate` -> OUT.

Also: the split rule, determinism, no-op reruns, paraphrase plumbing and the real WBCAtt CSVs
joined with the PBC images present in ../shared/real-samples (skipped when absent).
"""
from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from unihema_data.outdir import read_manifest, source_files
from unihema_data.textsets import GenerateOptions, TextsetError, generate
from unihema_data.textsets import caption as caption_mod
from unihema_data.textsets import mlm as mlm_mod
from unihema_data.textsets.common import truth_of

REAL = Path(__file__).resolve().parents[2] / "shared" / "real-samples"
TEXT_COLS = ["sample_id", "split", "source", "tasks", "prompt", "question", "answer", "masked_text", "target_text",
             "image_sha256", "qc_flags", "label", "attributes"]

def _ensure_catalog(tmp: Path, monkeypatch) -> None:
    """The real catalog must carry the parent sources and the derived text sets."""
    from unihema_data.catalog import load_catalog

    c = load_catalog()
    for sid in ("wbcatt", "leukemiaattri", "wbcatt_vqa", "leukemiaattri_mlm", "wbcatt_caption"):
        c.get(sid)


def _convert(ids, raw: Path, out: Path) -> None:
    from unihema_data.convert import ConvertOptions, convert

    convert(ids, raw, out, ConvertOptions(num_proc=1, progress=False))


@pytest.fixture(scope="module")
def mp_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
    import unihema_data.catalog as cat

    cat._load_cached.cache_clear()


@pytest.fixture(scope="module")
def converted(tmp_path_factory, mp_module) -> Path:
    """OUT with the fake wbcatt and leukemiaattri sources converted (shared, read-only)."""
    from unihema_data.adapters import get_adapter

    tmp = tmp_path_factory.mktemp("textsets")
    _ensure_catalog(tmp, mp_module)
    raw = tmp / "raw"
    get_adapter("wbcatt").fake(raw / "wbcatt", seed=1)
    get_adapter("leukemiaattri").fake(raw / "leukemiaattri", seed=1)
    out = tmp / "out"
    _convert(["wbcatt", "leukemiaattri"], raw, out)
    return out


def _copy(out: Path, dst: Path) -> Path:
    shutil.copytree(out, dst)
    return dst


def _rows(out: Path, source: str, cols=TEXT_COLS) -> list[dict]:
    rows = []
    for split, files in source_files(out, source).items():
        for f in files:
            rows += pq.read_table(f, columns=cols).to_pylist()
    return rows


def _cli(args: list[str]):
    from unihema_data.cli import app

    return CliRunner().invoke(app, args)


# ------------------------------------------------------------------------------ end to end
def test_cli_generates_all_three_sets_in_the_unified_schema(converted, tmp_path):
    from unihema_data.validate import validate

    out = _copy(converted, tmp_path / "out")
    for cmd in ("vqa", "mlm", "caption"):
        res = _cli(["generate", cmd, "--from", str(out), "--seed", "3"])
        assert res.exit_code == 0, res.output
        assert "rejected" in res.output and "template" in res.output
    man = read_manifest(out)["sources"]
    parents = {r["sample_id"]: r for s in ("wbcatt", "leukemiaattri") for r in _rows(out, s)}
    for ts, parent, task in (("wbcatt_vqa", "wbcatt", "vqa"), ("leukemiaattri_mlm", "leukemiaattri", "mlm"),
                             ("wbcatt_caption", "wbcatt", "caption")):
        m = man[ts]
        assert m["kind"] == "textset" and m["parent"] == parent and m["fingerprint"]
        assert m["report"]["rejections"] == {}, m["report"]["rejection_examples"]
        rows = _rows(out, ts)
        assert rows and sum(m["counts"].values()) == len(rows)
        assert len({r["sample_id"] for r in rows}) == len(rows)
        for r in rows:
            assert r["source"] == ts and r["tasks"] == [task]
            sid, kind = r["sample_id"].split("#")
            parent_row = parents[f"{parent}/{sid.split('/', 1)[1]}"]
            assert r["split"] == parent_row["split"] and r["image_sha256"] == parent_row["image_sha256"]
            if task == "vqa":
                assert r["question"].startswith("Q: ") and r["prompt"] == r["question"] and r["answer"]
                assert kind.startswith("qa-")
            elif task == "mlm":
                assert r["masked_text"].startswith("mask: ") and "<extra_id_0>" in r["masked_text"]
                assert r["target_text"].startswith("<extra_id_0> ")
            else:
                assert r["target_text"] and r["prompt"] == caption_mod.CAPTION_PROMPT
    wb = _rows(out, "wbcatt")
    assert len(_rows(out, "wbcatt_vqa")) == 2 * len(wb)       # default 2 pairs per cell
    assert len(_rows(out, "wbcatt_caption")) == len(wb)        # one caption per cell
    report = man["wbcatt_vqa"]["report"]
    assert set(report["question_types"]) <= {"open", "yesno"} and report["templates"]
    card = (out / "README.md").read_text()
    assert "semi-synthetic" in card and "not for medical use" in card and "config_name: wbcatt_vqa" in card
    rep = validate(out)
    assert rep.ok, rep.summary()


def test_generated_texts_verify_against_the_annotations(converted, tmp_path):
    """Independent re-check of what was written (not the generator's own bookkeeping)."""
    out = _copy(converted, tmp_path / "out")
    generate("wbcatt_caption", out, GenerateOptions(seed=1))
    generate("leukemiaattri_mlm", out, GenerateOptions(seed=1, pairs_per_image=2))
    for r in _rows(out, "wbcatt_caption"):
        assert caption_mod.check(r["target_text"], truth_of(r["label"], r["attributes"])) == [], r["target_text"]
    full = {r["sample_id"]: r for r in _rows(out, "leukemiaattri", cols=None)}
    n = 0
    for r in _rows(out, "leukemiaattri_mlm"):
        parent = full["leukemiaattri/" + r["sample_id"].split("/", 1)[1].split("#")[0]]
        fov = mlm_mod.field_of_view(parent, 10)
        rebuilt, problems = mlm_mod.unmask(r["masked_text"], r["target_text"])
        assert problems == [] and rebuilt is not None
        assert mlm_mod.check_description(rebuilt, fov) == []
        n += 1
    assert n > 0


def test_split_rule_and_determinism(converted, tmp_path):
    a = _copy(converted, tmp_path / "a")
    b = _copy(converted, tmp_path / "b")
    opts = GenerateOptions(seed=7, question_types=("open", "yesno", "choice"))
    for out in (a, b):
        generate("wbcatt_vqa", out, opts)
        generate("leukemiaattri_mlm", out, opts)
    for ts in ("wbcatt_vqa", "leukemiaattri_mlm"):
        ra, rb = _rows(a, ts), _rows(b, ts)
        assert ra == rb  # same seed, same input -> identical rows
        splits_of_image: dict[str, set] = {}
        for r in ra:
            splits_of_image.setdefault(r["image_sha256"], set()).add(r["split"])
        assert all(len(s) == 1 for s in splits_of_image.values())
        assert len({r["split"] for r in ra}) > 1  # the fakes span several splits
    # rerun with the same inputs is a no-op; another seed changes the texts
    rep = generate("wbcatt_vqa", a, opts)
    assert rep.status == "up_to_date" and rep.total == len(_rows(a, "wbcatt_vqa"))
    generate("wbcatt_vqa", b, GenerateOptions(seed=8, question_types=opts.question_types))
    assert [r["question"] for r in _rows(a, "wbcatt_vqa")] != [r["question"] for r in _rows(b, "wbcatt_vqa")]


def test_all_questions_mode_is_balanced_and_covers_every_attribute(converted, tmp_path):
    out = _copy(converted, tmp_path / "out")
    rep = generate("wbcatt_vqa", out, GenerateOptions(pairs_per_image=0, question_types=("open", "yesno")))
    assert rep.answer_balance["yes"] == rep.answer_balance["no"] > 0
    assert set(rep.subjects) == {"cell_type", "cell_size", "cell_shape", "nucleus_shape", "nc_ratio", "chromatin",
                                 "cytoplasm_vacuoles", "cytoplasm_texture", "cytoplasm_colour", "granule_type",
                                 "granule_colour", "granularity"}
    assert rep.question_types["open"] == len(_rows(out, "wbcatt")) * 12
    assert rep.rejections == {}


def test_missing_parent_and_bad_options_fail_cleanly(tmp_path, converted):
    res = _cli(["generate", "vqa", "--from", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "not converted" in res.output
    with pytest.raises(TextsetError):
        generate("wbcatt_vqa", converted, GenerateOptions(question_types=("riddle",)))
    assert "wbcatt_vqa" not in read_manifest(converted)["sources"]


# ------------------------------------------------------------------------------ paraphrasing
def test_paraphrases_must_pass_the_verifier(converted, tmp_path):
    """A stub paraphraser (injected through the Python API) that rewrites some texts correctly
    and falsifies others: the falsified ones are dropped (template text kept) and counted."""
    out = _copy(converted, tmp_path / "out")
    calls = Counter()

    def stub(text: str) -> str:
        calls["n"] += 1
        if (calls["n"] // 2) % 2:  # calls alternate question, answer: rewrite a pair correctly
            return (text.replace("It has", "The cell has").replace("This cell shows", "The cell has")
                    .replace("Does this cell have", "Does the cell have").replace("What is the", "What's the")
                    .replace("It is", "This is"))
        # falsify: flip values the verifier must catch
        return (text.replace("condensed", "open").replace("low", "high").replace("clear", "frosted")
                .replace("Yes,", "No,") + " It has prominent nucleoli.")

    rep = generate("wbcatt_vqa", out, GenerateOptions(seed=2), paraphrase=stub)
    st = rep.paraphrase
    assert st["tried"] == calls["n"] > 0
    assert st.get("rejected", 0) > 0 and st.get("accepted", 0) > 0
    assert st["tried"] == st.get("accepted", 0) + st.get("rejected", 0) + st.get("unchanged", 0)
    rows = _rows(out, "wbcatt_vqa")
    assert any("paraphrased" in r["qc_flags"] for r in rows)
    for r in rows:
        assert "prominent nucleoli" not in r["answer"]
        truth = truth_of(r["label"], r["attributes"])
        # every stored answer still states only true facts (re-parse)
        from unihema_data.textsets.verify import parse, check_claims

        assert check_claims(parse(r["answer"].removeprefix("Yes, ").removeprefix("No, ")).claims, truth, exact=False) == []


def test_local_paraphraser_loads_a_local_tiny_t5_and_its_output_is_verified(converted, tmp_path):
    """A randomly initialised tiny T5 saved to tmp_path (word-level tokenizer built offline):
    checks the loading/generation plumbing; its random output must never reach the data
    unverified."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = sorted({w for t in ("the cell has a large cell size and condensed chromatin it is this q what colour "
                                "paraphrase : . , ? yes no").split() for w in [t]})
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>")
    model_dir = tmp_path / "tiny-t5"
    fast.save_pretrained(model_dir)
    cfg = transformers.T5Config(vocab_size=len(vocab), d_model=16, d_ff=32, num_layers=1, num_heads=2, d_kv=8,
                                decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    import torch

    torch.manual_seed(0)
    transformers.T5ForConditionalGeneration(cfg).save_pretrained(model_dir)
    out = _copy(converted, tmp_path / "out")
    res = _cli(["generate", "caption", "--from", str(out), "--paraphraser", str(model_dir), "--max-images", "3"])
    assert res.exit_code == 0, res.output
    st = read_manifest(out)["sources"]["wbcatt_caption"]["report"]["paraphrase"]
    assert st["tried"] == 3
    assert st.get("accepted", 0) + st.get("rejected", 0) + st.get("unchanged", 0) + st.get("errors", 0) == 3
    for r in _rows(out, "wbcatt_caption"):
        assert caption_mod.check(r["target_text"], truth_of(r["label"], r["attributes"])) == []


# ------------------------------------------------------------------------------ real WBCAtt CSVs
def test_real_wbcatt_csvs_joined_with_the_pbc_images_present(tmp_path, mp_module):
    sub = REAL / "wbcatt" / "submission"
    pbc = REAL / "pbc" / "PBC_dataset_normal_DIB"
    if not sub.is_dir() or not pbc.is_dir():
        pytest.skip("real WBCAtt CSVs / PBC sample images not present in ../shared/real-samples")
    _ensure_catalog(tmp_path, mp_module)
    present = {p.relative_to(pbc.parent).as_posix() for p in pbc.rglob("*.jpg")}
    raw = tmp_path / "raw" / "wbcatt"
    kept = 0
    for split in ("train", "val", "test"):
        src = sub / f"pbc_attr_v1_{split}.csv"
        with src.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] + [r for r in rows[1:] if r[-1] in present]
        kept += len(keep) - 1
        dst = raw / "submission" / src.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("\n".join(",".join(r) for r in keep) + "\n", encoding="utf-8")
    assert kept >= 1
    for rel in present:
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pbc.parent / rel, raw / rel)
    out = tmp_path / "out"
    _convert(["wbcatt"], tmp_path / "raw", out)
    for cmd in ("vqa", "caption"):
        res = _cli(["generate", cmd, "--from", str(out), "--pairs-per-image", "0" if cmd == "vqa" else "1"])
        assert res.exit_code == 0, res.output
    man = read_manifest(out)["sources"]
    assert man["wbcatt_vqa"]["report"]["rejections"] == {}
    assert man["wbcatt_caption"]["report"]["rejections"] == {}
    caps = _rows(out, "wbcatt_caption")
    assert len(caps) == kept
    for r in caps:
        assert caption_mod.check(r["target_text"], truth_of(r["label"], r["attributes"])) == []
    for r in _rows(out, "wbcatt_vqa"):
        truth = truth_of(r["label"], r["attributes"])
        assert len(truth) == 12  # cell type + 11 attributes, all annotated in WBCAtt
