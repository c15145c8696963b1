"""Semi-synthetic text sets of the UniHema corpus, generated offline from attribute annotations.

* ``wbcatt_vqa``        question/answer pairs about each WBCAtt cell (``unihema-data generate vqa``)
* ``wbcatt_caption``    one morphology caption per WBCAtt cell (``unihema-data generate caption``)
* ``leukemiaattri_mlm`` masked descriptions of LeukemiaAttri fields of view (``unihema-data generate mlm``)

Texts come from deterministic templates over the phrase tables of :mod:`.lexicon`; every text is
parsed back by :mod:`.verify` and compared to the annotations, and rejected if it does not
round-trip. The sets are semi-synthetic and not for medical use.
"""
from .writer import TEXTSETS, GenerateOptions, GenerationReport, TextsetError, generate

__all__ = ["TEXTSETS", "GenerateOptions", "GenerationReport", "TextsetError", "generate"]
