"""Makerere AI Lab plasmodium-phonecamera (smartphone photos through the eyepiece): images and XMLs side by side, object name ``plasmodium``.

Everything else (conventions, quirks, what is UNCONFIRMED and how it is detected) is shared with
the other Makerere sets: see :mod:`unihema_data.adapters._makerere`.
"""
from __future__ import annotations

from ._makerere import MakerereAdapter


class MakererePlasmodiumPhoneAdapter(MakerereAdapter):
    id = "makerere_plasmodium_phone"
    version = "1"
    markers = ("*.xml",)
    object_name = "plasmodium"
    side_by_side = True
    fake_prefix = "plasmodium-phone-"
    fake_top = "plasmodium-phonecamera"


ADAPTER = MakererePlasmodiumPhoneAdapter
