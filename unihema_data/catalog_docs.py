"""Markdown views of the dataset catalog: the docs table (``docs/datasets.md``) and per-source sections.

Everything here is rendered from ``catalog.yaml`` (never edited by hand); ``tests/test_catalog.py``
re-renders ``docs/datasets.md`` and fails when it is stale. Regenerate with::

    python -m unihema_data.catalog_docs

Conventions
-----------
* "checksums verified" is ``yes`` only when every file of the entry pins both ``size`` (bytes) and
  ``sha256`` (:attr:`~unihema_data.catalog.DatasetEntry.checksums_verified`); generated text sets
  and API-resolved records without a file list show ``no``.
* Counts are the published / expected counts (``expected_counts``); ``-`` means not recorded.
* :data:`PAPER_LIST_ROWS` maps every row of the Uni-Hema dataset lists (paper Sec. 4.1, Tables 1-2,
  and the README "Dataset" table of ``intelligentMachines-ITU/Uni-Hema@bf69dde``) to a catalog id.
  Several rows name the same source (e.g. MP-IDB under detection and segmentation), which is why the
  paper's "46 datasets" (list rows) map to fewer catalog entries.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

from .catalog import Catalog, DatasetEntry, load_catalog

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "datasets.md"

#: (Uni-Hema list, row name as printed in the paper/README, catalog id)
PAPER_LIST_ROWS: tuple[tuple[str, str, str], ...] = (
    # Sec. 4.1 "Cell Detection" + README Detection table + Table 1/2 detection rows
    ("detection", "LeukemiaAttri [59]", "leukemiaattri"),
    ("detection", "M5 [70]", "m5_malaria"),
    ("detection", "TXL-PBC [17]", "txl_pbc"),
    ("detection", "BCCD [68]", "bccd"),
    ("detection", "Sick-cell / Sickle-cell [78]", "sickle_tushabe"),
    ("detection", "Erythrocytes [19]", "erythrocytesidb"),
    ("detection", "MP-IDB [38]", "mp_idb"),
    ("detection", "PD-PF [74]", "pd_pf_tek"),
    ("detection", "Plasmodium [55]", "makerere_plasmodium"),
    ("detection", "Plasmodium Phonecamera (README)", "makerere_plasmodium_phone"),
    ("detection", "Tuberculosis Phonecamera (README)", "makerere_tuberculosis_phone"),
    ("detection", "Vivax [24]", "bbbc041"),
    ("detection", "Raabin [33] / Raabin-M1, Raabin-M2 (README)", "raabin_wbc_det"),
    ("detection", "AneRBC [65]", "anerbc"),
    ("detection", "Bio-Net [66]", "bionet"),
    ("detection", "ThickBloodSmears [84]", "nlm_thick_pf"),
    ("detection", "NIH-NLM-Thick PV [30]", "nlm_thick_pv"),
    ("detection", "Parasites [13] (Table 1) / Parasite (README)", "parasite_roboflow"),
    ("detection", "Acevedo (README)", "pbc"),
    # Sec. 4.1 "Segmentation" + README Segmentation table + Table 1/2 segmentation rows
    ("segmentation", "Malaria Cell Images [1] / Malaria-Detection-2019 / MD-2019", "md2019_malaria"),
    ("segmentation", "ErythrocytesIDB [19]", "erythrocytesidb"),
    ("segmentation", "MP-IDB [38]", "mp_idb"),
    ("segmentation", "BBBC041Seg [12]", "bbbc041seg"),
    ("segmentation", "NuClick [32]", "nuclick_wbc"),
    ("segmentation", "KRD-WBC [3]", "krd_wbc"),
    ("segmentation", "WBC Image dataset [90]", "zheng2018_wbc"),
    ("segmentation", "SSL Seg (README)", "zheng2018_wbc"),
    ("segmentation", "White Blood Cell dataset [43]", "mohamed_far_wbc"),
    ("segmentation", "Elsafty-RBC for AI [14]", "elsafty_rbc"),
    ("segmentation", "AneRBC-II-Anemic / AneRBC-II-Healthy [65]", "anerbc"),
    ("segmentation", "IDB2 (Table 1)", "all_idb2"),
    # Sec. 4.1 "Single Cell for classification" + README Classification table + Tables 1/2
    ("classification", "Acevedo [2]", "pbc"),
    ("classification", "KRD-WBC [3]", "krd_wbc"),
    ("classification", "Warty Pig [4]", "warty_pig_wbc"),
    ("classification", "HRLS [7]", "bodzas_hrls_wbc"),
    ("classification", "AML Hehr [21]", "aml_hehr"),
    ("classification", "Raabin WBC [33]", "raabin_wbc"),
    ("classification", "AML Matek [41]", "aml_cytomorphology_lmu"),
    ("classification", "BMC [42]", "bmc"),
    ("classification", "C-NMC2019 [46]", "c_nmc_2019"),
    ("classification", "RV PBS [52]", "rv_pbs"),
    ("classification", "PBC-8-DA (README)", "pbc_8_da"),
    ("classification", "APL_AML [67]", "apl_aml_kaggle"),
    ("classification", "BCCD [68] (Kaggle link)", "bccd_kaggle"),
    ("classification", "LISC (README)", "lisc"),
    ("classification", "White-Blood-Cell-Dataset (README)", "mohamed_far_wbc"),
    ("classification", "BloodMNIST (README) / MiniSit [85] (Table 2)", "bloodmnist"),
    ("classification", "WBCAtt [76] (Table 2, single-cell morphology)", "wbcatt"),
    # Sec. 4.1 "MLM and VQA"
    ("text", "WBCAtt-VQA", "wbcatt_vqa"),
    ("text", "LeukemiaAttri-MLM", "leukemiaattri_mlm"),
)

TABLE_COLUMNS = ("id", "name", "tasks", "disease", "granularity", "license", "redistributable", "access",
                 "adapter", "checksums verified", "images", "objects", "classes", "in paper")


def _cell(value: object) -> str:
    """One markdown table cell: ``-`` for empty, pipes escaped, newlines flattened."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return str(value).replace("|", "\\|").replace("\n", " ").strip()


def _count(n: Optional[int]) -> str:
    return "-" if n is None else f"{n:,}"


def render_datasets_table(catalog: Catalog | Iterable[DatasetEntry]) -> str:
    """One markdown table (header + one row per entry, catalog order) of every dataset."""
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    for e in catalog:
        c = e.expected_counts
        row = [f"`{e.id}`", e.name, e.tasks, e.disease, e.granularity, e.license, e.redistributable, e.access,
               e.adapter, "yes" if e.checksums_verified else "no", _count(c.images), _count(c.objects),
               _count(c.classes), "yes" if e.in_paper else "no"]
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def render_entry(entry: DatasetEntry, heading_level: int = 3) -> str:
    """Markdown section for one dataset (usable in dataset cards): citation, licence, access, known issues."""
    e = entry
    h = "#" * heading_level
    lic = e.license + (f" ({e.license_note})" if e.license_note else "")
    lines = [f"{h} {e.name} (`{e.id}`)", "",
             f"- Citation: {e.citation}" + (f" DOI: [{e.doi}](https://doi.org/{e.doi})" if e.doi else ""),
             f"- Homepage: {e.homepage}",
             f"- License: {lic}",
             f"- Redistributable: {e.redistributable}",
             f"- Access: {e.access}" + (f" (`{e.record}`)" if e.record else ""),
             f"- Tasks: {', '.join(e.tasks)}; disease: {', '.join(e.disease)}; granularity: {e.granularity}; "
             f"native format: {e.native_format}"]
    acq = [f"{k} {v}" for k, v in (("magnification", e.magnification), ("microscope", e.microscope),
                                     ("stain", e.stain)) if v]
    if acq:
        lines.append(f"- Acquisition: {'; '.join(acq)}")
    c = e.expected_counts
    counts = [f"{k} {_count(v)}" for k, v in (("images", c.images), ("objects", c.objects), ("classes", c.classes))
              if v is not None]
    counts += [f"{k} {_count(v)}" for k, v in c.splits.items()]
    if counts or c.note:
        lines.append("- Expected counts: " + ", ".join(counts) + (f" ({c.note})" if c.note and counts else c.note or ""))
    if e.files:
        lines.append("- Files:")
        for f in e.files:
            state = "verified" if f.verified else "unverified"
            src = f.url or "(manual)"
            extra = " optional" if f.optional else ""
            lines.append(f"  - `{f.name}` from {src} [{state}{extra}]" + (f" - {f.note}" if f.note else ""))
    if e.manual_instructions:
        lines.append(f"- How to obtain: {e.manual_instructions}")
    for issue in e.known_issues:
        lines.append(f"- Known issue: {issue}")
    if e.notes:
        lines.append(f"- Notes: {e.notes}")
    lines.append(f"- Adapter: {e.adapter}; in the Uni-Hema paper: {'yes' if e.in_paper else 'no'}"
                 + (f" ({e.paper_table} list)" if e.paper_table else ""))
    return "\n".join(lines) + "\n"


def render_paper_rows() -> str:
    lines = ["| Uni-Hema list | row | catalog id |", "|---|---|---|"]
    for table, row, sid in PAPER_LIST_ROWS:
        lines.append(f"| {table} | {_cell(row)} | `{sid}` |")
    return "\n".join(lines) + "\n"


def render_datasets_md(catalog: Catalog) -> str:
    """The whole ``docs/datasets.md``."""
    entries = list(catalog)
    in_paper = [e for e in entries if e.in_paper]
    implemented = [e.id for e in entries if e.adapter == "implemented"]
    parts = [
        "# Source datasets",
        "",
        "<!-- Generated from catalog.yaml by `python -m unihema_data.catalog_docs`; do not edit by hand. -->",
        "",
        f"{len(entries)} catalog entries: {len(in_paper)} from the Uni-Hema paper's dataset lists "
        f"({len(PAPER_LIST_ROWS)} list rows; several rows name the same source) and "
        f"{len(entries) - len(in_paper)} extras. Adapters implemented: "
        + (", ".join(f"`{i}`" for i in implemented) or "none") + ".",
        "",
        "Licences are SPDX ids (`other` = see the note, `unknown` = nothing stated or unconfirmed). "
        "`redistributable` is conservative: `true` only when the licence clearly allows it. "
        "\"checksums verified\" means every file pins size and sha256.",
        "",
        render_datasets_table(catalog).rstrip(),
        "",
        "## Uni-Hema dataset lists -> catalog ids",
        "",
        render_paper_rows().rstrip(),
        "",
        "## Details",
        "",
    ]
    parts += [render_entry(e).rstrip() + "\n" for e in entries]
    return "\n".join(parts).rstrip() + "\n"


def write_docs(catalog: Optional[Catalog] = None, path: Path = DOCS_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_datasets_md(catalog if catalog is not None else load_catalog()), encoding="utf-8")
    return path


def main() -> None:
    p = write_docs()
    print(f"wrote {p}")


if __name__ == "__main__":
    main()
