"""Metrics against hand-computed values, ``unihema-train evaluate`` and ``unihema-predict`` end to end."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from unihema_data.schema import ARROW_SCHEMA
from unihema_model import metrics

from test_model_train import RECIPE, _rows  # noqa: E402  (tests/ is on sys.path under pytest)


def test_coco_ap50_is_one_when_predictions_equal_ground_truth():
    gt = [{"image_id": 1, "width": 100, "height": 80, "boxes": [[10, 10, 20, 20], [50, 40, 30, 20]], "labels": [3, 7]},
          {"image_id": 2, "width": 100, "height": 80, "boxes": [[5, 5, 10, 12]], "labels": [3]}]
    dets = [{"image_id": g["image_id"], "category_id": lab, "bbox": box, "score": 0.9}
            for g in gt for box, lab in zip(g["boxes"], g["labels"])]
    assert metrics.coco_ap50(gt, dets) == pytest.approx(1.0)
    # one GT box; a higher-scored false positive then the true positive: precision 1/2 at recall 1 -> AP50 = 0.5
    one = [gt[0] | {"boxes": [[10, 10, 20, 20]], "labels": [3]}]
    fp_first = [{"image_id": 1, "category_id": 3, "bbox": [70, 60, 10, 10], "score": 0.9},
                {"image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 20], "score": 0.5}]
    assert metrics.coco_ap50(one, fp_first) == pytest.approx(0.5)
    # shifted by 5 px: IoU 300/500 = 0.6 -> hit; by 10 px: IoU 200/600 = 1/3 -> miss
    shifted = lambda dx: [{"image_id": 1, "category_id": 3, "bbox": [10 + dx, 10, 20, 20], "score": 1.0}]  # noqa
    assert metrics.coco_ap50(one, shifted(5)) == pytest.approx(1.0)
    assert metrics.coco_ap50(one, shifted(10)) == pytest.approx(0.0)
    assert metrics.coco_ap50(one, []) == 0.0


def test_f1_dice_iou_attribute_f1_by_hand():
    f1 = metrics.f1_scores([0, 0, 0, 1], [0, 0, 1, 1])
    # class 0: P 1, R 2/3 -> F1 0.8; class 1: P 1/2, R 1 -> 2/3
    assert f1["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    assert f1["weighted_f1"] == pytest.approx((3 * 0.8 + 2 / 3) / 4)
    assert f1["accuracy"] == pytest.approx(0.75)
    pred = np.zeros((5, 5), bool)
    pred[0:2, 0:2] = True  # 4 px
    gt = np.zeros((5, 5), bool)
    gt[0:3, 0:2] = True  # 6 px, 4 shared
    assert metrics.dice_iou(pred, gt) == pytest.approx((0.8, 4 / 6))
    assert metrics.dice_iou(np.zeros((2, 2)), np.zeros((2, 2))) == (1.0, 1.0)
    assert metrics.mean_dice_iou([(pred, gt), (gt, gt)])["dice"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="shapes"):
        metrics.dice_iou(pred, gt[:4])
    ig = -100
    att = metrics.attribute_f1(np.array([[0, 1], [1, ig], [1, 0]]), np.array([[0, 1], [0, 0], [1, 0]]), ["a", "b"], ig)
    assert att["per_attribute"]["a"] == pytest.approx(2 / 3) and att["per_attribute"]["b"] == pytest.approx(1.0)
    assert att["macro_f1"] == pytest.approx((2 / 3 + 1) / 2)


def test_bleu4_by_hand():
    assert metrics.bleu4(["The cell is round."], ["the cell is round ."]) == pytest.approx(1.0)
    # every n-gram of the 4-token hypothesis matches; brevity penalty exp(1 - 6/4)
    assert metrics.bleu4(["a b c d e f"], ["a b c d"]) == pytest.approx(math.exp(-0.5))


def test_feature_probes_separate_separable_features():
    rng = np.random.default_rng(0)
    centres = np.eye(3) * 5
    y = np.repeat([0, 1, 2], 20)
    x = centres[y] + rng.normal(0, 0.3, (60, 3))
    y_test = np.repeat([0, 1, 2], 5)
    x_test = centres[y_test] + rng.normal(0, 0.3, (15, 3))
    res = metrics.feature_probes(x, y, x_test, y_test)
    assert res["linear"]["accuracy"] == 1.0 and res["knn"]["macro_f1"] == 1.0


@pytest.fixture()
def trained(tmp_path):
    out = tmp_path / "corpus" / "data" / "toy"
    out.mkdir(parents=True)
    rows = _rows(np.random.default_rng(0))
    pq.write_table(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), out / "train-00000-of-00001.parquet")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    from unihema_model.cli import main

    run = tmp_path / "run"
    assert main(["train", "--no-progress", "--recipe", str(recipe), "--data", str(tmp_path / "corpus"),
                 "--max-steps", "2", "--output", str(run)]) == 0
    return tmp_path / "corpus", run, rows


def test_evaluate_writes_table_one_json_and_markdown(trained, tmp_path, capsys):
    from unihema_model.cli import main

    corpus, run, _ = trained
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(corpus), "--split", "train",
                 "--out", str(tmp_path / "eval"), "--cpu"]) == 0
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"detection", "attributes", "segmentation", "classification", "vqa", "mlm"} <= set(result["tasks"])
    det = result["tasks"]["detection"]["sources"]["toy"]
    assert 0.0 <= det["ap50"] <= 1.0 and det["images"] == 2
    seg = result["tasks"]["segmentation"]["sources"]["toy"]
    assert 0.0 <= seg["dice"] <= 1.0 and seg["n"] == 2
    assert set(result["tasks"]["attributes"]["sources"]["toy"]["per_attribute"]) <= {"nucleus_shape"}
    assert "linear" in result["feature_probes"] or "skipped" in result["feature_probes"]
    table = (tmp_path / "eval" / "metrics.md").read_text()
    assert "| detection | toy | mAP50 |" in table and "| classification | **mean** |" in table
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(corpus), "--split", "test"]) == 2


def test_unihema_predict_returns_named_classes(trained, tmp_path, capsys):
    from PIL import Image

    from unihema_model.inference import UniHemaPipeline
    from unihema_model.labels import class_names
    from unihema_model.predict import main

    _, run, rows = trained
    image = tmp_path / "demo.png"
    Image.open(io.BytesIO(rows[0]["image"]["bytes"])).save(image)
    capsys.readouterr()
    assert main([str(image), "--checkpoint", str(run), "--task", "classification", "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["label"] in class_names() and set(record["top"]) <= set(class_names())
    assert main([str(image), "--checkpoint", str(run), "--task", "detection", "--device", "cpu",
                 "--threshold", "0"]) == 0
    det = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert det["labels"] and all(n in class_names() for n in det["labels"])
    x0, y0, x1, y1 = np.array(det["boxes"]).T
    assert (x1 <= 80 + 1e-3).all() and (y1 <= 60 + 1e-3).all()  # original 80x60 pixels
    out = tmp_path / "pred"
    assert main([str(image), "--checkpoint", str(run), "--task", "segmentation", "--out", str(out),
                 "--device", "cpu"]) == 0
    assert Image.open(out / "demo_mask.png").size == (80, 60)
    pipe = UniHemaPipeline(run, device="cpu")
    answer = pipe(str(image), task="vqa", prompt="what is the nucleus shape?")[0]["answer"]
    assert isinstance(answer, str)
    assert main([str(tmp_path / "missing.png"), "--checkpoint", str(run), "--device", "cpu"]) == 2
