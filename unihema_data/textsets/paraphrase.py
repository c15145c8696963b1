"""Optional paraphrasing with a *local* seq2seq model (``--paraphraser PATH``).

The model directory is loaded with ``transformers`` ``AutoTokenizer`` / ``AutoModelForSeq2SeqLM``
and ``local_files_only=True``: nothing is ever downloaded. Decoding is greedy (deterministic).
A paraphrase is only kept when it passes the same verifier as the template text; otherwise the
template text is used and the drop is counted. Without the option nothing imports transformers.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Callable, Optional

Paraphrase = Callable[[str], str]


class LocalParaphraser:
    """``__call__(text) -> paraphrase``; input is ``prefix + text`` (T5 style task prefix)."""

    def __init__(self, path: str | Path, prefix: str = "paraphrase: ", max_new_tokens: int = 96):
        from ..extras import require

        require("model", "torch", "transformers", feature="--paraphraser")
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"paraphraser model folder not found: {self.path}")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(str(self.path), local_files_only=True)
        self.model.eval()
        self.prefix = prefix
        self.max_new_tokens = max_new_tokens

    def __call__(self, text: str) -> str:
        import torch

        enc = self.tokenizer(self.prefix + text, return_tensors="pt", truncation=True, max_length=256)
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)
        return self.tokenizer.decode(out[0], skip_special_tokens=True).strip()


def model_fingerprint(path: Optional[str | Path]) -> str:
    """(name, size, mtime) of every file of the model folder; "" without a paraphraser."""
    if not path:
        return ""
    h = hashlib.sha256()
    root = Path(path)
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root).as_posix()}\x00{st.st_size}\x00{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


#: words a paraphrase may add to its template text: articles, pronouns, auxiliaries and
#: connectives that cannot change a claim. Everything else (hedges such as "hardly", new numbers,
#: new value or attribute words) must already be in the template, so a paraphrase can reorder
#: and rephrase but never add content the verifier cannot see.
FUNCTION_WORDS = frozenset("""
a an the this that these those it its it's is are was were be being been has have had having
show shows shown showing seen see can could does do did what what's which how whose here there
of with and also in addition as to on at by for from into cell cells image picture one q mask
""".split())
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def new_content_words(original: str, candidate: str) -> list[str]:
    """Problems for words of ``candidate`` that are neither in ``original`` nor function words."""
    have = set(_WORD.findall(original.lower()))
    new = [w for w in _WORD.findall(candidate.lower()) if w not in have and w not in FUNCTION_WORDS]
    return [f"adds content word(s) {sorted(set(new))} absent from the template text"] if new else []


def try_paraphrase(fn: Optional[Paraphrase], text: str, check: Callable[[str], list[str]], stats: dict) -> tuple[str, bool]:
    """``(text to use, paraphrased?)``: the paraphrase of ``text`` if ``fn`` is given, the
    paraphrase differs and ``check(paraphrase)`` finds no problem; else ``text``."""
    if fn is None:
        return text, False
    stats["tried"] = stats.get("tried", 0) + 1
    try:
        cand = fn(text)
    except Exception as e:  # noqa: BLE001 - a failing model must not kill the run
        stats["errors"] = stats.get("errors", 0) + 1
        stats.setdefault("examples", []).append(f"error: {type(e).__name__}: {e}"[:200]) if len(stats.get("examples", [])) < 5 else None
        return text, False
    cand = (cand or "").strip()
    if not cand or cand == text:
        stats["unchanged"] = stats.get("unchanged", 0) + 1
        return text, False
    problems = new_content_words(text, cand) or check(cand)
    if problems:
        stats["rejected"] = stats.get("rejected", 0) + 1
        if len(stats.setdefault("examples", [])) < 5:
            stats["examples"].append(f"{cand!r}: {problems[0]}"[:300])
        return text, False
    stats["accepted"] = stats.get("accepted", 0) + 1
    return cand, True
