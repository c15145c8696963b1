"""Parasite detection (Roboflow Universe ``eden-lcx9y/parasite-detection``) in COCO JSON (the
catalog's manual download).

Layout, conventions, Roboflow quirks and run-time checks: :mod:`unihema_data.adapters._roboflow`.
Source specifics: nothing public describes this project (research note datasets-detection.md §16).
The alias table lists the parasite names of Uni-Hema's detection label space
(``util/coco_id2name.json``: babesia, leishmania, leukocyte, plasmodium, toxoplasma, trichomonad,
trypanosome), which is where the paper's 'Parasites' rows come from. UNCONFIRMED: the export's
exact class names and counts; any other class name fails the conversion naming it.
"""
from __future__ import annotations

from ._roboflow import RoboflowCocoAdapter


class ParasiteRoboflowAdapter(RoboflowCocoAdapter):
    id = "parasite_roboflow"
    version = "1"
    fake_classes = ("babesia", "leishmania", "leukocyte", "plasmodium", "toxoplasma", "trichomonad", "trypanosome")
    fake_size = (640, 640)
    fake_top = "parasite-detection.v2i.coco"
    fake_supercategory = "parasites"


ADAPTER = ParasiteRoboflowAdapter
