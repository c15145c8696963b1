"""Makerere AI Lab plasmodium-images (133 thick Field-stained smears, 1000x, 1024x768): ``images/`` + ``annotation/``, object name ``person`` (sic) for every parasite.

Everything else (conventions, quirks, what is UNCONFIRMED and how it is detected) is shared with
the other Makerere sets: see :mod:`unihema_data.adapters._makerere`.
"""
from __future__ import annotations

from ._makerere import MakerereAdapter


class MakererePlasmodiumAdapter(MakerereAdapter):
    id = "makerere_plasmodium"
    version = "1"
    markers = ("images", "annotation")
    object_name = "person"
    side_by_side = False
    fake_prefix = "plasmodium-"
    fake_top = "plasmodium-images"


ADAPTER = MakererePlasmodiumAdapter
