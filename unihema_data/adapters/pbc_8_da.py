"""PBC-8-DA (Pal et al. 2024, the RV-PBS Figshare package 23804523): PBC single-cell images sorted
into 8 classes as the target domain of the RV-PBS <-> PBC domain-adaptation experiments.

Native layout (evidence: Pal's domain-adaptation scripts read ``glob('PBC_8_DA/*/*.jpg')`` and
take the label from the folder, indexing it with the class index of the RV-PBS
``classification_data_da_aug/<class>/`` folders; the Figshare package itself is UNCONFIRMED)::

    PBC_8_DA/<class>/<image>.jpg

``locate`` accepts up to two levels above the folder. The class vocabulary is UNCONFIRMED and is
detected at run time (``report.info["vocabulary"]``): RV-PBS folder names (``BASOPHILS``,
``BAND CELLS``, ``MYELOCYTE(S)``, ...) or PBC's own folder names (``basophil``, ``ig``, ...); both
are in ``sources.pbc_8_da.labels``. A class folder the alias table does not know is an error
naming it; a tree mixing both vocabularies is reported (``vocabulary = mixed``).

Conventions:
* label = the folder (``labels`` table). When the file name keeps a PBC prefix (``SNE_1234.jpg``)
  the core refines the folder label with it like WBCAtt does (``label_refined:<folder label>``),
  or flags a contradiction (``label_prefix_conflict:<prefix>=<its label>``) and keeps the folder;
  a name without a known PBC prefix is used as is (no flag).
* No patient ids (PBC has none) and no official split: grouped fallback by image. The images are
  PBC's (leakage with ``pbc``, ``wbcatt``, ``bloodmnist``): the corpus integrity pass links
  byte-identical and near-duplicate copies.
* Junk (``.DS_Store``, ``__MACOSX``), non-image files and files outside a class folder are skipped
  and reported; names differing only in case are an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ..errors import CorruptInputError, MissingInputError
from ..formats import disk
from ..taxonomy import load_taxonomy
from . import _synthetic as syn
from .base import FakeSample, FakeTruth
from .bodzas_hrls_wbc import known_class
from .families import ClassFolderAdapter, FileRecord

DA_DIR = "PBC_8_DA"
RV_PBS_NAMES = frozenset({"BAND CELLS", "BASOPHILS", "BLAST CELLS", "EOSINOPHILS", "LYMPHOCYTES", "METAMYELOCYTES",
                          "MONOCYTES", "MYELOCYTE", "MYELOCYTES", "NEUTROPHILS", "PROMYELOCYTES"})
PBC_NAMES = frozenset({"basophil", "eosinophil", "erythroblast", "ig", "lymphocyte", "monocyte", "neutrophil", "platelet"})


class Pbc8DaAdapter(ClassFolderAdapter):
    id = "pbc_8_da"
    version = "1"
    markers = ("*",)
    layout_hint = f"{DA_DIR}/<class>/<image>.jpg"

    def signature(self, path: Path) -> bool:
        """Class folders of the alias table directly below (the folder is usually ``PBC_8_DA``)."""
        dirs = disk.subdirs(path)
        return bool(dirs) and any(known_class(self.id, d.name) for d in dirs) and \
            (path.name == DA_DIR or sum(known_class(self.id, d.name) for d in dirs) >= 2)

    def records(self, root: Path) -> Iterator[FileRecord]:
        names = [d.name for d in disk.subdirs(root)]
        for folder, parts in self._leaf_folders(root, root):
            name = dict(parts)["class"]
            if not known_class(self.id, name):
                raise CorruptInputError(f"{disk.show(folder)}: unknown class folder {disk.show(name)!r} "
                                        f"(not in sources.{self.id}.labels of taxonomy.yaml)")
        rv, pbc = [n for n in names if n in RV_PBS_NAMES], [n for n in names if n in PBC_NAMES]
        vocab = "rv_pbs folder names" if rv and not pbc else "pbc folder names" if pbc and not rv else "mixed"
        self.report.info["vocabulary"] = f"{vocab} ({len(names)} class folders: {', '.join(names)})"
        if vocab == "mixed":
            self.report.flag(f"{disk.rel(root, root.parent)}/", f"class folders mix RV-PBS and PBC names: {', '.join(names)}")
        if not names:
            raise MissingInputError(f"{self.id}: no class folders under {disk.show(root)}")
        yield from super().records(root)

    def meta(self, rec: FileRecord) -> dict[str, str]:
        stem = rec.path.stem
        if "_" in stem:
            prefix = stem.split("_", 1)[0]
            tax = load_taxonomy()
            try:
                tax.map_label(self.id, prefix, table="label_prefixes")
            except Exception:  # noqa: BLE001 - not a PBC prefix: the folder alone labels the image
                return {}
            return {"refine_label": prefix}
        return {}

    def fake(self, out: Path, seed: int = 0) -> FakeTruth:
        """Writes ``out/RV-PBS/PBC_8_DA/`` with RV-PBS-style class folders holding PBC-named
        images (``SNE_`` in ``NEUTROPHILS``: refined; ``MY_`` in ``MONOCYTES``: a flagged
        contradiction; a name without prefix), a ``.DS_Store`` and a stray CSV."""
        root = Path(out) / "RV-PBS" / DA_DIR
        files = [("BASOPHILS", "BA_10021.jpg"), ("EOSINOPHILS", "EO_3300.jpg"), ("NEUTROPHILS", "SNE_77.jpg"),
                 ("NEUTROPHILS", "BNE_78.jpg"), ("LYMPHOCYTES", "LY_5.jpg"),
                 ("MONOCYTES", "MO_6.jpg"), ("MONOCYTES", "MY_7.jpg"), ("MYELOCYTE", "MY_8.jpg"),
                 ("METAMYELOCYTES", "img0009.jpg"), ("PROMYELOCYTES", "PMY_10.jpg")]
        truth: dict[str, FakeSample] = {}
        for k, (cls, name) in enumerate(files):
            (root / cls).mkdir(parents=True, exist_ok=True)
            (root / cls / name).write_bytes(syn.encode(syn.single_cell(200, "wbc", seed * 100 + k), "JPEG", quality=88))
            truth[f"{cls}/{name}"] = FakeSample(f"{cls}/{name}", label=cls)
        (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
        (root / "NEUTROPHILS" / "counts.csv").write_text("class,n\n")
        return FakeTruth(root=root, samples=truth)


ADAPTER = Pbc8DaAdapter
