"""Generate a text set into ``OUT`` from its converted parent source (streaming, atomic, no-op reruns).

Text rows copy their parent image row (image, split, group, license, annotations ...) and set
``source`` = the text-set id, ``tasks`` = ``[vqa]`` / ``[mlm]`` / ``[caption]``, the text fields and
``sample_id`` = ``<textset>/<parent sample_id without its source prefix>#<kind>-<n>``.
Text rows inherit their image's split, so no image contributes text to two splits (checked: an
image hash seen in two splits follows its first split and is counted as ``split_conflicts``).

The manifest entry (``kind: textset``) stores counts, the generation report and a fingerprint of
the parent's fingerprint, the options, the paraphraser files and this package's source, so a rerun
with the same inputs is a no-op.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import pyarrow.parquet as pq

from ..outdir import out_lock, read_manifest, source_files, staged_source
from ..schema import SCHEMA_VERSION, SPLITS
from . import caption as caption_mod
from . import mlm as mlm_mod
from . import vqa as vqa_mod
from .common import rng_for, truth_of
from .lexicon import CELL_TYPE
from .paraphrase import LocalParaphraser, Paraphrase, model_fingerprint, try_paraphrase
from .verify import VQA_PREFIX, check_balance, verify_answer, verify_question

GENERATOR_VERSION = "1"


class TextsetError(Exception):
    """A text set cannot be generated (parent missing, bad options); ``OUT`` is unchanged."""


@dataclass(frozen=True)
class TextsetSpec:
    id: str
    parent: str
    task: str
    kind: str          # sample_id suffix kind
    default_pairs: int  # texts per image by default


TEXTSETS = {
    "wbcatt_vqa": TextsetSpec("wbcatt_vqa", "wbcatt", "vqa", "qa", 2),
    "wbcatt_caption": TextsetSpec("wbcatt_caption", "wbcatt", "caption", "cap", 1),
    "leukemiaattri_mlm": TextsetSpec("leukemiaattri_mlm", "leukemiaattri", "mlm", "mlm", 3),
}


@dataclass
class GenerateOptions:
    """``pairs_per_image``: texts per image (VQA pairs, MLM maskings, captions); ``None`` = the
    set's default (2 / 3 / 1); for VQA ``0`` = every subject with every question type."""

    seed: int = 0
    pairs_per_image: Optional[int] = None
    question_types: tuple[str, ...] = vqa_mod.DEFAULT_QUESTION_TYPES
    max_images: Optional[int] = None
    max_cells: int = 10
    mask_fraction: float = 0.3
    paraphraser: Optional[str] = None
    overwrite: bool = False

    def key(self) -> dict:
        d = asdict(self)
        d.pop("overwrite")
        d["question_types"] = list(self.question_types)
        return d


@dataclass
class GenerationReport:
    textset: str
    status: str = "generated"  # generated | up_to_date
    images: int = 0
    images_used: int = 0
    counts: dict[str, int] = field(default_factory=dict)           # rows per split
    question_types: dict[str, int] = field(default_factory=dict)   # VQA: per type; others: per task
    subjects: dict[str, int] = field(default_factory=dict)         # attribute asked / described
    answer_balance: dict[str, int] = field(default_factory=dict)   # yes/no answers
    balance_by_claims: dict[str, dict[str, int]] = field(default_factory=dict)  # claims in the question -> yes/no
    templates: dict[str, int] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    rejection_examples: list[str] = field(default_factory=list)
    skipped_images: dict[str, int] = field(default_factory=dict)
    paraphrase: dict = field(default_factory=dict)
    split_conflicts: int = 0
    masks: dict[str, int] = field(default_factory=dict)           # MLM: spans masked / maskable
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return asdict(self)


def _category(problem: str) -> str:
    p = problem.lower()
    for key, cat in (("unverifiable", "unverifiable_word"), ("contradicts", "contradiction"),
                     ("not annotated", "unannotated_claim"), ("not said", "missing_claim"),
                     ("should be said", "missing_claim"), ("said twice", "repeated_claim"),
                     ("yes or no", "polarity"), ("annotation says", "polarity"), ("asks about", "wrong_subject"),
                     ("states", "question_claims"), ("sentinel", "masking"), ("rebuild", "masking"),
                     ("segments", "cell_segments"), ("cells", "cell_count")):
        if key in p:
            return cat
    return "other"


class _Run:
    def __init__(self, spec: TextsetSpec, options: GenerateOptions, paraphrase: Optional[Paraphrase]):
        self.spec, self.opt, self.para = spec, options, paraphrase
        self.rep = GenerationReport(spec.id)
        self.c_types: Counter = Counter()
        self.c_subj: Counter = Counter()
        self.c_bal: Counter = Counter()
        self.c_bal_claims: dict[int, Counter] = {}
        self.c_tmpl: Counter = Counter()
        self.c_rej: Counter = Counter()
        self.c_skip: Counter = Counter()
        self.c_mask: Counter = Counter()
        self.para_stats: dict = {}

    def reject(self, where: str, problems: list[str]) -> None:
        self.c_rej[_category(problems[0])] += 1
        if len(self.rep.rejection_examples) < 10:
            self.rep.rejection_examples.append(f"{where}: {problems[0]}")

    def texts(self, row: dict) -> list[dict]:
        """Text fields for each text row of one parent row (already verified)."""
        t = self.spec.task
        if t == "vqa":
            return self._vqa(row)
        if t == "caption":
            return self._caption(row)
        return self._mlm(row)

    # ------------------------------------------------------------------ VQA
    def _vqa(self, row: dict) -> list[dict]:
        truth = truth_of(row["label"], row["attributes"])
        if CELL_TYPE not in truth and not truth:
            self.c_skip["no_annotations"] += 1
            return []
        rng = rng_for(self.opt.seed, self.spec.id, row["sample_id"])
        pairs = self.opt.pairs_per_image if self.opt.pairs_per_image is not None else self.spec.default_pairs
        out = []
        for spec in vqa_mod.plan(truth, row["source"], self.opt.question_types, pairs, rng):
            pair = vqa_mod.render(spec, truth, rng)
            problems = vqa_mod.check(pair, truth)
            if problems:
                self.reject(row["sample_id"], problems)
                continue
            q, a = pair.question, pair.answer
            s = spec
            q_body, qp = try_paraphrase(
                self.para, q[len(VQA_PREFIX):],
                lambda x: verify_question(VQA_PREFIX + x, s.qtype, s.attr, truth, s.asked, s.options), self.para_stats)
            a, ap = try_paraphrase(self.para, a, lambda x: verify_answer(x, s.qtype, s.attr, truth, s.asked,
                                                                         VQA_PREFIX + q_body), self.para_stats)
            self.c_types[spec.qtype] += 1
            self.c_subj[spec.attr] += 1
            if pair.polarity:
                self.c_bal[pair.polarity] += 1
                self.c_bal_claims.setdefault(vqa_mod.claims_of(VQA_PREFIX + q_body), Counter())[pair.polarity] += 1
            self.c_tmpl.update(pair.templates)
            out.append({"question": VQA_PREFIX + q_body, "answer": a, "prompt": VQA_PREFIX + q_body,
                        "paraphrased": qp or ap})
        return out

    # ------------------------------------------------------------------ captions
    def _caption(self, row: dict) -> list[dict]:
        truth = truth_of(row["label"], row["attributes"])
        if CELL_TYPE not in truth:
            self.c_skip["no_cell_type_phrase"] += 1
            return []
        n = self.opt.pairs_per_image if self.opt.pairs_per_image is not None else self.spec.default_pairs
        out, seen = [], set()
        for k in range(max(1, n)):
            rng = rng_for(self.opt.seed, self.spec.id, row["sample_id"], k)
            text, ids = caption_mod.describe_cell(truth, rng)
            problems = caption_mod.check(text, truth)
            if problems:
                self.reject(row["sample_id"], problems)
                continue
            text, p = try_paraphrase(self.para, text, lambda x: caption_mod.check(x, truth), self.para_stats)
            if text in seen:
                continue
            seen.add(text)
            self.c_types["caption"] += 1
            self.c_subj.update(a for a in truth)
            self.c_tmpl.update(ids)
            out.append({"target_text": text, "prompt": caption_mod.CAPTION_PROMPT, "paraphrased": p})
        return out

    # ------------------------------------------------------------------ MLM
    def _mlm(self, row: dict) -> list[dict]:
        fov = mlm_mod.field_of_view(row, self.opt.max_cells)
        if fov.unverbalizable:
            self.c_skip["category_without_phrase"] += 1
            return []
        if not fov.cells:
            self.c_skip["no_cells"] += 1
            return []
        n = self.opt.pairs_per_image if self.opt.pairs_per_image is not None else self.spec.default_pairs
        out, seen = [], set()
        for k in range(max(1, n)):
            rng = rng_for(self.opt.seed, self.spec.id, row["sample_id"], k)
            text, ids = mlm_mod.describe_fov(fov, rng)
            problems = mlm_mod.check_description(text, fov)
            if problems:
                self.reject(row["sample_id"], problems)
                continue
            text, p = try_paraphrase(self.para, text, lambda x: mlm_mod.check_description(x, fov), self.para_stats)
            m = mlm_mod.mask(text, rng, self.opt.mask_fraction)
            if m is None:
                self.reject(row["sample_id"], ["no maskable span"])
                continue
            masked, target, k_masks = m
            problems = mlm_mod.check_masked(masked, target, fov, text)
            if problems:
                self.reject(row["sample_id"], problems)
                continue
            if masked in seen:
                continue
            seen.add(masked)
            self.c_types["mlm"] += 1
            self.c_subj.update(a for c in fov.cells for a in c.truth)
            self.c_tmpl.update(ids)
            self.c_mask["masked_spans"] += k_masks
            self.c_mask["cells_described"] += len(fov.cells)
            out.append({"masked_text": masked, "target_text": target, "prompt": masked, "paraphrased": p})
        return out

    def finish(self) -> GenerationReport:
        r = self.rep
        r.question_types, r.subjects = dict(self.c_types), dict(sorted(self.c_subj.items()))
        r.answer_balance, r.templates = dict(self.c_bal), dict(sorted(self.c_tmpl.items()))
        r.balance_by_claims = {str(k): dict(sorted(c.items())) for k, c in sorted(self.c_bal_claims.items())}
        problems = check_balance(self.c_bal_claims)
        if problems:  # a shortcut a model would learn: refuse to publish it
            raise TextsetError(f"{self.spec.id}: {problems[0]}")
        r.rejections, r.skipped_images, r.masks = dict(self.c_rej), dict(self.c_skip), dict(self.c_mask)
        r.paraphrase = self.para_stats
        return r


def iter_parent_rows(out: Path, source: str, batch_size: int = 32) -> Iterator[dict]:
    """Rows of a converted source, split by split (train, validation, test), shard by shard,
    ``batch_size`` rows in memory at a time."""
    for split, files in source_files(out, source).items():
        for f in files:
            pf = pq.ParquetFile(f)
            for batch in pf.iter_batches(batch_size=batch_size):
                yield from batch.to_pylist()


def _code_fingerprint() -> str:
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode() + b"\x00" + p.read_bytes())
    return h.hexdigest()


def fingerprint(spec: TextsetSpec, parent_entry: dict, options: GenerateOptions) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([GENERATOR_VERSION, SCHEMA_VERSION, spec.id, parent_entry.get("fingerprint", ""),
                         options.key(), model_fingerprint(options.paraphraser), _code_fingerprint()],
                        sort_keys=True).encode())
    return h.hexdigest()


def generate(textset: str, out: Path | str, options: Optional[GenerateOptions] = None,
             paraphrase: Optional[Paraphrase] = None,
             on_progress: Optional[Callable[[int, Optional[int]], None]] = None) -> GenerationReport:
    """Generate one text set into ``out`` (see module doc). ``paraphrase`` injects a callable
    (tests); otherwise ``options.paraphraser`` loads a local model. ``on_progress(images_read, total)``
    is called per parent image (``total``: the parent's converted rows, capped by ``max_images``).
    Raises :class:`TextsetError`."""
    t0 = time.perf_counter()
    options = options or GenerateOptions()
    out = Path(out)
    spec = TEXTSETS.get(textset)
    if spec is None:
        raise TextsetError(f"unknown text set {textset!r}; known: {', '.join(TEXTSETS)}")
    bad = [t for t in options.question_types if t not in vqa_mod.QUESTION_TYPES]
    if bad or not options.question_types:
        raise TextsetError(f"unknown question type(s) {bad}; use {', '.join(vqa_mod.QUESTION_TYPES)}")
    if options.pairs_per_image is not None and options.pairs_per_image < 0:
        raise TextsetError("--pairs-per-image must be >= 0")
    if not 0.0 < options.mask_fraction <= 1.0:
        raise TextsetError("--mask-fraction must be in (0, 1]")
    out.mkdir(parents=True, exist_ok=True)
    with out_lock(out, on_wait=lambda: print(f"{spec.id}: waiting for another writer into {out}", flush=True)):
        return _generate_locked(spec, out, options, paraphrase, t0, on_progress)


def _generate_locked(spec: TextsetSpec, out: Path, options: GenerateOptions, paraphrase, t0: float,
                     on_progress: Optional[Callable[[int, Optional[int]], None]] = None) -> GenerationReport:
    manifest = read_manifest(out)
    parent = manifest["sources"].get(spec.parent)
    if parent is None or not source_files(out, spec.parent):
        raise TextsetError(
            f"{spec.parent} is not converted in {out}; run `unihema-data convert {spec.parent} --raw-dir RAW --out {out}` first"
        )
    fp = fingerprint(spec, parent, options)
    prev = manifest["sources"].get(spec.id)
    if prev and prev.get("fingerprint") == fp and not options.overwrite and source_files(out, spec.id):
        rep = GenerationReport(**{**prev.get("report", {"textset": spec.id}), "status": "up_to_date"})
        rep.seconds = time.perf_counter() - t0
        return rep
    if paraphrase is None and options.paraphraser:
        try:
            paraphrase = LocalParaphraser(options.paraphraser)
        except (OSError, ValueError, ImportError) as e:  # ImportError: the `model` extra is missing
            raise TextsetError(f"cannot load the paraphraser from {options.paraphraser}: {e}") from None
    run = _Run(spec, options, paraphrase)
    split_of: dict[str, str] = {}
    total = sum(parent.get("counts", {}).values()) or None
    if total is not None and options.max_images is not None:
        total = min(total, options.max_images)
    with staged_source(out, spec.id) as staged:
        for row in iter_parent_rows(out, spec.parent):
            if options.max_images is not None and run.rep.images >= options.max_images:
                break
            run.rep.images += 1
            if on_progress is not None:
                on_progress(run.rep.images, total)
            texts = run.texts(row)
            if not texts:
                continue
            run.rep.images_used += 1
            split = split_of.setdefault(row["image_sha256"], row["split"])
            if split != row["split"]:
                run.rep.split_conflicts += 1
            rel = row["sample_id"].split("/", 1)[1] if "/" in row["sample_id"] else row["sample_id"]
            for n, fields in enumerate(texts):
                trow = dict(row)
                trow["objects"] = dict(row["objects"])
                para = fields.pop("paraphrased")
                trow.update(fields)
                trow["split"] = split
                trow["source"] = spec.id
                trow["sample_id"] = f"{spec.id}/{rel}#{spec.kind}-{n}"
                trow["tasks"] = [spec.task]
                trow["qc_flags"] = list(row["qc_flags"]) + (["paraphrased"] if para else []) + (
                    [f"split_moved:{row['split']}->{split}"] if split != row["split"] else [])
                staged.add(trow)
        if run.rep.images == 0:
            raise TextsetError(f"{spec.parent} in {out} has no rows")
        if not staged.counts():
            raise TextsetError(f"{spec.id}: no text could be generated from {run.rep.images} {spec.parent} images "
                               f"(skipped: {dict(run.c_skip)}, rejected: {dict(run.c_rej)})")
        staged.finish()
        run.rep.counts = {s: staged.counts()[s] for s in SPLITS if s in staged.counts()}
        rep = run.finish()
        rep.seconds = time.perf_counter() - t0
        manifest = read_manifest(out)
        manifest["sources"][spec.id] = {
            "kind": "textset",
            "parent": spec.parent,
            "task": spec.task,
            "license": parent.get("license", "unknown"),
            "counts": rep.counts,
            "fingerprint": fp,
            "generator_version": GENERATOR_VERSION,
            "options": options.key(),
            "report": {k: v for k, v in rep.as_dict().items() if k not in ("status", "seconds")},
            "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        staged.commit(manifest)  # data and manifest in one atomic commit
    return rep


def generate_many(textsets: Sequence[str], out: Path | str, options: Optional[GenerateOptions] = None,
                  paraphrase: Optional[Callable[[str], str]] = None) -> list[GenerationReport]:
    return [generate(t, out, options, paraphrase) for t in textsets]
