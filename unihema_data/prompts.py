"""Text prompts of the Uni-Hema model (paper §3): detection/segmentation rows get
"This image is for the <task> of <disease> cells."; VQA questions start with ``Q: `` and masked
sentences with ``mask: ``. Single-cell classification uses visual features only, but rows still
carry a descriptive prompt for uniformity."""
from __future__ import annotations

_DISEASE_PHRASE = {
    "normal": "normal blood",
    "healthy": "normal blood",
    "leukemia": "leukemia",
    "malaria": "malaria",
    "sickle_cell": "sickle cell disease",
    "anemia": "anemia",
    "thalassemia": "thalassemia",
}

_TASK_NOUN = {
    "detection": "detection",
    "segmentation": "segmentation",
    "classification": "classification",
    "attributes": "morphology prediction",
}

VQA_PREFIX = "Q: "
MLM_PREFIX = "mask: "


def disease_phrase(disease: str) -> str:
    parts = [p.strip() for p in disease.replace("|", ",").split(",") if p.strip()]
    if not parts:
        return "blood"
    return " and ".join(_DISEASE_PHRASE.get(p, p.replace("_", " ")) for p in parts)


def task_prompt(tasks: list[str], disease: str) -> str:
    """The prompt of the row's first visual task, e.g. 'This image is for the detection of leukemia cells.'"""
    for t in tasks:
        if t in _TASK_NOUN:
            return f"This image is for the {_TASK_NOUN[t]} of {disease_phrase(disease)} cells."
    return ""
