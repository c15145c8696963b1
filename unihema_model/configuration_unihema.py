"""Configuration of the Uni-Hema reference model (arXiv 2511.13889).

``UniHemaConfig`` is a transformers ``PreTrainedConfig`` with two nested sub-configs:

* ``backbone_config`` - a ``ResNetConfig`` (ResNet-50 shapes by default, features of ``stage2..stage4``,
  i.e. C3/C4/C5 at strides 8/16/32; a 4th level is made by a 3x3 stride-2 conv on C5).
* ``text_config``     - a ``T5Config`` (T5-base shapes by default).

Every place where the authors' released code (intelligentMachines-ITU/Uni-Hema) departs from the paper is a
switch whose default follows the paper; :meth:`UniHemaConfig.released_code` flips them all. The switches are:

=============================  =====================  =====================  ===========================================
field                          paper (default)        released code          meaning
=============================  =====================  =====================  ===========================================
``text_model_name``            ``google-t5/t5-base``  ``google/flan-t5-base`` which pretrained T5 to load (if local)
``use_dn``                     True                   False                  contrastive denoising runs (code: never)
``cmf_order``                  ``text_first``         ``image_first``        CMF cross-attention order
``cmf_use_ffn``                False                  True                   FFN + norm after the two cross-attentions
``cmf_text_residual``          False                  True                   add T5 encoder states to the CMF output
``cmf_num_layers``             1                      2                      stacked CMF blocks
``tgvr_fusion``                ``concat``             ``gate``               concat+project vs gated mix
``tgvr_use_text_mask``         True                   False                  key padding mask on the prompt tokens
``tgvr_include_dn``            False                  True                   TGVR also refines the DN queries
``qgmf_fusion``                ``sum_then_project``   ``project_then_sum``   backbone + encoder feature fusion
``generate_from_fused``        True                   False                  generation from CMF states vs prompt only
``morph_loss_type``            ``ce``                 ``asl``                per-attribute CE vs asymmetric loss
``morph_ignore_index``         -100                   4                      value meaning "not annotated"
``seg_dice_per_image``         True                   False                  Dice per image vs over the whole batch
``score_threshold``            0.0                    0.1                    post-processing score floor
``vqa_prompt_prefix``          ``"Q: "``              ``""``                 VQA prompt prefix
=============================  =====================  =====================  ===========================================

Settings the paper does not state are taken from the released DINO-4scale config in both presets (d_model 256,
6+6 layers, 900 queries, 100 DN queries, box noise 0.4, label noise 0.5, matcher costs 2/5/2, loss weights).
``use_upsampler`` is on in both presets: the paper uses "a small upsampler during fine-tuning (step 5)".

Tensor conventions used across the package: boxes inside the model are normalised ``(cx, cy, w, h)`` in [0, 1]
relative to the un-padded image; detection class ids are contiguous ``0..num_det_classes-1``; COCO ``xywh``
absolute pixel boxes appear only at the data boundary (see :mod:`unihema_model.box_ops`).
"""
from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, ResNetConfig, T5Config
from transformers.configuration_utils import PreTrainedConfig, SubConfigSpec

MORPHOLOGY_ATTRIBUTES = (
    "nuclear_chromatin",
    "nuclear_shape",
    "nucleolus",
    "cytoplasm",
    "cytoplasmic_basophilia",
    "cytoplasmic_vacuoles",
)

TASKS = ("detection", "attributes", "segmentation", "classification", "vqa", "mlm", "caption")  # caption: HemBLIP-style

DEFAULT_LOSS_WEIGHTS = {
    "loss_ce": 1.0,
    "loss_bbox": 5.0,
    "loss_giou": 2.0,
    "loss_morphology": 2.0,
    "loss_dice": 2.0,
    "loss_mask_focal": 1.0,
    "loss_cls": 1.0,
    "loss_text": 1.0,
}

DEFAULT_TASK_WEIGHTS = {t: 1.0 for t in TASKS}

# T5 / ByT5 special token ids (the released t5-base and flan-t5-base configs): pad = decoder start = 0, eos = 1.
# ``T5Config()`` does not set ``decoder_start_token_id``; without it teacher forcing and ``generate`` fail.
T5_SPECIAL_IDS = {"decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}


@strict
class UniHemaConfig(PreTrainedConfig):
    r"""Configuration for :class:`~unihema_model.modeling_unihema.UniHemaModel`.

    Args (selection; every field is documented in the module docstring or next to its default):
        backbone_config: ResNetConfig (dict or object); its ``out_features`` pick the backbone levels.
        text_config: T5Config (dict or object).
        d_model: width of the image transformer and Hema-Former.
        num_queries: decoder queries = top-K encoder proposals (DINO ``two_stage_type='standard'``).
        num_det_classes / num_cls_classes: detection classes / single-cell classification classes.
        morph_num_values: number of values of each morphology attribute (one classifier per attribute).
    """

    model_type = "unihema"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="resnet",
            init_kwargs={"out_features": ["stage2", "stage3", "stage4"], "layer_type": "bottleneck"},
        ),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="t5"),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    backbone_pretrained_name: str = "microsoft/resnet-50"
    text_model_name: str = "google-t5/t5-base"
    freeze_backbone_stem_and_stage1: bool = True

    # image transformer (DINO-4scale)
    d_model: int = 256
    num_feature_levels: int = 4
    encoder_layers: int = 6
    decoder_layers: int = 6
    encoder_attention_heads: int = 8
    decoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    decoder_ffn_dim: int = 2048
    encoder_n_points: int = 4
    decoder_n_points: int = 4
    dropout: float = 0.0
    activation_function: str = "relu"
    position_embedding_temperature: int = 20
    num_queries: int = 900
    mixed_query_selection: bool = True
    look_forward_twice: bool = True
    decoder_heads_shared: bool = True

    # contrastive denoising
    use_dn: bool = True
    dn_number: int = 100
    dn_label_noise_ratio: float = 0.5
    dn_box_noise_scale: float = 0.4

    # heads
    num_det_classes: int = 30
    num_cls_classes: int = 45
    morph_attributes: list[str] | None = None
    morph_num_values: list[int] | None = None
    morph_ignore_index: int = -100
    morph_loss_type: str = "ce"
    scfe_classifier_hidden_dims: list[int] | None = None
    scfe_dropout: float = 0.1

    # Hema-Former
    cmf_num_queries: int = 64
    cmf_num_layers: int = 1
    cmf_num_heads: int = 8
    cmf_order: str = "text_first"
    cmf_use_ffn: bool = False
    cmf_text_residual: bool = False
    cmf_visual_source: str = "backbone"
    tgvr_num_heads: int = 8
    tgvr_fusion: str = "concat"
    tgvr_use_text_mask: bool = True
    tgvr_include_dn: bool = False
    qgmf_fusion: str = "sum_then_project"
    qgmf_mask_query_index: int = 0
    use_upsampler: bool = True
    upsampler_hidden_dim: int = 64

    # text
    text_max_length: int = 64
    vqa_prompt_prefix: str = "Q: "
    mlm_prompt_prefix: str = "mask: "
    detection_prompt_template: str = "This image is for the detection of {} cells."
    generate_from_fused: bool = True
    num_beams: int = 4
    max_new_tokens: int = 64

    # matching, losses, post-processing
    matcher_class_cost: float = 2.0
    matcher_bbox_cost: float = 5.0
    matcher_giou_cost: float = 2.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    aux_loss: bool = True
    interm_loss: bool = True
    loss_weights: dict | None = None
    task_loss_weights: dict | None = None
    seg_dice_per_image: bool = True
    num_select: int = 300
    score_threshold: float = 0.0
    init_std: float = 0.02
    is_encoder_decoder: bool = False

    # vocabularies stored with the weights (set by ``unihema-train`` from the taxonomy; see unihema_model.labels)
    # ``id2label`` (inherited) maps the stable taxonomy class ids (``class_names()[i]``) to names for both the
    # detection and the classification head; ``morph_value_names[attribute]`` names each attribute's values.
    morph_value_names: dict | None = None
    # token ids of the default prompt per task (detection / attributes / segmentation), used by ``predict_*``
    # when no prompt is given so that TGVR runs as in training; set with ``UniHemaModel.set_default_prompts``
    default_prompt_ids: dict | None = None

    def __post_init__(self, **kwargs):
        if self.morph_attributes is None:
            self.morph_attributes = list(MORPHOLOGY_ATTRIBUTES)
        if self.morph_num_values is None:
            self.morph_num_values = [2] * len(self.morph_attributes)
        if len(self.morph_num_values) != len(self.morph_attributes):
            raise ValueError("morph_num_values needs one entry per morphology attribute")
        if self.scfe_classifier_hidden_dims is None:
            self.scfe_classifier_hidden_dims = [self.d_model, self.d_model // 2]
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(self.loss_weights or {})}
        self.task_loss_weights = {**DEFAULT_TASK_WEIGHTS, **(self.task_loss_weights or {})}
        for name, allowed in (
            ("cmf_order", ("text_first", "image_first")),
            ("cmf_visual_source", ("backbone", "encoder")),
            ("tgvr_fusion", ("concat", "gate")),
            ("qgmf_fusion", ("sum_then_project", "project_then_sum")),
            ("morph_loss_type", ("ce", "asl")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        super().__post_init__(**kwargs)
        text = self.text_config
        if text is not None and getattr(text, "decoder_start_token_id", None) is None:
            # T5 starts decoding with the pad token; a T5Config built without it breaks teacher forcing / generate
            pad = getattr(text, "pad_token_id", None)
            text.decoder_start_token_id = 0 if pad is None else pad
            if pad is None:
                text.pad_token_id = 0

    # ------------------------------------------------------------------ presets
    @classmethod
    def paper(cls, **overrides) -> "UniHemaConfig":
        """Full-size model following the paper (ResNet-50, DINO-4scale 6+6 layers, 900 queries, T5-base)."""
        kwargs = dict(
            backbone_config=ResNetConfig(
                embedding_size=64,
                hidden_sizes=[256, 512, 1024, 2048],
                depths=[3, 4, 6, 3],
                layer_type="bottleneck",
                out_features=["stage2", "stage3", "stage4"],
            ),
            text_config=T5Config(  # T5-base shapes; T5's special ids (pad = decoder start = 0, eos = 1)
                d_model=768, d_ff=3072, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12,
                vocab_size=32128, **T5_SPECIAL_IDS,
            ),
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    @classmethod
    def released_code(cls, **overrides) -> "UniHemaConfig":
        """Reproduces the behaviour of the authors' released code (see the module docstring table)."""
        flan = T5Config(
            d_model=768, d_ff=2048, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12,
            feed_forward_proj="gated-gelu", tie_word_embeddings=False, vocab_size=32128, **T5_SPECIAL_IDS,
        )
        kwargs = dict(
            text_config=flan,
            text_model_name="google/flan-t5-base",
            use_dn=False,
            cmf_order="image_first",
            cmf_use_ffn=True,
            cmf_text_residual=True,
            cmf_num_layers=2,
            tgvr_fusion="gate",
            tgvr_use_text_mask=False,
            tgvr_include_dn=True,
            qgmf_fusion="project_then_sum",
            generate_from_fused=False,
            morph_loss_type="asl",
            morph_ignore_index=4,
            seg_dice_per_image=False,
            score_threshold=0.1,
            vqa_prompt_prefix="",
        )
        kwargs.update(overrides)
        return cls.paper(**kwargs)

    @classmethod
    def tiny(cls, **overrides) -> "UniHemaConfig":
        """A CPU test configuration (random weights, a few seconds per step at 64x64)."""
        kwargs = dict(
            backbone_config=ResNetConfig(
                embedding_size=8,
                hidden_sizes=[8, 16, 32, 64],
                depths=[1, 1, 1, 1],
                layer_type="basic",
                out_features=["stage2", "stage3", "stage4"],
            ),
            text_config=T5Config(
                vocab_size=384, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                num_heads=4, **T5_SPECIAL_IDS,
            ),
            d_model=32,
            encoder_layers=1,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            encoder_n_points=2,
            decoder_n_points=2,
            num_queries=20,
            dn_number=6,
            num_det_classes=5,
            num_cls_classes=4,
            cmf_num_queries=8,
            cmf_num_heads=4,
            tgvr_num_heads=4,
            upsampler_hidden_dim=8,
            text_max_length=16,
            num_beams=1,
            max_new_tokens=8,
            num_select=10,
            freeze_backbone_stem_and_stage1=False,
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def morph_total_values(self) -> int:
        return int(sum(self.morph_num_values))


__all__ = ["UniHemaConfig", "MORPHOLOGY_ATTRIBUTES", "TASKS"]
