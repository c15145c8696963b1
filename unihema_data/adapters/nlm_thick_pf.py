"""NLM ThickBloodSmears_150 (Yang et al., IEEE JBHI 2020): P. falciparum thick smears, phone photos
through the eyepiece, parasites annotated as circles and white cells as points.

Native layout (research note datasets-detection.md section 14, third-party loaders; UNCONFIRMED
beyond them; ``locate`` accepts up to two levels above)::

    <root>/ThickBloodSmears_150/<patient>/<image>.jpg
    <root>/GT_updated/<patient>/<image>.txt

Format, conventions and run-time checks: :mod:`unihema_data.adapters._nlm_thick` (header order
detected per file and reported, circles -> ``from_circle`` boxes with the centre in ``point``,
points kept as points without an invented size). Labels ``Parasite`` and ``White_Blood_Cell``.
"""
from __future__ import annotations

from ._nlm_thick import NlmThickAdapter


class NlmThickPfAdapter(NlmThickAdapter):
    id = "nlm_thick_pf"
    images_dir = "ThickBloodSmears_150"
    annotations_dir = "GT_updated"
    markers = ("ThickBloodSmears_150", "GT_updated")
    fake_labels = ("Parasite", "White_Blood_Cell")
    fake_header = "hw"
    fake_top = "Thick_Smears_150"


ADAPTER = NlmThickPfAdapter
