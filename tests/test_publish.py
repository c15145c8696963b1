"""``publish``: license gate, the dataset card (huggingface_hub's card classes + Hub metadata rules),
Croissant validated by mlcroissant, the staged folder loading through ``datasets``, token hygiene,
and the upload to a fake Hub on 127.0.0.1 (huggingface_hub's real HTTP client)."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from typer.testing import CliRunner

from unihema_data.adapters import get_adapter
from unihema_data.card import (HUB_LICENSES, SCHEMA_CHANGELOG, SIZE_CATEGORIES, hub_license, render_card)
from unihema_data.catalog import load_catalog
from unihema_data.cli import app
from unihema_data.convert import ConvertOptions, convert
from unihema_data.croissant import build_croissant, validate_croissant
from unihema_data.outdir import read_manifest
from unihema_data.publish import PublishError, plan_publication, stage, verify_staged
from unihema_data.schema import FEATURES, OBJECT_FIELDS, SCHEMA_VERSION
from unihema_data.textsets.writer import generate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_hub import FakeHubServer  # noqa: E402

SECRET = "hf_unihemaTESTtoken0123456789abcdefXYZ"
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """pbc + wbcatt (redistributable), leukemiaattri (terms unknown) and two text sets: wbcatt_vqa
    (parents redistributable) and leukemiaattri_mlm (parent unknown)."""
    tmp = tmp_path_factory.mktemp("publish")
    raw, out = tmp / "raw", tmp / "out"
    get_adapter("pbc").fake(raw / "pbc", seed=1)
    get_adapter("wbcatt").fake(raw / "wbcatt", seed=1, pbc_out=raw / "pbc")
    get_adapter("leukemiaattri").fake(raw / "leukemiaattri", seed=1)
    convert(["pbc", "wbcatt", "leukemiaattri"], raw, out, ConvertOptions(num_proc=1, progress=False))
    generate("wbcatt_vqa", out)
    generate("leukemiaattri_mlm", out)
    r = runner.invoke(app, ["preview", str(out)])  # opt in to the card's sample grids
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """A clean Hugging Face home (no saved login) and the test token in HF_TOKEN."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_TOKEN", SECRET)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    _online_to_the_fake_hub(monkeypatch)


def _online_to_the_fake_hub(monkeypatch):
    """The suite runs with HF_HUB_OFFLINE=1 (no network); huggingface_hub reads it once at import.
    The fake Hub is on 127.0.0.1, so these tests switch offline mode off for themselves only."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)


# ---------------------------------------------------------------------------------- license gate


def test_license_gate(corpus):
    plan = plan_publication(corpus, "org/unihema")
    assert plan.included == ["pbc", "wbcatt", "wbcatt_vqa"]
    assert set(plan.excluded) == {"leukemiaattri", "leukemiaattri_mlm"}
    assert "do not clearly allow" in plan.excluded["leukemiaattri"]
    assert "leukemiaattri" in plan.excluded["leukemiaattri_mlm"].lower()  # its own terms: inherited, unknown
    plan = plan_publication(corpus, "org/unihema", include=["leukemiaattri"])
    assert "leukemiaattri" in plan.included and plan.rights_asserted == ["leukemiaattri"]
    assert "leukemiaattri_mlm" in plan.excluded
    with pytest.raises(PublishError, match="not in"):
        plan_publication(corpus, "org/unihema", include=["bccd"])
    with pytest.raises(PublishError, match="ORG/NAME"):
        plan_publication(corpus, "no-slash")


def test_every_catalog_license_has_a_hub_id():
    for e in load_catalog():
        assert hub_license(e.license) in HUB_LICENSES, e.id
    assert hub_license("GPL-3.0-only") == "gpl-3.0"       # was written verbatim before: not a Hub id
    assert hub_license("CC-BY-4.0") == "cc-by-4.0"
    assert hub_license("CC-BY-NC-SA-3.0-IGO") == "other"  # the IGO variant is not on the Hub's list
    assert hub_license("unknown") == "unknown"


# ------------------------------------------------------------------------------------------ card


def manifest_counts(out, source):
    return read_manifest(out)["sources"][source]["counts"]


def _yaml_header(text: str) -> dict:
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    assert m, "card has no YAML header"
    return yaml.safe_load(m.group(1))


def test_card_metadata(corpus):
    text = (corpus / "README.md").read_text()
    card = DatasetCard(text)  # huggingface_hub parses it (raises on malformed metadata)
    data = card.data.to_dict()
    assert DatasetCardData(**data).to_dict() == data  # round-trips through the Hub's card class
    header = _yaml_header(text)
    assert header == data
    manifest = read_manifest(corpus)
    # Hub metadata rules: license ids from the Hub list; `other` needs license_name + license_link
    lic = data["license"] if isinstance(data["license"], list) else [data["license"]]
    assert set(lic) <= HUB_LICENSES and "gpl-3.0-only" not in lic
    if "other" in lic:
        assert re.fullmatch(r"[a-z0-9-.]+", data["license_name"]) and data["license_link"] == "LICENSE.md"
        assert (corpus / "LICENSE.md").exists()
    assert data["language"] == ["en"]
    assert data["size_categories"][0] in {name for _, name in SIZE_CATEGORIES}
    assert {"expert-generated", "machine-generated"} <= set(data["annotations_creators"])
    assert data["pretty_name"] and data["source_datasets"] and data["tags"]
    assert {"object-detection", "image-classification", "visual-question-answering", "fill-mask"} <= set(
        data["task_categories"])
    # one config per source plus `all` (the default, sources only: text sets keep their own)
    names = [c["config_name"] for c in data["configs"]]
    manifest = read_manifest(corpus)
    assert names == ["all"] + sorted(manifest["sources"])
    all_cfg = data["configs"][0]
    assert all_cfg["default"] is True
    all_paths = [p for df in all_cfg["data_files"] for p in (df["path"] if isinstance(df["path"], list) else [df["path"]])]
    assert not any("wbcatt_vqa" in p or "_mlm" in p for p in all_paths)
    # the features are written once, not once per config
    infos = data["dataset_info"]
    assert [i["config_name"] for i in infos] == names
    assert sum("features" in i for i in infos) == 1 and len(infos[0]["features"]) == len(FEATURES)
    # datasets (public API) reads the card's infos back: the features are exactly the schema's
    from datasets.info import DatasetInfosDict

    read = DatasetInfosDict.from_dataset_card_data(card.data)
    assert read["all"].features == FEATURES
    assert read["pbc"].splits["train"].num_examples == manifest_counts(corpus, "pbc")["train"]
    assert text.count("name: sample_id") == 1
    # features once: the header grows only by the two ClassLabel name lists (label, objects.category)
    from unihema_data.schema import CLASS_NAMES

    assert len(text.split("\n---\n", 1)[0].splitlines()) < 400 + 2 * len(CLASS_NAMES)
    # split sizes match the manifest
    for info in infos[1:]:
        counts = manifest["sources"][info["config_name"]]["counts"]
        assert {s["name"]: s["num_examples"] for s in info["splits"]} == {k: v for k, v in counts.items() if v}


def test_card_body_text_is_not_read_as_a_template(corpus, monkeypatch):
    """The body is plain text: a source's catalog text holding Jinja syntax ("{{", "{%", "{#")
    appears verbatim (the card was rendered through ``DatasetCard.from_template``, which read the
    whole body as a template: such text raised or vanished) and the metadata block is unchanged."""
    catalog = load_catalog()
    entry = catalog.get("leukemiaattri")
    note = "terms: see {{ terms }}, {% if x %}ask{% endif %} {# not a comment #}"
    patched = entry.model_copy(update={"license_note": note})
    real_get = type(catalog).get
    monkeypatch.setattr(type(catalog), "get", lambda self, i: patched if i == "leukemiaattri" else real_get(self, i))
    text = render_card(corpus)
    assert note in text.split("\n---\n", 1)[1]
    assert _yaml_header(text) == _yaml_header((corpus / "README.md").read_text())
    assert DatasetCard(text).data.to_dict() == _yaml_header(text)


def test_card_body(corpus):
    text = (corpus / "README.md").read_text()
    body = text.split("\n---\n", 1)[1]
    for sid in ("pbc", "wbcatt", "leukemiaattri", "wbcatt_vqa", "leukemiaattri_mlm"):
        assert re.search(rf"^\| `{sid}` \|", body, re.M), sid  # per-source table row
        assert f"![{sid} samples](previews/{sid}.png)" in body and (corpus / "previews" / f"{sid}.png").exists()
    assert "not for medical use" in body and "semi-synthetic" in body and "not for clinical use" in body
    assert "The text sets (`leukemiaattri_mlm`, `wbcatt_vqa`)" in body  # the ones present
    # text-set grids carry the texts under each image (taller caption strips with text pixels)
    from PIL import Image as PILImage

    from unihema_data.preview import CAPTION, CELL, TEXT_CAPTION, TITLE

    with PILImage.open(corpus / "previews" / "wbcatt_vqa.png") as im:
        assert (im.height - TITLE) % (CELL + TEXT_CAPTION) == 0
        strip = np.asarray(im.convert("L"))[TITLE + CELL + CAPTION:TITLE + CELL + TEXT_CAPTION]
        assert (strip > 200).sum() > 200  # light text on the dark strip
    assert "## Splits and de-duplication" in body and "grouped split" in body
    assert "## Quality control" in body and "`duplicate_of`" in body  # wbcatt repeats pbc images
    for col in FEATURES:
        if col != "objects":
            assert f"| `{col}` |" in body, col
    for f in OBJECT_FIELDS:
        assert f"| `objects.{f}` |" in body
    assert "COCO ``[x, y, w, h]``" in body  # the conventions are written out, not referenced
    # BibTeX: Uni-Hema plus one well-formed entry per catalog source
    bib = body.split("```bibtex", 1)[1].split("```", 1)[0]
    keys = re.findall(r"^@(\w+)\{([^,]+),", bib, re.M)
    assert ("inproceedings", "rehman2026unihema") in keys
    assert {k for _, k in keys} >= {"pbc", "wbcatt", "leukemiaattri", "wbcatt_vqa", "leukemiaattri_mlm"}
    for entry in re.split(r"\n(?=@)", bib.strip()):
        depth = 0
        for ch in entry.replace("\\{", "").replace("\\}", ""):
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0
        assert depth == 0, entry
    assert f"Schema version **{SCHEMA_VERSION}**" in body and f"- **{SCHEMA_VERSION}**:" in body


def test_card_passes_the_hub_metadata_rules(corpus, monkeypatch):
    """``RepoCard.validate`` (huggingface_hub's own check, which asks the Hub's validate-yaml endpoint)
    against the fake Hub, which applies the Hub's documented metadata rules; a card with the old
    SPDX license id is rejected by the same path."""
    _online_to_the_fake_hub(monkeypatch)
    import huggingface_hub.constants as hc

    from fake_hub import hub_metadata_rules

    text = (corpus / "README.md").read_text()
    assert hub_metadata_rules(text) is None
    staged = render_card(corpus, sources=["pbc", "wbcatt"], excluded={"leukemiaattri": "x"}, repo_id="org/x")
    assert hub_metadata_rules(staged) is None
    with FakeHubServer(SECRET) as srv:
        monkeypatch.setattr(hc, "ENDPOINT", srv.url)
        monkeypatch.setenv("HF_TOKEN", SECRET)
        DatasetCard(text).validate()
        bad = text.replace("- gpl-3.0", "- gpl-3.0-only") if "- gpl-3.0" in text else text.replace(
            "license:\n", "license:\n- gpl-3.0-only\n", 1)
        with pytest.raises(ValueError, match="license"):
            DatasetCard(bad).validate()


def test_schema_version_has_a_changelog_entry():
    assert SCHEMA_VERSION in SCHEMA_CHANGELOG, "bump schema.SCHEMA_VERSION together with card.SCHEMA_CHANGELOG"


def test_local_card_loads_every_config(corpus, tmp_path):
    import datasets

    manifest = read_manifest(corpus)
    for c in ("all", "wbcatt_vqa"):
        ds = datasets.load_dataset(str(corpus), c, cache_dir=str(tmp_path / "cache"))
        srcs = [s for s, m in manifest["sources"].items() if m.get("kind", "source") == "source"] if c == "all" else [c]
        want = {}
        for s in srcs:
            for sp, n in manifest["sources"][s]["counts"].items():
                want[sp] = want.get(sp, 0) + n
        assert {k: len(v) for k, v in ds.items()} == {k: v for k, v in want.items() if v}


# ------------------------------------------------------------------------------------- Croissant


def test_croissant_is_valid(corpus, tmp_path):
    path = corpus / "croissant.json"
    assert path.exists()
    assert validate_croissant(path) == []
    doc = json.loads(path.read_text())
    assert {rs["name"] for rs in doc["recordSet"]} == {"all", *read_manifest(corpus)["sources"]}
    files = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    assert files and all(len(d["sha256"]) == 64 and (corpus / d["contentUrl"]).exists() for d in files)
    # mlcroissant reads the records of a config from the local Parquet files
    import mlcroissant as mlc

    rows = list(mlc.Dataset(jsonld=str(path)).records("pbc"))
    assert len(rows) == sum(read_manifest(corpus)["sources"]["pbc"]["counts"].values())
    # a broken description is reported
    doc["recordSet"][1]["field"][0]["source"] = {"fileSet": {"@id": "no-such-fileset"}, "extract": {"column": "x"}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    assert validate_croissant(bad)


def test_croissant_checksums_are_the_shards_hashed_while_written(tmp_path, monkeypatch):
    """Shards are sha256-hashed as they are written (not read back for the Croissant file): the
    checksums equal the files' hashes, and the card step opens no shard to hash it."""
    import builtins
    import hashlib

    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("pbc").fake(raw / "pbc", seed=2)
    opened = []
    real_open = builtins.open

    def spy(file, mode="r", *a, **k):
        if str(file).endswith(".parquet") and "r" in mode and "data" in Path(str(file)).parts:
            opened.append(str(file))
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr("unihema_data.croissant.open", spy, raising=False)
    convert(["pbc"], raw, out, ConvertOptions(num_proc=2, progress=False))
    assert opened == []
    doc = json.loads((out / "croissant.json").read_text())
    files = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject" and d["contentUrl"].endswith(".parquet")]
    assert files
    for d in files:
        assert d["sha256"] == hashlib.sha256((out / d["contentUrl"]).read_bytes()).hexdigest(), d["contentUrl"]


def test_checksums_of_a_failed_conversion_never_reach_out(tmp_path, monkeypatch):
    """Shard checksums noted while writing stay in memory until the commit: a conversion that
    fails after writing its shards (here: in the resolution pass) leaves OUT's files unchanged."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("pbc").fake(raw / "pbc", seed=2)
    convert(["pbc"], raw, out, ConvertOptions(num_proc=1, progress=False))
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and "staging" not in p.parts}

    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("unihema_data.convert.commit_with_policy", boom)
    with pytest.raises(Exception):
        convert(["pbc"], raw, out, ConvertOptions(num_proc=1, progress=False, overwrite=True))
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and "staging" not in p.parts}
    assert after == before


# -------------------------------------------------------------------------------- staging / dry run


def _tree_bytes(folder: Path) -> list[tuple[str, bytes]]:
    return [(p.relative_to(folder).as_posix(), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def test_dry_run_stages_exactly_the_upload_and_loads(corpus, tmp_path, hub_env):
    staging = tmp_path / "staged"
    r = runner.invoke(app, ["publish", str(corpus), "--repo-id", "org/unihema", "--dry-run", "--staging", str(staging)])
    assert r.exit_code == 0, r.output
    assert "nothing uploaded" in r.output and SECRET not in r.output
    files = {p for p, _ in _tree_bytes(staging)}
    shards = {f"data/{s}/{p.name}" for s in ("pbc", "wbcatt", "wbcatt_vqa") for p in (corpus / "data" / s).glob("*.parquet")}
    previews = {f"previews/{s}.png" for s in ("pbc", "wbcatt", "wbcatt_vqa")}
    assert files == {"README.md", "LICENSE.md", "croissant.json"} | shards | previews
    assert not any(".unihema" in f or "leukemiaattri" in f for f in files)
    for f in shards:  # hard links: the shards are not copied
        assert os.path.samefile(staging / f, corpus / f)
    card = (staging / "README.md").read_text()
    assert "## Sources not included" in card
    assert re.search(r"\| `leukemiaattri` \|.*unihema-data fetch leukemiaattri", card)
    assert re.search(r"\| `leukemiaattri_mlm` \|.*unihema-data generate mlm", card)
    header = _yaml_header(card)
    assert [c["config_name"] for c in header["configs"]] == ["all", "pbc", "wbcatt", "wbcatt_vqa"]
    assert header["license"] == ["cc-by-4.0", "mit", "other"] and header["license_link"] == "LICENSE.md"
    # every config loads with datasets from the staged folder (the command checked counts too)
    for c in ("all", "pbc", "wbcatt", "wbcatt_vqa"):
        assert f"datasets.load_dataset(DIR, '{c}')" in r.output
    assert validate_croissant(staging / "croissant.json") == []
    doc = json.loads((staging / "croissant.json").read_text())
    assert all(d["contentUrl"].startswith("https://huggingface.co/datasets/org/unihema/resolve/main/data/")
               for d in doc["distribution"] if d["@type"] == "cr:FileObject")
    for _, data in _tree_bytes(staging):
        assert SECRET.encode() not in data
    # restaging replaces the folder (idempotent); a foreign non-empty folder is refused
    before = _tree_bytes(staging)
    assert runner.invoke(app, ["publish", str(corpus), "--repo-id", "org/unihema", "--dry-run", "--staging",
                               str(staging)]).exit_code == 0
    assert _tree_bytes(staging) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    r = runner.invoke(app, ["publish", str(corpus), "--repo-id", "org/unihema", "--dry-run", "--staging", str(foreign)])
    assert r.exit_code == 1 and "not a previous staging" in r.output
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


def test_verify_staged_catches_a_card_that_does_not_load(corpus, tmp_path):
    plan = plan_publication(corpus, "org/unihema")
    rep = stage(plan, tmp_path / "s")
    full = verify_staged(rep.folder, plan, full=True)
    assert verify_staged(rep.folder, plan, full=False) == full  # the streaming check of large corpora
    assert set(full) == {"all", "pbc", "wbcatt", "wbcatt_vqa"}
    (rep.folder / "data" / "wbcatt").rename(rep.folder / "wbcatt-moved")  # shards missing
    with pytest.raises(PublishError, match="config 'all'"):
        verify_staged(rep.folder, plan)


# ------------------------------------------------------------------------------------------ upload


@pytest.fixture
def hf_debug_logs(caplog):
    """Every log record of huggingface_hub, httpx and ours at DEBUG level, in ``caplog``."""
    import logging

    from huggingface_hub.utils import logging as hf_logging

    caplog.set_level(logging.DEBUG)
    hf_logging.set_verbosity_debug()
    hf_logging.enable_propagation()  # huggingface_hub does not propagate to the root logger by default
    yield caplog
    hf_logging.disable_propagation()
    hf_logging.set_verbosity_warning()


def test_upload_to_a_fake_hub(corpus, tmp_path, hub_env, monkeypatch, hf_debug_logs):
    caplog = hf_debug_logs
    with FakeHubServer(SECRET) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        args = ["publish", str(corpus), "--repo-id", "org/unihema", "--private", "--staging", str(tmp_path / "up")]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        assert not srv.hub.unknown, srv.hub.unknown
        staged = dict(_tree_bytes(tmp_path / "up"))
        remote = srv.hub.repos["org/unihema"]
        assert sorted(remote) == sorted(staged)
        assert [k for k in staged if remote[k] != staged[k]] == []
        assert srv.hub.repos["org/unihema"] == staged and srv.hub.private["org/unihema"] is True
        assert any(l.path == "/api/validate-yaml" for l in srv.hub.log)  # the card went through the Hub's check
        # token hygiene: only in the Authorization header, never in paths, bodies or the output
        for entry in srv.hub.log:
            assert entry.headers.get("authorization") == f"Bearer {SECRET}" or entry.path == "/api/validate-yaml"
            assert SECRET not in entry.path and SECRET.encode() not in entry.body
        assert any(rec.name.startswith("huggingface_hub") for rec in caplog.records)
        assert SECRET not in r.output and SECRET not in caplog.text
        for p in (tmp_path / "up").rglob("*"):  # staged files and any upload state kept beside them
            assert not p.is_file() or SECRET.encode() not in p.read_bytes()
        # a rerun uploads nothing new (unchanged files are skipped: an interrupted upload resumes)
        n_commits = len(srv.hub.commits)
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        assert len(srv.hub.commits) == n_commits
        # a source dropped from the publication is deleted from the repo on the next upload
        srv.hub.repos["org/unihema"]["data/gone/train-00000-of-00001.parquet"] = b"old"
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "data/gone/train-00000-of-00001.parquet" not in srv.hub.repos["org/unihema"]


def test_upload_errors_are_clear(corpus, tmp_path, hub_env, monkeypatch):
    args = ["publish", str(corpus), "--repo-id", "org/unihema", "--staging", str(tmp_path / "up")]
    monkeypatch.delenv("HF_TOKEN")
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "not logged in" in r.output
    monkeypatch.setenv("HF_TOKEN", SECRET)
    with FakeHubServer(SECRET) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        srv.hub.validate_yaml = lambda content: '"license" must be a valid license id'
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and "rejected the dataset card" in r.output and SECRET not in r.output
        assert "org/unihema" not in srv.hub.repos or not srv.hub.repos["org/unihema"]
    with FakeHubServer("hf_someone_else") as srv:  # wrong token: 401, reported without the token
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and "failed" in r.output and SECRET not in r.output
    import socket

    with socket.socket() as s:  # a port nobody listens on: connection refused, a message, no traceback
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "rerun the same command to resume" in r.output and r.exception.__class__ is SystemExit


def test_publish_usage_errors(corpus, tmp_path):
    r = runner.invoke(app, ["publish", str(tmp_path / "nothing"), "--repo-id", "org/x", "--dry-run"])
    assert r.exit_code == 2 and "no such folder" in r.output
    r = runner.invoke(app, ["publish", str(corpus), "--repo-id", "org/x", "--dry-run", "--include", "nope"])
    assert r.exit_code == 2 and "nope" in r.output


def test_render_card_subset_lists_only_included_sources(corpus):
    text = render_card(corpus, sources=["pbc"], excluded={"wbcatt": "because"}, repo_id="org/x")
    header = _yaml_header(text)
    assert [c["config_name"] for c in header["configs"]] == ["all", "pbc"]
    assert "load_dataset('org/x', 'all')" in text and "| `wbcatt` | because |" in text
    doc = build_croissant(corpus, ["pbc"], "org/x")
    assert {rs["name"] for rs in doc["recordSet"]} == {"all", "pbc"}


def test_default_staging_is_removed_after_upload(corpus, tmp_path, hub_env, monkeypatch):
    from unihema_data.publish import default_staging

    with FakeHubServer(SECRET) as srv:
        monkeypatch.setenv("HF_ENDPOINT", srv.url)
        r = runner.invoke(app, ["publish", str(corpus), "--repo-id", "org/other"])
        assert r.exit_code == 0, r.output
        assert "README.md" in srv.hub.repos["org/other"] and srv.hub.private["org/other"] is False
    assert not default_staging(corpus, "org/other").exists()
