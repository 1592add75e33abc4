"""Which stage-1 weights produced a set of cached features.

``flallm-extract-features`` records :func:`feature_fingerprint` of the stage-1 encoder in
the features' ``config.yaml`` (``visual_fingerprint``); a stage-2 model checks it against
its own (frozen) visual encoder when it trains or decodes on those features.
"""
import hashlib

import torch
import torch.nn as nn

from flallm_plugin.data.visual_input import check_feature_level


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
