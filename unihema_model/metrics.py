"""Evaluation metrics of the paper's Table 1 and the Table-2 single-cell feature protocol.

Conventions (the numbers a reader compares with the paper):

* **Detection** - COCO AP at IoU 0.50 (``COCOeval`` bbox ``stats[1]``, pycocotools) per source; the paper's
  "mAP50" is the mean over sources. Boxes are COCO ``xywh`` absolute pixels; ``category_id`` = stable class id.
* **Classification** - F1 over the classes present in truth or prediction: ``macro`` (the released linear-probe
  script) and ``weighted`` (the released in-loop number), sklearn.
* **Segmentation** - per image Dice ``2|P n G| / (|P| + |G|)`` and IoU ``|P n G| / |P u G|`` of binary masks at GT
  resolution (an empty prediction of an empty GT counts 1), averaged over images (not the released code's
  batch-size-dependent sum).
* **Morphology** - per attribute macro F1 over its values, on GT objects whose value is annotated (matched
  predictions, see :mod:`unihema_model.evaluate`); ``macro`` = mean over attributes with data.
* **Text** - BLEU-4 as the released code: NLTK ``corpus_bleu`` with uniform 4-gram weights and
  ``SmoothingFunction().method4`` on lower-cased text tokenised by ``NLTKWordTokenizer`` (word_tokenize without
  the punkt sentence splitter, so no NLTK data download), one reference per hypothesis.
* **Single-cell features** (Table 2, as DinoBloom) - linear probe (multinomial logistic regression, lbfgs,
  ``max_iter`` 2000) and kNN (k = 20, cosine) on frozen SCFE features; accuracy, macro and weighted F1.
"""
from __future__ import annotations

import contextlib
import io
from typing import Iterable, Sequence

import numpy as np


def coco_ap50(ground_truth: Sequence[dict], detections: Sequence[dict]) -> float:
    """AP@0.50 with pycocotools.

    ``ground_truth``: per image ``{"image_id", "width", "height", "boxes": [[x, y, w, h], ...], "labels": [...]}``;
    ``detections``: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``. Returns ``nan`` without GT
    boxes, 0.0 without detections."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, cats = [], [], set()
    for img in ground_truth:
        images.append({"id": int(img["image_id"]), "width": int(img["width"]), "height": int(img["height"])})
        for box, label in zip(img["boxes"], img["labels"]):
            x, y, w, h = (float(v) for v in box)
            annotations.append({"id": len(annotations) + 1, "image_id": int(img["image_id"]), "category_id": int(label),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
            cats.add(int(label))
    if not annotations:
        return float("nan")
    dets = list(detections)
    if not dets:
        return 0.0
    cats |= {int(d["category_id"]) for d in dets}
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": c} for c in sorted(cats)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes([{"image_id": int(d["image_id"]), "category_id": int(d["category_id"]),
                          "bbox": [float(v) for v in d["bbox"]], "score": float(d["score"])} for d in dets])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


def f1_scores(y_true: Iterable[int], y_pred: Iterable[int]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = list(y_true), list(y_pred)
    if not y_true:
        return {"macro_f1": float("nan"), "weighted_f1": float("nan"), "accuracy": float("nan"), "n": 0}
    return {"macro_f1": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
            "accuracy": float(accuracy_score(y_true, y_pred)), "n": len(y_true)}


def dice_iou(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Dice and IoU of two binary masks of the same shape (empty vs empty = 1, 1)."""
    p, g = np.asarray(pred).astype(bool), np.asarray(target).astype(bool)
    if p.shape != g.shape:
        raise ValueError(f"mask shapes differ: prediction {p.shape}, ground truth {g.shape}")
    inter, total, union = np.logical_and(p, g).sum(), p.sum() + g.sum(), np.logical_or(p, g).sum()
    if union == 0:
        return 1.0, 1.0
    return float(2 * inter / total), float(inter / union)


def mean_dice_iou(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    scores = [dice_iou(p, g) for p, g in pairs]
    if not scores:
        return {"dice": float("nan"), "iou": float("nan"), "n": 0}
    d, i = zip(*scores)
    return {"dice": float(np.mean(d)), "iou": float(np.mean(i)), "n": len(scores)}


def attribute_f1(y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str], ignore_index: int) -> dict:
    """``y_true`` / ``y_pred`` ``(N, A)`` value ids; entries equal to ``ignore_index`` in ``y_true`` are skipped.
    Returns ``{"per_attribute": {name: macro F1}, "macro_f1": mean over attributes with data}``."""
    from sklearn.metrics import f1_score

    y_true, y_pred = np.asarray(y_true).reshape(-1, len(names)), np.asarray(y_pred).reshape(-1, len(names))
    per = {}
    for a, name in enumerate(names):
        keep = y_true[:, a] != ignore_index
        if keep.any():
            per[name] = float(f1_score(y_true[keep, a], y_pred[keep, a], average="macro", zero_division=0))
    return {"per_attribute": per, "macro_f1": float(np.mean(list(per.values()))) if per else float("nan")}


def _tokens(text: str) -> list[str]:
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer().tokenize(text.lower())


def bleu4(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus BLEU-4 (NLTK, method4 smoothing, lower-cased NLTK word tokens), as the released evaluation."""
    from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        return float("nan")
    refs = [[_tokens(r)] for r in references]
    hyps = [_tokens(h) for h in hypotheses]
    return float(corpus_bleu(refs, hyps, weights=(0.25, 0.25, 0.25, 0.25),
                             smoothing_function=SmoothingFunction().method4))


def feature_probes(train_x: np.ndarray, train_y: Sequence[int], test_x: np.ndarray, test_y: Sequence[int],
                   k: int = 20) -> dict:
    """Linear probe and kNN on frozen features (DinoBloom protocol); ``{"linear": {...}, "knn": {...}}``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    train_x, test_x = np.asarray(train_x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if len(set(train_y.tolist())) < 2 or len(test_y) == 0:
        raise ValueError("feature probes need at least two classes in the training features and a test set")
    scaler = StandardScaler().fit(train_x)
    linear = LogisticRegression(max_iter=2000).fit(scaler.transform(train_x), train_y)
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_y)), metric="cosine").fit(train_x, train_y)
    return {"linear": f1_scores(test_y, linear.predict(scaler.transform(test_x))),
            "knn": f1_scores(test_y, knn.predict(test_x))}
