"""Raabin-WBC detection (Kouzehkanan et al., Sci. Rep. 2022) as the Roboflow Universe export
``raabintest/raabin-wbc-data`` in COCO JSON (the catalog's manual download).

Layout, conventions, Roboflow quirks and run-time checks: :mod:`unihema_data.adapters._roboflow`.
Source specifics: the classes are expected to be Raabin's five WBC types (``Basophil``,
``Eosinophil``, ``Lymphocyte``, ``Monocyte``, ``Neutrophil``; alias table shared with
``raabin_wbc``, case-insensitive). UNCONFIRMED (research note datasets-detection.md §11): the
export's class names, counts, image sizes (Roboflow may resize) and whether M1/M2 are the two
microscopes; any other class name fails the conversion naming it.
"""
from __future__ import annotations

from ._roboflow import RoboflowCocoAdapter


class RaabinWBCDetAdapter(RoboflowCocoAdapter):
    id = "raabin_wbc_det"
    version = "1"
    fake_classes = ("Basophil", "Eosinophil", "Lymphocyte", "Monocyte", "Neutrophil")
    fake_size = (575, 575)
    fake_top = "raabin-wbc-data.v1i.coco"
    fake_supercategory = "wbc"


ADAPTER = RaabinWBCDetAdapter
