"""The visual encoder shared by both stages: ResNet-18 -> local temporal module.

* Input: a padded batch of uint8 videos ``B x T x H x W x 3`` and their lengths.
  Normalisation (ImageNet mean/std by default) runs here, on the model's device and
  dtype; frames are fed channels-last.
* Only real frames reach the CNN: the batch is packed to ``sum(lengths)`` frames,
  the CNN runs once on all of them and the features are scattered back.
* ``checkpoint_backbone`` (``--checkpoint-backbone-activations``): in training, the CNN keeps
  only the inputs of its five stages (stem, layer1..4) and recomputes each stage in the
  backward pass (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant); the recomputation
  leaves the BatchNorm running statistics alone, so they are updated once per step, as without it.
* The local temporal module (paper: Conv1D + BatchNorm + ReLU, kernel 3, stride 1)
  is a small spec language: ``K3`` = conv(3) + BN + ReLU, ``P2`` = max-pool(2);
  GFSLT-VLP's variant is ``K5,P2,K5,P2`` with ``valid`` padding. Padded positions are
  zeroed before each conv and excluded from BatchNorm statistics, so a sample gives
  the same features alone or in a batch.
"""
import contextlib
import logging
import os
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint
from torchvision.models import resnet18

from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.data.visual_input import (
    FEATURE_LEVELS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    VisualInputSpec,
    check_feature_level,
    computable_from,
)

logger = logging.getLogger(__name__)

RESNET18_IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1
BACKBONE_DIM = 512

# the levels the ResNet-18 and the temporal module make (light_t needs the whole stage-1 encoder)
VISUAL_LEVELS = tuple(level for level in FEATURE_LEVELS if level != "light_t")


def lengths_to_mask(lengths: torch.Tensor, max_len: Optional[int] = None) -> torch.Tensor:
    """``B`` lengths -> ``B x T`` bool mask, True on real positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def resolve_backbone_weights(spec: Optional[str]) -> Optional[str]:
    """``none`` -> random init; ``imagenet`` -> torchvision's cache (never downloads); else a path."""
    if spec is None or spec.lower() == "none":
        return None
    if spec.lower() == "imagenet":
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", RESNET18_IMAGENET_FILE)
        if not os.path.isfile(cached):
            raise FileNotFoundError(
                f"ImageNet ResNet-18 weights not found in torchvision's cache ({cached}); nothing is "
                f"downloaded at run time: pass --visual-backbone-weights /path/to/{RESNET18_IMAGENET_FILE} "
                "(or 'none' for random init)"
            )
        return cached
    if not os.path.isfile(spec):
        raise FileNotFoundError(f"{spec}: ResNet-18 weights file not found (--visual-backbone-weights)")
    return spec


def build_resnet18() -> nn.Module:
    """torchvision ResNet-18 without its classifier (512-d output), randomly initialised."""
    net = resnet18(weights=None)
    net.fc = nn.Identity()
    return net


def load_resnet18_weights(net: nn.Module, spec: Optional[str]) -> Optional[str]:
    """Load ImageNet (or any torchvision ResNet-18) weights into ``net``; returns the file or None."""
    path = resolve_backbone_weights(spec)
    if path is None:
        return None
    state = safe_torch_load(path)
    if isinstance(state, dict) and "state_dict" in state and "fc.weight" not in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a ResNet-18 state dict, got {type(state).__name__}")
    # the classifier is dropped: a ResNet-18 trained for any number of classes is fine
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches: another network
        detail = " ".join(str(e).split())  # torch's message spans lines: one line
        raise ValueError(f"{path}: not a torchvision ResNet-18 state dict ({detail})") from e
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a torchvision ResNet-18 state dict (missing keys: {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}; unexpected keys: {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''})"
        )
    logger.info(f"ResNet-18 weights loaded from {path}")
    return path


class BatchNormStatsFrozen(object):
    """Context in which the training BatchNorm layers of ``module`` leave their running statistics
    and ``num_batches_tracked`` as they are: activation checkpointing recomputes a training forward
    in the backward pass, which must not update them a second time. Each layer still normalises
    with batch statistics and saves the same tensors for backward (the checkpoint checks that);
    its update factor is 0 (``r * 1 + mean * 0`` leaves ``r`` bit for bit) and its counter is
    put back on exit."""

    def __init__(self, module: nn.Module):
        self.norms = [
            m for m in module.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training and m.track_running_stats
        ]
        self.saved = []

    def __enter__(self):
        self.saved = [(m.momentum, m.num_batches_tracked.clone()) for m in self.norms]
        for m in self.norms:
            m.momentum = 0.0
        return self

    def __exit__(self, *exc):
        for m, (momentum, count) in zip(self.norms, self.saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)
        return False


def checkpointed(fn, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``fn(x)`` keeping only ``x`` for backward, where ``fn`` runs ``module`` (recomputed then,
    with its BatchNorm running statistics frozen: :class:`BatchNormStatsFrozen`)."""
    return checkpoint(
        fn, x, use_reentrant=False, context_fn=lambda: (contextlib.nullcontext(), BatchNormStatsFrozen(module))
    )


class _Masked(object):
    """Batch norm over ``B x C x T`` whose statistics use real positions (``mask``: B x T) only."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        xt = x.transpose(1, 2)  # B x T x C
        out = torch.zeros_like(xt)
        out[mask] = super().forward(xt[mask])
        return out.transpose(1, 2)


class MaskedBatchNorm1d(_Masked, nn.BatchNorm1d):
    """BatchNorm1d over ``B x C x T`` whose statistics use real positions only."""


class MaskedSyncBatchNorm1d(_Masked, nn.SyncBatchNorm):
    """:class:`MaskedBatchNorm1d` with statistics over all processes (``--sync-bn``; GPUs only)."""


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """torch's ``SyncBatchNorm.convert_sync_batchnorm`` that keeps the temporal module's masking
    (torch's would turn a :class:`MaskedBatchNorm1d` into a plain SyncBatchNorm). Same state dict."""
    if isinstance(module, MaskedBatchNorm1d):
        out = MaskedSyncBatchNorm1d(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
            process_group,
        )
        if module.affine:  # the same parameters and buffers, as torch's conversion does
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, nn.SyncBatchNorm):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child, process_group))
    return module


class TemporalModule(nn.Module):
    """Local temporal module: a sequence of ``K<k>`` (conv+BN+ReLU) and ``P<k>`` (max-pool)."""

    def __init__(self, in_dim: int, dim: int, spec: str = "K3", stride: int = 1, padding: str = "same"):
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"temporal padding must be 'same' or 'valid', got {padding!r}")
        self.spec = [s.strip().upper() for s in spec.split(",") if s.strip()]
        if not self.spec:
            raise ValueError("empty temporal module spec")
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.ops: List[Tuple[str, int, int, int]] = []  # (kind, kernel, stride, padding)
        cur = in_dim
        for tok in self.spec:
            if tok[0] not in "KP" or not tok[1:].isdigit():
                raise ValueError(f"bad temporal module token {tok!r} in {spec!r} (expected K<k> or P<k>)")
            k = int(tok[1:])
            if tok[0] == "K":
                pad = k // 2 if padding == "same" else 0
                self.layers.append(nn.Conv1d(cur, dim, k, stride=stride, padding=pad))
                self.norms.append(MaskedBatchNorm1d(dim))
                self.ops.append(("K", k, stride, pad))
                cur = dim
            else:
                self.ops.append(("P", k, k, 0))
        self.out_dim = cur

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for _, k, s, p in self.ops:
            lengths = torch.div(lengths + 2 * p - k, s, rounding_mode="floor") + 1
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x: B x T x C (zeros on padding) -> B x N x D, output lengths."""
        x = x.transpose(1, 2)  # B x C x T
        conv_i = 0
        for kind, k, s, p in self.ops:
            new_lengths = torch.div(lengths + 2 * p - k, s, rounding_mode="floor") + 1
            if bool((new_lengths <= 0).any()):
                raise ValueError(
                    f"a video of {int(lengths.min())} sampled frames is too short for the temporal module "
                    f"{','.join(self.spec)} (raise --sampling-rate or use 'same' padding)"
                )
            if kind == "K":
                x = self.layers[conv_i](x)
                x = x[:, :, : int(new_lengths.max())]
                mask = lengths_to_mask(new_lengths, x.size(2))
                x = F.relu(self.norms[conv_i](x, mask))
                conv_i += 1
            else:
                x = F.max_pool1d(x, k, k)
                x = x[:, :, : int(new_lengths.max())]
                mask = lengths_to_mask(new_lengths, x.size(2))
                x = x * mask[:, None, :].to(x.dtype)
            lengths = new_lengths
        return x.transpose(1, 2), lengths


class VisualEncoder(nn.Module):
    """ResNet-18 (fc removed) on the real frames of a batch, then the temporal module.

    ``forward(video, lengths, level)`` returns ``(features B x N x D, lengths)`` where
    ``level`` is ``frame`` (CNN output, 512-d) or ``sign`` (temporal-module output);
    ``forward_features(feats, lengths, from_level, level)`` continues from cached features.
    Built randomly initialised; :meth:`load_backbone_weights` loads ImageNet weights.
    """

    def __init__(
        self,
        temporal_spec: str = "K3",
        temporal_dim: int = 512,
        temporal_stride: int = 1,
        temporal_padding: str = "same",
        mean=tuple(IMAGENET_MEAN),
        std=tuple(IMAGENET_STD),
        channels_last: bool = True,
        max_frames_per_chunk: int = 0,
        checkpoint_backbone: bool = False,
    ):
        super().__init__()
        self.backbone = build_resnet18()
        self.temporal = TemporalModule(BACKBONE_DIM, temporal_dim, temporal_spec, temporal_stride, temporal_padding)
        mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        # x_norm = x_uint8 * scale + shift  ==  (x / 255 - mean) / std
        self.register_buffer("pixel_scale", 1.0 / (255.0 * std_t), persistent=False)
        self.register_buffer("pixel_shift", -mean_t / std_t, persistent=False)
        self.channels_last = channels_last
        self.max_frames_per_chunk = max_frames_per_chunk
        self.checkpoint_backbone = checkpoint_backbone
        self.frozen = False
        self.frames_processed = 0  # frames seen by the CNN (diagnostics and tests)


    def load_backbone_weights(self, spec: Optional[str]) -> Optional[str]:
        """ResNet-18 weights: a state-dict file, ``imagenet`` (torchvision's cache) or ``none``."""
        return load_resnet18_weights(self.backbone, spec)

    def freeze(self, modules: str = "backbone+temporal"):
        """Freeze parameters and keep BatchNorm statistics fixed (eval mode) for good."""
        parts = {"backbone+temporal": [self.backbone, self.temporal], "backbone": [self.backbone], "none": []}
        if modules not in parts:
            raise ValueError(f"freeze must be one of {list(parts)}, got {modules!r}")
        self.frozen_parts = parts[modules]
        for m in self.frozen_parts:
            for p in m.parameters():
                p.requires_grad_(False)
            m.eval()
        self.frozen = bool(self.frozen_parts)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:
            for m in self.frozen_parts:
                m.eval()
        return self

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """N x H x W x 3 uint8 -> N x 3 x H x W normalised, channels-last, in the model dtype."""
        dtype = self.pixel_scale.dtype
        x = frames.permute(0, 3, 1, 2).to(dtype)
        if not self.channels_last:
            x = x.contiguous()
        return torch.addcmul(self.pixel_shift, x, self.pixel_scale)

    def run_backbone(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W normalised frames -> N x 512; with ``checkpoint_backbone``, while the CNN
        trains, each stage (stem, layer1..4) is checkpointed (torchvision ResNet's own order)."""
        b = self.backbone
        if not (self.checkpoint_backbone and b.training and torch.is_grad_enabled()):
            return b(x)

        def stem(y):
            return b.maxpool(b.relu(b.bn1(b.conv1(y))))

        x = checkpointed(stem, b, x)
        for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
            x = checkpointed(layer, layer, x)
        return b.fc(torch.flatten(b.avgpool(x), 1))

    def forward_backbone(self, src: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """B x T x H x W x 3 uint8 -> B x T x 512, zeros on padding; padding never hits the CNN."""
        B, T = src.shape[:2]
        mask = lengths_to_mask(lengths, T)
        frames = src[mask]  # sum(lengths) x H x W x 3
        self.frames_processed += frames.size(0)
        chunk = self.max_frames_per_chunk or frames.size(0)
        feats = torch.cat([self.run_backbone(self.normalize(f)) for f in frames.split(chunk)], dim=0)
        out = feats.new_zeros(B, T, feats.size(-1))
        out[mask] = feats
        return out

    def forward(self, video: torch.Tensor, lengths: torch.Tensor, level: str = "sign"):
        """B x T x H x W x 3 uint8 videos -> (features at ``level``, lengths)."""
        if video.dim() != 5:
            raise ValueError(f"expected a B x T x H x W x 3 video batch, got shape {tuple(video.shape)}")
        return self.forward_features(self.forward_backbone(video, lengths), lengths, "frame", level)

    def forward_features(self, feats: torch.Tensor, lengths: torch.Tensor, from_level: str, level: str = "sign"):
        """Cached B x T x C features at ``from_level`` -> (features at ``level``, lengths)."""
        check_feature_level(from_level, VISUAL_LEVELS)
        check_feature_level(level, VISUAL_LEVELS)
        x = feats.to(self.pixel_scale.dtype)
        if not computable_from(from_level, level):
            raise ValueError(f"cannot compute {level}-level features from {from_level}-level features")
        if from_level == level:
            return x, lengths
        return self.temporal(x, lengths)

    def grad_norm_groups(self) -> Dict[str, List[nn.Parameter]]:
        return {"backbone": list(self.backbone.parameters()), "temporal": list(self.temporal.parameters())}


# ------------------------------------------------------------------ model args
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
        help="run the CNN on at most N frames at a time (bounds activation memory at inference, and in "
        "training with --checkpoint-backbone-activations; 0 = all)",
    )
    parser.add_argument(
        "--checkpoint-backbone-activations", action="store_true", default=None,
        help="in training, keep only the inputs of the ResNet-18's five stages and recompute each stage in "
        "the backward pass (less activation memory per frame for about one more CNN forward; BatchNorm "
        "statistics are updated once per step as without it). Needs a trained backbone: refused where it is frozen",
    )
    parser.add_argument(
        "--no-scale-visual-input", action="store_true", default=None,
        help="do not multiply the adapter output by sqrt(d) before adding positions (the default: GFSLT-VLP "
        "does not scale its visual input, and it trained better on the synthetic data, see docs/architecture.md)",
    )
    parser.add_argument(
        "--scale-visual-input", action="store_true", default=None,
        help="multiply the adapter output by sqrt(d), as fairseq scales token embeddings",
    )


def visual_base_architecture(args):
    args.visual_backbone_weights = getattr(args, "visual_backbone_weights", "imagenet")
    args.temporal_spec = getattr(args, "temporal_spec", "K3")
    args.temporal_dim = getattr(args, "temporal_dim", 512)
    args.temporal_stride = getattr(args, "temporal_stride", 1)
    args.temporal_padding = getattr(args, "temporal_padding", "same")
    args.no_channels_last = getattr(args, "no_channels_last", False) or False
    args.max_frames_per_chunk = getattr(args, "max_frames_per_chunk", 0)
    args.checkpoint_backbone_activations = getattr(args, "checkpoint_backbone_activations", False) or False
    # what the data holds and how frames are normalised: args.visual_input, written by the
    # sign_translation task (VisualInputSpec.from_args reads it; ImageNet mean/std without one)


def visual_input_scaling(args):
    """``args.no_scale_visual_input`` from the two switches (default: unscaled)."""
    scale = bool(getattr(args, "scale_visual_input", None))
    if scale and getattr(args, "no_scale_visual_input", None):
        raise ValueError("--scale-visual-input and --no-scale-visual-input contradict each other")
    if scale:
        args.no_scale_visual_input = False
    elif getattr(args, "no_scale_visual_input", None) is None:
        args.no_scale_visual_input = True


def build_visual_encoder(args) -> VisualEncoder:
    """A randomly initialised :class:`VisualEncoder` shaped by the model args (the frame normalisation:
    the record of the input, :class:`VisualInputSpec`)."""
    spec = VisualInputSpec.from_args(args)
    return VisualEncoder(
        temporal_spec=args.temporal_spec,
        temporal_dim=args.temporal_dim,
        temporal_stride=args.temporal_stride,
        temporal_padding=args.temporal_padding,
        mean=spec.mean,
        std=spec.std,
        channels_last=not args.no_channels_last,
        max_frames_per_chunk=args.max_frames_per_chunk,
        checkpoint_backbone=args.checkpoint_backbone_activations,
    )

