"""The stage boundary: what a trained stage-1 model hands to stage 2.

Stage 2 reads stage-1 features at one of three levels (paper Table 8):
``frame`` (ResNet-18 output), ``sign`` (temporal-module output, the default) or
``light_t`` (the Light-T encoder's last hidden states). :func:`stage1_features`
computes them from a stage-1 encoder and :func:`feature_width` says how wide they are;
``flallm-extract-features`` caches them with it, and :class:`LightTFeatures` puts the stage-1
encoder inside a stage-2 model for the ``light_t`` level on raw video. The level names:
:data:`~flallm_plugin.data.visual_input.FEATURE_LEVELS`.
"""
import torch
import torch.nn as nn

from flallm_plugin.data.visual_input import check_feature_level
from flallm_plugin.models.sign_encoder import SignTransformerEncoder
from flallm_plugin.models.visual_encoder import BACKBONE_DIM


def light_t_hidden_states(encoder: SignTransformerEncoder, video: torch.Tensor, lengths: torch.Tensor):
    """Stage-1 Light-T encoder's last hidden states: (B x N x D, lengths)."""
    out = encoder(video, lengths)
    x = out["encoder_out"][0].transpose(0, 1)
    return x, (~out["encoder_padding_mask"][0]).sum(1)


def stage1_features(encoder: SignTransformerEncoder, video: torch.Tensor, lengths: torch.Tensor, level: str):
    """Features of a stage-1 (``light_t``) encoder at ``level``: (B x N x C, lengths)."""
    if check_feature_level(level) == "light_t":
        return light_t_hidden_states(encoder, video, lengths)
    return encoder.visual(video, lengths, level=level)


def feature_width(visual: nn.Module, level: str) -> int:
    """The width of ``level`` features made by ``visual``: a
    :class:`~flallm_plugin.models.visual_encoder.VisualEncoder` (``frame``: the ResNet-18's 512,
    ``sign``: the temporal module's output) or a :class:`LightTFeatures` (a whole stage-1 encoder,
    which also makes ``light_t``: its hidden width). What an adapter reads and a ``.npy`` input holds."""
    stage1 = visual.encoder if isinstance(visual, LightTFeatures) else None
    if check_feature_level(level) == "light_t":
        if stage1 is None:
            raise ValueError("light_t-level features come from a whole stage-1 Light-T encoder, "
                             "but this model holds only a visual encoder")
        return stage1.embed_dim
    if level == "frame":
        return BACKBONE_DIM
    return (stage1.visual if stage1 is not None else visual).temporal.out_dim


class LightTFeatures(nn.Module):
    """Table 8's ``light_t`` input: a frozen stage-1 Light-T encoder used as the visual module."""

    def __init__(self, encoder: SignTransformerEncoder):
        super().__init__()
        self.encoder = encoder
        self.frozen = False

    @property
    def backbone(self):
        return self.encoder.visual.backbone

    @property
    def temporal(self):
        return self.encoder.visual.temporal

    def freeze(self, modules):
        if modules != "backbone+temporal":
            raise ValueError(
                "--adapter-input light_t freezes the whole stage-1 encoder (--freeze-visual backbone+temporal)"
            )
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.frozen = True
        self.encoder.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, video, lengths, level="light_t"):
        if level != "light_t":
            raise ValueError(f"LightTFeatures gives light_t features, not {level!r}")
        return light_t_hidden_states(self.encoder, video, lengths)

    def grad_norm_groups(self):
        return self.encoder.visual.grad_norm_groups()
