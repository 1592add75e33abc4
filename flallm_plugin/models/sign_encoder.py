"""A fairseq transformer encoder over sign videos: visual encoder -> adapter -> transformer.

:class:`SignTransformerEncoder` is fairseq's own :class:`TransformerEncoder` (positions,
``layernorm_embedding``, layers, ``reorder_encoder_out``) whose token embeddings are
replaced by adapter outputs. Stage 1 (Light-T) uses it with the VL-Adapter, stage 2
with the LLM-Adapter in front of mBART's encoder; any fairseq encoder-decoder can use it.
"""
import logging
from typing import List, Optional

import torch
import torch.nn as nn
from fairseq.models.transformer import TransformerEncoder

from flallm_plugin.models.visual_encoder import VisualEncoder, lengths_to_mask

logger = logging.getLogger(__name__)

FEATURE_LEVELS = ("frame", "sign", "light_t")


class MLPAdapter(nn.Module):
    """MLP with one hidden layer (the paper's VL-Adapter and LLM-Adapter)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, out_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


def add_visual_args(parser):
    """Options of the visual encoder, shared by ``light_t`` and ``sign_mbart``."""
    parser.add_argument(
        "--visual-backbone-weights", type=str, metavar="PATH",
        help="ResNet-18 ImageNet weights: a torchvision state-dict file (resnet18-f37072fd.pth), "
        "'imagenet' = torchvision's cache (never downloads), or 'none' = random init",
    )
    parser.add_argument(
        "--temporal-spec", type=str, metavar="SPEC",
        help="local temporal module: K<k> = Conv1D(k)+BN+ReLU, P<k> = max-pool(k), comma separated; "
        "paper: K3; GFSLT-VLP: K5,P2,K5,P2 with --temporal-padding valid",
    )
    parser.add_argument("--temporal-dim", type=int, metavar="C", help="width C of the sign-wise features")
    parser.add_argument("--temporal-stride", type=int, metavar="N", help="stride of each temporal conv")
    parser.add_argument("--temporal-padding", choices=["same", "valid"], help="temporal conv padding")
    parser.add_argument(
        "--no-channels-last", action="store_true", default=None,
        help="feed the CNN NCHW instead of channels-last (channels-last is faster on GPUs)",
    )
    parser.add_argument(
        "--max-frames-per-chunk", type=int, metavar="N",
        help="run the CNN on at most N frames at a time (bounds activation memory at inference; 0 = all)",
    )


def visual_base_architecture(args):
    args.visual_backbone_weights = getattr(args, "visual_backbone_weights", "imagenet")
    args.temporal_spec = getattr(args, "temporal_spec", "K3")
    args.temporal_dim = getattr(args, "temporal_dim", 512)
    args.temporal_stride = getattr(args, "temporal_stride", 1)
    args.temporal_padding = getattr(args, "temporal_padding", "same")
    args.no_channels_last = getattr(args, "no_channels_last", False) or False
    args.max_frames_per_chunk = getattr(args, "max_frames_per_chunk", 0)


def build_visual_encoder(args, task, load_pretrained: bool = True) -> VisualEncoder:
    """VisualEncoder from the model args; mean/std from the task's data config."""
    data_cfg = getattr(task, "data_cfg", None)
    mean = data_cfg.mean if data_cfg is not None else (0.485, 0.456, 0.406)
    std = data_cfg.std if data_cfg is not None else (0.229, 0.224, 0.225)
    return VisualEncoder(
        backbone_weights=args.visual_backbone_weights if load_pretrained else "none",
        temporal_spec=args.temporal_spec,
        temporal_dim=args.temporal_dim,
        temporal_stride=args.temporal_stride,
        temporal_padding=args.temporal_padding,
        mean=mean,
        std=std,
        channels_last=not args.no_channels_last,
        max_frames_per_chunk=args.max_frames_per_chunk,
    )


def num_params(modules) -> int:
    if isinstance(modules, nn.Module):
        modules = [modules]
    seen, n = set(), 0
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                n += p.numel()
    return n


class SignTransformerEncoder(TransformerEncoder):
    """fairseq TransformerEncoder fed by ``visual`` -> ``adapter`` instead of token embeddings.

    ``src_tokens`` is a padded uint8 video batch (B x T x H x W x 3) or, for cached
    features, a float batch (B x T x C) at ``cached_feature_level``. ``feature_level``
    says what the adapter reads: ``frame`` (CNN) or ``sign`` (temporal module) features.
    With ``embed_tokens=None`` a one-row placeholder satisfies fairseq's constructor and
    is dropped; stage 2 passes mBART's shared embedding, which its decoder uses.
    """

    def __init__(
        self,
        args,
        dictionary,
        visual: nn.Module,
        adapter: nn.Module,
        embed_dim: int,
        embed_tokens: Optional[nn.Embedding] = None,
        feature_level: str = "sign",
    ):
        keep_embed = embed_tokens is not None
        if embed_tokens is None:
            embed_tokens = nn.Embedding(dictionary.pad() + 1, embed_dim, padding_idx=dictionary.pad())
        super().__init__(args, dictionary, embed_tokens)
        if not keep_embed:
            self.embed_tokens = None
        if feature_level not in FEATURE_LEVELS:
            raise ValueError(f"feature level must be one of {FEATURE_LEVELS}, got {feature_level!r}")
        self.visual = visual
        self.adapter = adapter
        self.feature_level = feature_level
        self.cached_feature_level = feature_level

    def extract_visual(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor):
        """-> (features at ``feature_level``, lengths). Cached features are used as they are."""
        if src_tokens.dim() == 3 and self.cached_feature_level == self.feature_level:
            return src_tokens.to(self.adapter.fc1.weight.dtype), src_lengths
        return self.visual(src_tokens, src_lengths, level=self.feature_level)

    def forward(
        self,
        src_tokens: torch.Tensor,
        src_lengths: Optional[torch.Tensor] = None,
        return_all_hiddens: bool = False,
        token_embeddings: Optional[torch.Tensor] = None,
    ):
        if token_embeddings is not None:
            raise ValueError("SignTransformerEncoder computes its own input embeddings from the video")
        if src_lengths is None:
            raise ValueError("src_lengths is required (number of frames of each video)")
        feats, lengths = self.extract_visual(src_tokens, src_lengths)
        x = self.adapter(feats)
        # positions and padding masks come from pseudo-tokens: pad where there is no frame
        mask = lengths_to_mask(lengths, x.size(1))
        pad = self.padding_idx
        pseudo_tokens = torch.where(mask, pad + 1, pad).long()
        return super().forward(pseudo_tokens, lengths, return_all_hiddens, token_embeddings=x)

    def translator_parameters(self) -> List[nn.Parameter]:
        """The transformer's own parameters (not visual, not adapter, not shared embeddings)."""
        skip = {id(p) for p in self.visual.parameters()} | {id(p) for p in self.adapter.parameters()}
        if self.embed_tokens is not None:
            skip |= {id(p) for p in self.embed_tokens.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]
