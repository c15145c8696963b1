"""NIH-NLM-ThickBloodSmearsPV (Kassim et al., Diagnostics 2021): P. vivax thick smears, parasites
annotated as circles and white cells as points.

Native layout (research note datasets-detection.md section 15, third-party loaders; UNCONFIRMED
beyond them; ``locate`` accepts up to two levels above, e.g. the zip's
``NIH-NLM-ThickBloodSmearsPV/`` folder)::

    <root>/All_PvTk/<patient>/<image>.jpg
    <root>/All_annotations/<patient>/<image>.txt

Format, conventions and run-time checks: :mod:`unihema_data.adapters._nlm_thick`. Labels
``Parasitized`` (not ``Parasite`` as in ThickBloodSmears_150) and ``White_Blood_Cell``; the thin-smear
variant's ``Polygon`` / ``Uninfected`` are read too. Image and annotation names that differ only by
``_`` (a third-party loader strips it, UNCONFIRMED) are paired and reported. The uninfected
companion archive (``NIH-NLM-ThickBloodSmearsU``, optional in the catalog) has another layout
(``Uninfected Patients/<patient>/tiled/*.tiff``, UNCONFIRMED) and is not read by this adapter.
"""
from __future__ import annotations

from ._nlm_thick import NlmThickAdapter


class NlmThickPvAdapter(NlmThickAdapter):
    id = "nlm_thick_pv"
    images_dir = "All_PvTk"
    annotations_dir = "All_annotations"
    markers = ("All_PvTk", "All_annotations")
    fake_labels = ("Parasitized", "White_Blood_Cell")
    fake_header = "wh"
    fake_top = "NIH-NLM-ThickBloodSmearsPV"


ADAPTER = NlmThickPvAdapter
