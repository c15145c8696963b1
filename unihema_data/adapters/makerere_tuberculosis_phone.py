"""Makerere AI Lab tuberculosis-phonecamera (sputum smears, not blood; smartphone photos): images and XMLs side by side, object name ``TBbacillus``. UNCONFIRMED: the file-name pattern (the adapter does not depend on it).

Everything else (conventions, quirks, what is UNCONFIRMED and how it is detected) is shared with
the other Makerere sets: see :mod:`unihema_data.adapters._makerere`.
"""
from __future__ import annotations

from ._makerere import MakerereAdapter


class MakerereTuberculosisPhoneAdapter(MakerereAdapter):
    id = "makerere_tuberculosis_phone"
    version = "1"
    markers = ("*.xml",)
    object_name = "TBbacillus"
    side_by_side = True
    fake_prefix = "tuberculosis-phone-"
    fake_top = "tuberculosis-phonecamera"


ADAPTER = MakerereTuberculosisPhoneAdapter
