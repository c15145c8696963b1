"""``preview``: the sample grid's size and drawn content (box outlines in the class colour at the box
edges, semantic-mask tint inside the mask, the label caption), the CLI, and the card's pictures."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from unihema_data.adapters import get_adapter
from unihema_data.cli import app
from unihema_data.convert import ConvertOptions, convert
from unihema_data.corpus import class_id, class_name, iter_rows, shards
from unihema_data.images import decode
from unihema_data.masks import decode_semantic
from unihema_data.preview import (BOX_WIDTH, CAPTION, CELL, COLUMNS, MASK_ALPHA, MASK_PALETTE, TITLE, grid_colours,
                                  draw_sample, pick_rows, render_grid, render_source)

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("preview")
    raw, out = tmp / "raw", tmp / "out"
    for s in ("bccd", "zheng2018_wbc"):
        get_adapter(s).fake(raw / s, seed=3)
    convert(["bccd", "zheng2018_wbc"], raw, out, ConvertOptions(num_proc=1, progress=False))
    return out


def test_grid_size_and_box_edges(corpus):
    img, cells = render_source(corpus, "bccd", n=8)
    n = len(cells)
    assert n == min(8, sum(1 for _ in iter_rows([s.path for s in shards(corpus, ["bccd"])], ["sample_id"])))
    cols = min(COLUMNS, n)
    assert img.size == (cols * CELL, TITLE + -(-n // cols) * (CELL + CAPTION))
    px = np.asarray(img)
    colours = grid_colours(pick_rows(corpus, "bccd", 8))
    assert len(set(colours.values())) == len(colours) >= 3  # platelet, rbc, wbc told apart
    checked = hits = 0
    for c in cells:
        for (x, y, w, h), label, colour in c.boxes:
            x0, y0 = c.to_grid(x, y)
            x1, y1 = c.to_grid(x + w, y + h)
            if x1 - x0 < 2 * BOX_WIDTH + 2 or y1 - y0 < 2 * BOX_WIDTH + 2:
                continue
            assert colour == colours[label]
            # the middle of each edge, one pixel inside the outline
            for gx, gy in (((x0 + x1) / 2, y0 + 1), ((x0 + x1) / 2, y1 - 2), (x0 + 1, (y0 + y1) / 2), (x1 - 2, (y0 + y1) / 2)):
                checked += 1
                hits += tuple(px[int(gy), int(gx)]) == colour
    assert checked >= 20
    assert hits / checked > 0.9  # boxes drawn later may cover a few edges of overlapping ones


def test_semantic_mask_tint_and_label(corpus):
    row = pick_rows(corpus, "zheng2018_wbc", 1)[0]
    tile, info = draw_sample(row)
    assert tile.size == (CELL, CELL + CAPTION)
    im = decode(row["image"]["bytes"]).convert("RGB")
    sw, sh = round(im.width * info.scale), round(im.height * info.scale)
    base = np.asarray(im.resize((sw, sh), Image.BILINEAR), dtype=np.float32)
    sem = np.asarray(Image.fromarray(decode_semantic(row["semantic_mask"]["bytes"])).resize((sw, sh), Image.NEAREST))
    got = np.asarray(tile, dtype=np.float32)[info.offset[1]:info.offset[1] + sh, info.offset[0]:info.offset[0] + sw]
    for i in range(1, len(row["mask_classes"])):
        sel = sem == i
        assert sel.any()
        want = base[sel] * (1 - MASK_ALPHA) + np.array(MASK_PALETTE[i], np.float32) * MASK_ALPHA
        assert np.abs(got[sel] - want).max() <= 1.0
    bg = sem == 0
    assert np.abs(got[bg] - base[bg]).max() <= 1.0  # background untouched
    # the caption strip carries text in the label's colour
    caption = np.asarray(tile)[CELL:]
    assert (caption == grid_colours([row])[class_name(row["label"])]).all(axis=-1).sum() > 10


def test_grid_of_several_sources_and_determinism(corpus):
    a, cells = render_grid(corpus)
    b, _ = render_grid(corpus)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    one, _ = render_source(corpus, "bccd")
    two, _ = render_source(corpus, "zheng2018_wbc")
    assert a.size == (max(one.width, two.width), one.height + two.height)
    assert {c.sample_id.split("/")[0] for c in cells} == {"bccd", "zheng2018_wbc"}


def test_preview_cli(corpus, tmp_path):
    r = runner.invoke(app, ["preview", str(corpus), "--source", "bccd", "--out", str(tmp_path / "grid.png")])
    assert r.exit_code == 0, r.output
    with Image.open(tmp_path / "grid.png") as im:
        assert im.size == render_source(corpus, "bccd")[0].size
    r = runner.invoke(app, ["preview", str(corpus), "--source", "nope", "--out", str(tmp_path / "g.png")])
    assert r.exit_code == 2 and "nope" in r.output
    r = runner.invoke(app, ["preview", str(corpus), "--out", str(tmp_path / "g.jpg")])
    assert r.exit_code == 2
    # without --out: the card's pictures, referenced by the card
    r = runner.invoke(app, ["preview", str(corpus)])
    assert r.exit_code == 0
    card = (corpus / "README.md").read_text()
    for s in ("bccd", "zheng2018_wbc"):
        assert (corpus / "previews" / f"{s}.png").exists() and f"](previews/{s}.png)" in card


def test_card_grids_are_opt_in_and_kept_fresh(tmp_path):
    from unihema_data.outdir import read_manifest
    from unihema_data.preview import fresh_previews

    raw, out = tmp_path / "raw", tmp_path / "out"
    get_adapter("bccd").fake(raw / "bccd", seed=4)
    convert(["bccd"], raw, out, ConvertOptions(num_proc=1, progress=False))
    assert not (out / "previews").exists() and "## Samples" not in (out / "README.md").read_text()
    assert runner.invoke(app, ["preview", str(out)]).exit_code == 0
    assert fresh_previews(out) == {"bccd"} and "](previews/bccd.png)" in (out / "README.md").read_text()
    old = read_manifest(out)["sources"]["bccd"]["fingerprint"]
    convert(["bccd"], raw, out, ConvertOptions(num_proc=1, progress=False, seed=9, overwrite=True))
    assert read_manifest(out)["sources"]["bccd"]["fingerprint"] != old
    assert fresh_previews(out) == {"bccd"}  # re-rendered by the conversion, since the user opted in
    assert "](previews/bccd.png)" in (out / "README.md").read_text()
