"""``unihema-data stats OUT``: counts per source / split / task / label, read from the light
columns only (images are never loaded)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from .outdir import all_parquet_files
from .schema import label_name

_COLUMNS = ["source", "split", "tasks", "label", "objects", "qc_flags"]


@dataclass
class Stats:
    images: Counter = field(default_factory=Counter)          # (source, split)
    tasks: Counter = field(default_factory=Counter)           # (source, task)
    labels: Counter = field(default_factory=Counter)          # (source, label)  image-level
    objects: Counter = field(default_factory=Counter)         # (source, category)
    flags: Counter = field(default_factory=Counter)           # (source, flag kind)
    moved: Counter = field(default_factory=Counter)           # (source, "train->test (duplicate of wbcatt)")

    def as_dict(self) -> dict:
        def nest(c: Counter) -> dict:
            d: dict = {}
            for (a, b), n in sorted(c.items()):
                d.setdefault(a, {})[b] = n
            return d

        return {k: nest(getattr(self, k)) for k in ("images", "tasks", "labels", "objects", "flags", "moved")}


def compute_stats(out: Path | str) -> Stats:
    st = Stats()
    for f in all_parquet_files(Path(out)):
        pf = pq.ParquetFile(f)
        for i in range(pf.num_row_groups):
            t = pf.read_row_group(i, columns=_COLUMNS)
            cols = {c: t.column(c).to_pylist() for c in ("source", "split", "tasks", "label", "qc_flags")}
            cats = t.column("objects").combine_chunks().field("category").to_pylist()
            for j, src in enumerate(cols["source"]):
                st.images[(src, cols["split"][j])] += 1
                for task in cols["tasks"][j]:
                    st.tasks[(src, task)] += 1
                if cols["label"][j] is not None and cols["label"][j] >= 0:
                    st.labels[(src, label_name(cols["label"][j]))] += 1
                for c in cats[j] or []:
                    st.objects[(src, label_name(c))] += 1
                for fl in cols["qc_flags"][j]:
                    st.flags[(src, fl.split(":", 1)[0])] += 1
                    if fl.startswith("split_moved:"):  # split_moved:<from>-><to>:<why>:<holder>
                        parts = fl.split(":")
                        why = parts[2] if len(parts) > 2 else "duplicate"
                        holder = parts[3].split("/", 1)[0] if len(parts) > 3 else ""
                        st.moved[(src, f"{parts[1]} ({why}{' of ' + holder if holder else ''})")] += 1
    return st


# ``unihema_data.stats(...)`` (the package-level API verb) calls unihema_data.api.stats
from .api import stats as _api_stats, make_callable as _make_callable  # noqa: E402

_make_callable(__name__, _api_stats)
