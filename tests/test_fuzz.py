"""Fuzz test: seeded mutations of every registered adapter's native fake (issue 18).

Every case must end in a clean :class:`ConversionError` naming the mutated file with ``OUT``
unchanged, or in an output equal to an independent reading of the mutated input; never a
traceback, a hang or a silently wrong row. Mutation kinds and the oracle of each are described in
``tests/fuzz_mutator.py``. New adapters are covered automatically (cases go round-robin over
``unihema_data.adapters.adapter_ids()``).

``UNIHEMA_FUZZ_CASES=N`` runs N cases instead of the default few hundred;
``UNIHEMA_FUZZ_SEED`` changes the seed; ``UNIHEMA_FUZZ_ADAPTERS=a,b`` restricts the cases to those adapters (e.g. while writing a new one);
``UNIHEMA_FUZZ_REPORT=path.json`` writes the outcome
counts (overall and per mutation kind) when the module finishes.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import fuzz_mutator as fm
from unihema_data.adapters import adapter_ids, get_adapter
from unihema_data.convert import ConversionError, ConvertOptions, convert
from unihema_data.outdir import all_parquet_files
from unihema_data.taxonomy import load_taxonomy

N_CASES = int(os.environ.get("UNIHEMA_FUZZ_CASES") or 200)
SEED = int(os.environ.get("UNIHEMA_FUZZ_SEED") or 18)
#: per-case time limit; FIFO cases get a short one because a blocked open() on a FIFO is the
#: known pending hang (a FIFO case that still blocks after it is reported as a hang)
CASE_SECONDS = float(os.environ.get("UNIHEMA_FUZZ_CASE_SECONDS") or 20.0)
FIFO_SECONDS = 1.0


def _fuzzed_ids() -> list[str]:
    """Registered adapters, or the subset named by ``UNIHEMA_FUZZ_ADAPTERS`` (comma-separated)."""
    wanted = [s.strip() for s in (os.environ.get("UNIHEMA_FUZZ_ADAPTERS") or "").split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(adapter_ids()))
    if unknown:
        raise pytest.UsageError(f"UNIHEMA_FUZZ_ADAPTERS names unregistered adapters: {unknown}")
    return wanted or adapter_ids()

OUTCOMES: Counter = Counter()
BY_KIND: Counter = Counter()
FAILURES: list[str] = []


class _Hang(BaseException):  # not Exception: code under test must not swallow it
    pass


#: absolute paths of the files opened while a case converts (``None``: not recording). The
#: oracle uses it to tell a case twin of a file the conversion *reads* (must be refused) from
#: one of a file it never opens (harmless). Conversions run in this process (``num_proc=1``).
_OPENED: dict[str, set | None] = {"paths": None}


def _audit(event, args):
    paths = _OPENED["paths"]
    if paths is not None and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        try:
            paths.add(os.path.abspath(os.fsdecode(args[0])))
        except Exception:  # noqa: BLE001 - an audit hook must never raise into the code under test
            pass


sys.addaudithook(_audit)


def _alarm(signum, frame):
    raise _Hang()


def _rows(out: Path, sid: str) -> list[dict]:
    return [r for f in all_parquet_files(out) if f.parent.name == sid for r in pq.read_table(f).to_pylist()]


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Per adapter: the fake's native tree, its healthy conversion, ground truth and file bytes."""
    out = {}
    for sid in _fuzzed_ids():
        base = tmp_path_factory.mktemp(f"tpl-{sid}")
        adapter = get_adapter(sid)
        truth = adapter.fake(base / "raw" / sid, seed=1)
        convert([sid], base / "raw", base / "out", ConvertOptions(num_proc=1, progress=False))
        raw_sid = base / "raw" / sid
        files = {p.relative_to(raw_sid).as_posix(): p.read_bytes()
                 for p in sorted(raw_sid.rglob("*")) if p.is_file() and not p.is_symlink()}
        prefix = truth.root.relative_to(raw_sid).as_posix()
        out[sid] = dict(base=base, adapter=adapter, truth=truth, files=files, prefix=prefix,
                        out_snapshot=fm.snapshot(base / "out"))
    yield out
    report = os.environ.get("UNIHEMA_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps({
            "cases": sum(OUTCOMES.values()), "seed": SEED, "outcomes": dict(OUTCOMES),
            "by_kind": {f"{k}:{o}": n for (k, o), n in sorted(BY_KIND.items())},
            "failures": FAILURES,
        }, indent=2))


@pytest.fixture(autouse=True)
def _no_card(monkeypatch):
    """The dataset card is rendered from OUT after a successful conversion; it reads no native
    input and has its own tests. Skipping it here makes a case ~3x faster."""
    import unihema_data.card as card_mod

    monkeypatch.setattr(card_mod, "write_card", lambda out: None)


@pytest.mark.parametrize("index", range(N_CASES))
def test_fuzz_case(index, templates, tmp_path):
    case = fm.draw_case(index, SEED, {sid: t["files"] for sid, t in templates.items()})
    tpl = templates[case.sid]
    sid, truth, adapter = case.sid, tpl["truth"], tpl["adapter"]
    fm.copy_tree(tpl["base"] / "raw", tmp_path / "raw")
    fm.copy_tree(tpl["base"] / "out", tmp_path / "out")
    raw_sid, out = tmp_path / "raw" / sid, tmp_path / "out"
    prefix = tpl["prefix"] + "/" if tpl["prefix"] != "." else ""
    if case.target.startswith(prefix):
        case.root_rel = case.target[len(prefix):]
        if case.root_rel in truth.samples:
            case.sample_rel = case.root_rel
    fm.apply(case, raw_sid, tpl["files"], SEED)

    outcome, why = _run(case, tmp_path, out, tpl, sid, adapter, truth)
    OUTCOMES[outcome] += 1
    BY_KIND[(case.kind, outcome)] += 1
    if outcome in ("error", "same", "other_image", "less", "flagged"):
        return
    msg = f"{case.describe()}: {outcome}: {why}"
    FAILURES.append(msg)
    reason = fm.pending_reason(case.kind, case.role, case.sid)
    if reason:
        pytest.xfail(f"{reason} ({msg[:300]})")
    pytest.fail(msg)


def _run(case, tmp_path, out, tpl, sid, adapter, truth) -> tuple[str, str]:
    old = signal.signal(signal.SIGALRM, _alarm)
    limit = FIFO_SECONDS if case.kind == "fifo" else CASE_SECONDS
    signal.setitimer(signal.ITIMER_REAL, limit)
    opened: set = set()
    _OPENED["paths"] = opened
    try:
        convert([sid], tmp_path / "raw", out, ConvertOptions(num_proc=1, progress=False, overwrite=True))
    except ConversionError as e:
        signal.setitimer(signal.ITIMER_REAL, 0)
        text = str(e)
        if not any(n in text for n in case.names):
            return "unnamed_error", f"ConversionError does not name {case.names}: {text[:400]}"
        if fm.snapshot(out) != tpl["out_snapshot"]:
            return "out_changed", "OUT changed after a failed conversion"
        return "error", ""
    except _Hang:
        return "hang", f"no result after {limit:.0f} s"
    except BaseException as e:  # noqa: BLE001 - anything but ConversionError is a traceback
        signal.setitimer(signal.ITIMER_REAL, 0)
        return "traceback", "".join(traceback.format_exception(type(e), e, e.__traceback__))[-1500:]
    finally:
        _OPENED["paths"] = None
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    tax = load_taxonomy()
    diff, by_rel = fm.compare(sid, adapter, truth, _rows(out, sid), tax)
    return fm.judge_success(case, diff, by_rel, truth, adapter, sid, tax, opened)


def test_every_adapter_and_kind_is_drawn():
    """The default run covers every registered adapter and every mutation kind."""
    files = {}
    for sid in _fuzzed_ids():
        # file names and bytes are enough to draw cases; use the fake of each adapter
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            get_adapter(sid).fake(Path(d) / sid, seed=1)
            root = Path(d) / sid
            files[sid] = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    cases = [fm.draw_case(i, SEED, files) for i in range(N_CASES)]
    assert {c.sid for c in cases} == set(_fuzzed_ids())
    # kinds with a target file among the fuzzed adapters: all of them over the whole registry; a
    # run restricted by UNIHEMA_FUZZ_ADAPTERS (e.g. to one VOC adapter) has fewer to reach
    reachable = {k for k in fm.KINDS for f in files.values() for r, d in f.items() if fm.applicable(k, fm.file_role(r, d), d)}
    if set(_fuzzed_ids()) == set(adapter_ids()):
        assert reachable == set(fm.KINDS)
    if N_CASES >= 200:  # a short run (UNIHEMA_FUZZ_CASES=20) may not reach every kind
        assert {c.kind for c in cases} == reachable
