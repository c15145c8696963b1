"""``unihema-train evaluate``: the paper's Table 1 metrics (and the Table 2 SCFE probes) on a corpus split.

For every source of the split and every task it carries:

* detection: predictions at the detection image size (aspect kept), all ``num_select`` boxes (no score floor, COCO
  practice), COCOeval AP50 against the row's boxes, per source; the table's mean is over sources;
* attributes (morphology): each GT object is matched one-to-one to a prediction by Hungarian matching on IoU
  (IoU >= 0.5; the released code used oracle query matching), and the matched prediction's attribute values are
  scored (:func:`metrics.attribute_f1`); objects without a match count as wrong (value -1);
* segmentation: masks at GT resolution, Dice / IoU per image;
* classification: arg-max class vs ``label`` (macro / weighted F1);
* vqa / mlm / caption: beam-search generation vs the reference answer, BLEU-4;
* Table 2: SCFE features of the ``train`` split's classification rows fit a linear probe and kNN, scored on the
  evaluated split (skipped, with a note, when either side lacks data).

Writes ``metrics.json`` and ``metrics.md`` (Table-1 layout: task, dataset, metric, value) to ``out_dir``.
"""
from __future__ import annotations

import io
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import metrics
from .data import LabelMaps, _image_bytes, _objects, corpus_files
from .labels import has_label, label_id

TABLE_TASKS = ("detection", "attributes", "segmentation", "classification", "vqa", "mlm", "caption")
BATCH = 8


def _rows(files: list[Path], task: str, limit: int | None) -> dict[str, list[dict]]:
    import pyarrow.parquet as pq

    from .data import COLUMNS

    by_source: dict[str, list[dict]] = defaultdict(list)
    for path in files:
        names = [c for c in COLUMNS if c in pq.read_schema(path).names]
        for row in pq.read_table(path, columns=names).to_pylist():
            if task in (row.get("tasks") or []):
                source = row.get("source") or path.parent.name
                if limit is None or len(by_source[source]) < limit:
                    by_source[source].append(row)
    return by_source


def _images(rows: list[dict]) -> list[Image.Image]:
    out = []
    for r in rows:
        data = _image_bytes(r["image"])
        if data is None:
            raise ValueError(f"sample {r.get('sample_id')}: image bytes missing")
        out.append(Image.open(io.BytesIO(data)).convert("RGB"))
    return out


def _chunks(rows: list, n: int = BATCH):
    for i in range(0, len(rows), n):
        yield rows[i : i + n]


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``xyxy`` boxes ``(N, 4)`` x ``(M, 4)``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter + 1e-9)


def _detection(pipe, rows, task, maps, cfg):
    gts, dets, att_true, att_pred = [], [], [], []
    for chunk in _chunks(rows):
        preds = pipe(_images(chunk), task=task, threshold=0.0)
        for i, (row, pred) in enumerate(zip(chunk, preds)):
            image_id = len(gts) + 1
            obj = _objects(row, task, maps, cfg)
            boxes = obj["boxes"].numpy()
            gts.append({"image_id": image_id, "width": row["width"], "height": row["height"],
                        "boxes": [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes.tolist()],
                        "labels": obj["class_labels"].tolist()})
            for (x0, y0, x1, y1), lab, score in zip(pred["boxes"], pred["label_ids"], pred["scores"]):
                dets.append({"image_id": image_id, "category_id": lab, "bbox": [x0, y0, x1 - x0, y1 - y0],
                             "score": score})
            if task == "attributes" and len(boxes):
                from scipy.optimize import linear_sum_assignment

                pb = np.asarray(pred["boxes"]).reshape(-1, 4)
                iou = _iou_matrix(boxes, pb)
                gi, pi = linear_sum_assignment(-iou) if iou.size else ([], [])
                matched = {g: p for g, p in zip(gi, pi) if iou[g, p] >= 0.5}
                names = list(cfg.morph_attributes)
                for g in range(len(boxes)):
                    att_true.append(obj["attributes"][g].tolist())
                    if g in matched:
                        values = pred["attributes"][matched[g]]
                        att_pred.append([_value_id(cfg, a, values[a]["value"]) for a in names])
                    else:
                        att_pred.append([-1] * len(names))
    out = {"ap50": metrics.coco_ap50(gts, dets), "images": len(gts)}
    if task == "attributes":
        out.update(metrics.attribute_f1(np.array(att_true).reshape(-1, len(cfg.morph_attributes)),
                                        np.array(att_pred).reshape(-1, len(cfg.morph_attributes)),
                                        list(cfg.morph_attributes), cfg.morph_ignore_index))
    return out


def _value_id(cfg, attribute: str, value) -> int:
    names = (cfg.morph_value_names or {}).get(attribute) or []
    return names.index(value) if value in names else (int(value) if isinstance(value, int) else -1)


def _gt_mask(row: dict) -> np.ndarray:
    """Binary ground truth (pixel > 0) at native resolution; a row without a mask is all background."""
    data = _image_bytes(row.get("semantic_mask"))
    if data is None:
        return np.zeros((int(row["height"]), int(row["width"])), dtype=bool)
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) > 0


def _segmentation(pipe, rows):
    pairs = []
    for chunk in _chunks(rows):
        for row, pred in zip(chunk, pipe(_images(chunk), task="segmentation")):
            pairs.append((pred["mask"], _gt_mask(row)))
    return metrics.mean_dice_iou(pairs)


def _classification(pipe, rows, maps):
    y_true, y_pred = [], []
    for chunk in _chunks(rows):
        for row, pred in zip(chunk, pipe(_images(chunk), task="classification")):
            y_true.append(label_id(row["label"], maps.classification, f"sample {row.get('sample_id')}"))
            y_pred.append(pred["label_id"])
    return metrics.f1_scores(y_true, y_pred)


def _text(pipe, rows, task):
    field = {"vqa": ("question", "answer"), "mlm": ("masked_text", "target_text"),
             "caption": ("prompt", "target_text")}[task]
    refs, hyps = [], []
    for row in rows:
        answer = pipe(_images([row]), task=task, prompt=row.get(field[0]) or "")[0]["answer"]
        refs.append(row.get(field[1]) or "")
        hyps.append(answer)
    return {"bleu4": metrics.bleu4(refs, hyps), "n": len(refs)}


@torch.no_grad()
def _features(pipe, rows, maps):
    from .inference import preprocess

    feats, labels = [], []
    for chunk in _chunks(rows):
        pv, pm = preprocess(_images(chunk), "classification", int(pipe.image_size.get("classification", 32)))
        out = pipe.model(classification={"pixel_values": pv.to(pipe.device), "pixel_mask": pm.to(pipe.device)})
        feats.append(out.task_outputs["classification"]["features"].float().cpu().numpy())
        labels += [label_id(r["label"], maps.classification) for r in chunk]
    return (np.concatenate(feats) if feats else np.zeros((0, 1))), labels


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def markdown_table(result: dict) -> str:
    """Table-1 layout: one row per (task, dataset) with the paper's metric, then the task mean."""
    lines = ["| Task | Dataset | Metric | Uni-Hema |", "|---|---|---|---|"]
    spec = {"detection": ("mAP50", "ap50"), "attributes": ("F1 (macro over attributes)", "macro_f1"),
            "segmentation": ("Dice", "dice"), "classification": ("F1 (macro)", "macro_f1"),
            "vqa": ("BLEU-4", "bleu4"), "mlm": ("BLEU-4", "bleu4"), "caption": ("BLEU-4", "bleu4")}
    for task in TABLE_TASKS:
        per = result["tasks"].get(task)
        if not per:
            continue
        name, key = spec[task]
        for source, m in sorted(per["sources"].items()):
            extra = ""
            if task == "segmentation":
                extra = f" (IoU {_fmt(m.get('iou'))})"
            elif task == "classification":
                extra = f" (weighted {_fmt(m.get('weighted_f1'))})"
            lines.append(f"| {task} | {source} | {name} | {_fmt(m.get(key))}{extra} |")
        lines.append(f"| {task} | **mean** | {name} | **{_fmt(per['mean'])}** |")
    probe = result.get("feature_probes")
    if isinstance(probe, dict) and "linear" in probe:
        lines += ["", "| SCFE features (Table 2 protocol) | accuracy | macro F1 | weighted F1 |", "|---|---|---|---|"]
        for k in ("linear", "knn"):
            m = probe[k]
            lines.append(f"| {k} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} | {_fmt(m['weighted_f1'])} |")
    return "\n".join(lines) + "\n"


def run_evaluation(checkpoint, data, split: str = "test", out_dir=None, tokenizer=None,
                   max_per_source: int | None = None, probe: bool = True, cpu: bool = False) -> dict:
    from .inference import UniHemaPipeline

    files = corpus_files(data, split)
    if not files:
        raise FileNotFoundError(f"no parquet files under {data} for split {split!r}")
    pipe = UniHemaPipeline(Path(checkpoint), tokenizer=tokenizer, device="cpu" if cpu else None)
    cfg = pipe.model.config
    maps = LabelMaps.from_config(cfg)
    result: dict = {"checkpoint": str(checkpoint), "split": split, "tasks": {}}
    for task in TABLE_TASKS:
        by_source = _rows(files, task, max_per_source)
        if task == "classification":
            by_source = {s: [r for r in rows if has_label(r.get("label"))] for s, rows in by_source.items()}
        by_source = {s: rows for s, rows in by_source.items() if rows}
        if not by_source:
            continue
        per = {}
        for source, rows in sorted(by_source.items()):
            if task in ("detection", "attributes"):
                per[source] = _detection(pipe, rows, task, maps, cfg)
            elif task == "segmentation":
                per[source] = _segmentation(pipe, rows)
            elif task == "classification":
                per[source] = _classification(pipe, rows, maps)
            else:
                per[source] = _text(pipe, rows, task)
        key = {"detection": "ap50", "attributes": "macro_f1", "segmentation": "dice", "classification": "macro_f1"}
        k = key.get(task, "bleu4")
        values = [m[k] for m in per.values() if not (isinstance(m[k], float) and math.isnan(m[k]))]
        result["tasks"][task] = {"sources": per, "mean": float(np.mean(values)) if values else float("nan")}
    if probe:
        result["feature_probes"] = _probe(pipe, data, files, max_per_source, maps)
    result["markdown"] = markdown_table(result)
    out = Path(out_dir) if out_dir is not None else Path(checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2,
                                                 default=float))
    (out / "metrics.md").write_text(result["markdown"])
    return result


def _probe(pipe, data, eval_files, limit, maps):
    train_files = corpus_files(data, "train")
    pick = lambda fs: [r for rows in _rows(fs, "classification", limit).values() for r in rows  # noqa: E731
                       if has_label(r.get("label"))]
    train_rows, eval_rows = pick(train_files), pick(eval_files)
    if not train_rows or not eval_rows:
        return {"skipped": "needs classification rows in the train split and in the evaluated split"}
    tx, ty = _features(pipe, train_rows, maps)
    ex, ey = _features(pipe, eval_rows, maps)
    try:
        return metrics.feature_probes(tx, ty, ex, ey)
    except ValueError as err:
        return {"skipped": str(err)}
