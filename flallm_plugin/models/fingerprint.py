"""Which stage-1 weights produced a set of cached features.

``flallm-extract-features`` records :func:`feature_fingerprint` of the stage-1 encoder in
the features' ``config.yaml`` (``visual_fingerprint``); a stage-2 model checks it against
its own (frozen) visual encoder when it trains or decodes on those features.
"""
import hashlib
import logging

import torch
import torch.nn as nn

from flallm_plugin.data.visual_input import VisualInputSpec, check_feature_level

logger = logging.getLogger(__name__)


def state_fingerprint(module: nn.Module) -> str:
    """sha256 over ``module``'s state dict: names, shapes and bytes, in sorted name order.

    Floating-point tensors are hashed as float16, so the same weights held in float32 (a
    stage-1 checkpoint) and in float16 (a stage-2 model trained with ``--fp16``) agree.
    """
    h = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        t = state[name].detach().cpu()
        if t.is_floating_point():
            t = t.to(torch.float16)
        t = t.contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def feature_source(visual: nn.Module, level: str) -> nn.Module:
    """The module whose weights determine ``level`` features: the ResNet (``frame``), ResNet +
    temporal module (``sign``) or the whole stage-1 Light-T encoder (``light_t``).

    ``visual`` is a :class:`~flallm_plugin.models.visual_encoder.VisualEncoder` or a
    :class:`~flallm_plugin.models.stage1_features.LightTFeatures` (a whole stage-1 encoder).
    """
    light_t = getattr(visual, "encoder", None)
    if check_feature_level(level) == "light_t":
        if light_t is None:
            raise ValueError("light_t-level features come from a whole stage-1 Light-T encoder, "
                             "but this model holds only a visual encoder")
        return light_t
    vis = light_t.visual if light_t is not None else visual
    return vis.backbone if level == "frame" else vis


def feature_fingerprint(visual: nn.Module, level: str) -> str:
    """Fingerprint of the weights that make ``visual``'s ``level`` features (see :func:`feature_source`)."""
    return state_fingerprint(feature_source(visual, level))


def check_feature_source(args, visual: nn.Module, weights: str):
    """Cached features must come from the weights this model holds: the fingerprint that
    ``flallm-extract-features`` wrote into the features' config.yaml (``visual_fingerprint``, handed
    over by the task in the record of the input, ``args.visual_input``) must be that of ``visual``'s
    weights at the features' level. Features of other weights train and decode to garbage without any error.

    ``weights``: where this model's visual weights came from, for the message (e.g. "the stage-1
    checkpoint X", "--visual-backbone-weights X").
    """
    spec = VisualInputSpec.from_args(args)
    if not spec.features:
        return
    config = spec.data_config or "the features' config.yaml"
    expected = spec.visual_fingerprint
    if expected is None:
        logger.warning(f"{config}: no visual_fingerprint (extracted by an older flallm-extract-features): "
                       "cannot check that the features come from this model's visual encoder")
        return
    if any(p.dtype == torch.bfloat16 for p in visual.parameters()):
        logger.warning(f"{config}: bfloat16 visual encoder: its fingerprint cannot be compared with the features'")
        return
    level = spec.input_level
    own = feature_fingerprint(visual, level)
    if own != expected:
        raise ValueError(
            f"{config}: these {level}-level features were extracted with "
            f"{spec.extracted_from or 'another model'} (visual fingerprint {expected[:16]}), "
            f"but this model's visual encoder (from {weights}) has fingerprint {own[:16]}: extract the features "
            "with the weights the model uses (flallm-extract-features --checkpoint / --visual-backbone-weights), "
            "or use the video data"
        )
