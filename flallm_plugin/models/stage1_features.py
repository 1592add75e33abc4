"""The stage boundary: what a trained stage-1 model hands to stage 2.

Stage 2 reads stage-1 features at one of three levels (paper Table 8):
``frame`` (ResNet-18 output), ``sign`` (temporal-module output, the default) or
``light_t`` (the Light-T encoder's last hidden states). :func:`stage1_features`
computes them from a stage-1 encoder; ``flallm-extract-features`` caches them with it,
and :class:`LightTFeatures` puts the stage-1 encoder inside a stage-2 model for the
``light_t`` level on raw video.
"""
import torch
import torch.nn as nn

from flallm_plugin.models.sign_encoder import SignTransformerEncoder

STAGE1_LEVELS = ("frame", "sign", "light_t")


def light_t_hidden_states(encoder: SignTransformerEncoder, video: torch.Tensor, lengths: torch.Tensor):
    """Stage-1 Light-T encoder's last hidden states: (B x N x D, lengths)."""
    out = encoder(video, lengths)
    x = out["encoder_out"][0].transpose(0, 1)
    return x, (~out["encoder_padding_mask"][0]).sum(1)


def stage1_features(encoder: SignTransformerEncoder, video: torch.Tensor, lengths: torch.Tensor, level: str):
    """Features of a stage-1 (``light_t``) encoder at ``level``: (B x N x C, lengths)."""
    if level == "light_t":
        return light_t_hidden_states(encoder, video, lengths)
    if level not in STAGE1_LEVELS:
        raise ValueError(f"unknown feature level {level!r} (one of {', '.join(STAGE1_LEVELS)})")
    return encoder.visual(video, lengths, level=level)


def stage1_feature_dim(encoder: SignTransformerEncoder, level: str) -> int:
    if level == "light_t":
        return encoder.embed_dim
    return encoder.visual.dim_at(level)


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

    @property
    def out_dim(self) -> int:
        return stage1_feature_dim(self.encoder, "light_t")

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
