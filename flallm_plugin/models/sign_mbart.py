"""Stage 2 (LLM fine-tuning): frozen visual encoder -> LLM-Adapter -> mBART.

fairseq's own :class:`~fairseq.models.bart.BARTModel` (mBART-large-cc25 shape) whose
encoder is a :class:`SignTransformerEncoder`: the visual encoder of a stage-1 checkpoint
(ResNet-18 + temporal module, frozen, BatchNorm in eval mode) feeds an MLP adapter whose
outputs replace mBART's encoder token embeddings (no sqrt(d) scaling; positions and
``layernorm_embedding`` kept). The mBART weights come from a fairseq-format checkpoint
(``mbart.cc25/model.pt``, usually trimmed with ``preprocess/trim_mbart.py``).

Ablations of the paper: ``--adapter-input`` (Table 8: ``sign`` / ``frame`` /
``light_t``) and ``--freeze-visual`` (Table 9: ``backbone+temporal`` / ``backbone`` /
``none``); ``--pretrained-mbart none`` is Table 10's random-init row, and
``--load-visual-encoder-from none`` the "no visual initialing" row (ImageNet ResNet-18
from ``--visual-backbone-weights``).
"""
import argparse
import dataclasses
import logging
from typing import Dict, List

import torch.nn as nn
from fairseq.models import register_model, register_model_architecture
from fairseq.models.bart import BARTModel
from fairseq.models.bart.model import mbart_large_architecture

from flallm_plugin.checkpoint_safety import load_fairseq_checkpoint
from flallm_plugin.data.visual_input import FEATURE_LEVELS, VisualInputSpec
from flallm_plugin.data.vocab_fingerprint import check_sibling_dict
from flallm_plugin.models.adapter import MLPAdapter, num_params
from flallm_plugin.models.fingerprint import check_feature_source
from flallm_plugin.models.light_t import LightTModel, light_t_base_architecture
from flallm_plugin.models.sign_encoder import SignTransformerEncoder
from flallm_plugin.models.stage1_features import LightTFeatures, feature_width
from flallm_plugin.models.visual_encoder import (
    add_visual_args,
    build_visual_encoder,
    visual_base_architecture,
    visual_input_scaling,
)

logger = logging.getLogger(__name__)

# the visual encoder's shape (and its input normalisation, from the stage-1 record of the input) come
# from the stage-1 model
STAGE1_VISUAL_ARGS = ("temporal_spec", "temporal_dim", "temporal_stride", "temporal_padding")


def _model_args(state, path: str) -> argparse.Namespace:
    """The model args of a loaded fairseq checkpoint (``cfg.model``, upgraded from ``args``)."""
    cfg = state.get("cfg")
    model_cfg = cfg.get("model") if cfg is not None else None
    if model_cfg is None:
        raise ValueError(f"{path}: checkpoint has no model configuration (cfg.model)")
    return model_cfg if isinstance(model_cfg, argparse.Namespace) else argparse.Namespace(**dict(model_cfg))


def load_prefixed(module: nn.Module, model_state: Dict, prefix: str, path: str, what: str):
    """Load ``prefix``-ed entries of a checkpoint's model state into ``module``; exact key match."""
    sub = {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}
    expected = module.state_dict()
    missing = sorted(set(expected) - set(sub))
    unexpected = sorted(set(sub) - set(expected))
    shapes = sorted(k for k in set(expected) & set(sub) if expected[k].shape != sub[k].shape)
    if missing or unexpected or shapes:
        raise ValueError(
            f"{path}: {what} does not match this model: missing keys {missing[:8]}, "
            f"unexpected keys {unexpected[:8]}, shape mismatches {shapes[:8]}"
        )
    module.load_state_dict(sub, strict=True)
    return len(sub)


@register_model("sign_mbart")
class SignMBARTModel(BARTModel):
    """mBART fed by a frozen stage-1 visual encoder through an LLM-Adapter."""

    @staticmethod
    def add_args(parser):
        BARTModel.add_args(parser)
        add_visual_args(parser)
        parser.add_argument(
            "--load-visual-encoder-from", type=str, metavar="CKPT",
            help="stage-1 checkpoint whose visual encoder (ResNet-18 + temporal module) is loaded and frozen; "
            "'none' = ResNet-18 from --visual-backbone-weights and a random temporal module",
        )
        parser.add_argument(
            "--pretrained-mbart", type=str, metavar="PATH",
            help="fairseq-format mBART checkpoint (mbart.cc25/model.pt or a trimmed one); 'none' = random init",
        )
        parser.add_argument(
            "--adapter-input", choices=FEATURE_LEVELS,
            help="what the LLM-Adapter reads (paper Table 8): sign-wise features (temporal module, default), "
            "frame-wise features (ResNet), or the stage-1 Light-T encoder's hidden states",
        )
        parser.add_argument(
            "--freeze-visual", choices=["backbone+temporal", "backbone", "none"],
            help="frozen part of the visual encoder (paper Table 9; default backbone+temporal)",
        )
        parser.add_argument("--llm-adapter-hidden-dim", type=int, metavar="N", help="LLM-Adapter hidden width (default: d)")
        parser.add_argument("--llm-adapter-dropout", type=float, metavar="P", help="dropout inside the LLM-Adapter")

    # ------------------------------------------------------------ building
    @classmethod
    def read_stage1_args(cls, args):
        """Store the stage-1 model's args in ``args.stage1_args`` (saved with our checkpoints, as
        wav2vec fine-tuning stores ``w2v_args``), and take the visual encoder's shape from them."""
        if not has_path(args.load_visual_encoder_from):
            return
        if args.stage1_args is None:
            path = args.load_visual_encoder_from
            args.stage1_args = _model_args(load_fairseq_checkpoint(path), path)
        a1 = args.stage1_args
        for k in STAGE1_VISUAL_ARGS:
            if not hasattr(a1, k):
                continue
            if getattr(args, k, None) != getattr(a1, k):
                logger.info(f"sign_mbart: {k} = {getattr(a1, k)!r} from the stage-1 model (was {getattr(args, k, None)!r})")
            setattr(args, k, getattr(a1, k))
        spec, stage1 = VisualInputSpec.from_args(args), VisualInputSpec.from_args(a1)
        if (spec.mean, spec.std) != (stage1.mean, stage1.std):
            logger.info(f"sign_mbart: frame mean {stage1.mean} / std {stage1.std} from the stage-1 model "
                        f"(was {spec.mean} / {spec.std})")
            dataclasses.replace(spec, mean=stage1.mean, std=stage1.std).write_to_args(args)

    @classmethod
    def build_visual(cls, args, tgt_dict) -> nn.Module:
        """The (stage-1 shaped) visual module: VisualEncoder, or the Light-T encoder for Table 8's light_t."""
        if args.adapter_input != "light_t":
            return build_visual_encoder(args)
        if args.stage1_args is None:
            raise ValueError("--adapter-input light_t needs --load-visual-encoder-from STAGE1_CKPT")
        a1 = argparse.Namespace(**vars(args.stage1_args))
        light_t_base_architecture(a1)
        # the stage-1 encoder always reads video, normalised as in stage 1
        dataclasses.replace(VisualInputSpec.from_args(a1), input_type="video", feature_level=None).write_to_args(a1)
        a1.checkpoint_backbone_activations = False  # a stage-1 training option; frozen here
        return LightTFeatures(LightTModel.build_encoder(a1, tgt_dict))

    @classmethod
    def build_encoder(cls, args, tgt_dict, visual, embed_tokens):
        level = args.adapter_input
        d = args.encoder_embed_dim
        adapter = MLPAdapter(feature_width(visual, level), args.llm_adapter_hidden_dim or d, d,
                             dropout=args.llm_adapter_dropout)
        return SignTransformerEncoder(
            args, tgt_dict, visual, adapter, d, embed_tokens=embed_tokens, feature_level=level,
            input_level=VisualInputSpec.from_args(args).input_level,
        )

    @classmethod
    def check_trainable_parts(cls, args):
        """On cached features the CNN (and, for sign-level features, the temporal module) never runs:
        a --freeze-visual level that would train them cannot take effect there."""
        spec = VisualInputSpec.from_args(args)
        if not spec.features:
            return
        runs = {"frame": "temporal", "sign": None, "light_t": None}[spec.input_level]
        trainable = {"backbone+temporal": None, "backbone": "temporal", "none": "backbone+temporal"}[args.freeze_visual]
        if trainable is not None and trainable != runs:
            raise ValueError(
                f"{getattr(args, 'data', 'the data directory')}: --freeze-visual {args.freeze_visual} trains the "
                f"{trainable.replace('+', ' and ')}, but on cached {spec.input_level}-level features "
                f"{'only the temporal module runs' if runs else 'the visual encoder never runs'}: "
                "train on the video data directory instead"
            )

    @classmethod
    def build_model(cls, args, task):
        sign_mbart_base_architecture(args)
        cls.check_trainable_parts(args)
        if args.checkpoint_backbone_activations and args.freeze_visual != "none":
            where = "the data holds cached features and " if VisualInputSpec.from_args(args).features else ""
            raise ValueError(
                f"--checkpoint-backbone-activations cannot take effect: {where}the ResNet-18 is frozen "
                f"(--freeze-visual {args.freeze_visual}), so it keeps no activations to recompute; drop the flag "
                "(or train the backbone on video data with --freeze-visual none)"
            )
        tgt_dict = task.target_dictionary
        cls.read_stage1_args(args)
        embed_tokens = cls.build_embedding(args, tgt_dict, args.encoder_embed_dim)
        encoder = cls.build_encoder(args, tgt_dict, cls.build_visual(args, tgt_dict), embed_tokens)
        decoder = cls.build_decoder(args, tgt_dict, embed_tokens)
        model = cls(args, encoder, decoder)
        model.reset_adapter()
        model.tag_visual_group()
        model.encoder.visual.freeze(args.freeze_visual)
        logger.info(model.param_summary())
        return model

    def reset_adapter(self):
        """BARTModel re-initialises every Linear (BERT init, N(0, 0.02)); the adapter keeps nn.Linear's
        default init, as in stage 1: N(0, 0.02) would make its output vanish next to mBART's position
        embeddings and starve the visual signal. Its parameters form the ``adapter`` group of
        ``--optimizer param_group_adam``."""
        for m in self.encoder.adapter.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        for p in self.encoder.adapter.parameters():
            p.param_group = "adapter"

    def tag_visual_group(self):
        """The visual encoder's parameters form the ``visual`` group of ``--optimizer param_group_adam``:
        where they are trained (``--freeze-visual backbone`` / ``none``, e.g. joint training),
        ``--group-lr '{"adapter": 1e-3, "visual": 1e-4}'`` gives them their own peak learning rate instead of
        mBART's. Frozen parameters never reach the optimizer."""
        for p in self.encoder.visual.parameters():
            p.param_group = "visual"

    # ----------------------------------------------------------- loading
    def load_pretrained_components(self):
        """mBART, then the stage-1 visual encoder (or ImageNet ResNet-18 weights without one); called
        by the task when the model is not being rebuilt from one of its own checkpoints."""
        args = self.args
        if has_path(args.pretrained_mbart):
            self.load_pretrained_mbart(args.pretrained_mbart)
        else:
            logger.warning("sign_mbart: --pretrained-mbart none: mBART is randomly initialised (paper Table 10)")
        if has_path(args.load_visual_encoder_from):
            self.load_visual_encoder(args.load_visual_encoder_from)
        else:
            self.encoder.visual.load_backbone_weights(args.visual_backbone_weights)
            logger.warning("sign_mbart: no stage-1 checkpoint: the temporal module is randomly initialised")
        self.check_feature_source()

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """fairseq's loading of this model's own checkpoint (``--path``, ``--restore-file``,
        ``--finetune-from-model``), then the check that cached features match its visual encoder."""
        has_visual = any(k.startswith("encoder.visual.") for k in state_dict)
        result = super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
        if has_visual:
            self.check_feature_source()
        return result

    def check_feature_source(self):
        """Cached features must come from this model's visual encoder (:func:`fingerprint.check_feature_source`)."""
        source = getattr(self.args, "load_visual_encoder_from", None)
        source = f"the stage-1 checkpoint {source}" if has_path(source) else "no stage-1 checkpoint"
        check_feature_source(self.args, self.encoder.visual, source)

    def load_visual_encoder(self, path: str):
        """Load the stage-1 visual encoder (``encoder.visual.*``, or the whole Light-T encoder)."""
        visual = self.encoder.visual
        state = load_fairseq_checkpoint(path)["model"]
        if isinstance(visual, LightTFeatures):
            n = load_prefixed(visual.encoder, state, "encoder.", path, "stage-1 Light-T encoder")
        else:
            n = load_prefixed(visual, state, "encoder.visual.", path, "stage-1 visual encoder")
        logger.info(f"loaded the stage-1 visual encoder ({n} tensors) from {path}")

    def load_pretrained_mbart(self, path: str):
        """Load a fairseq-format mBART checkpoint into the encoder (layers, positions) and decoder.

        The state dict first goes through fairseq's own upgrade (:meth:`upgrade_state_dict`, as
        :func:`fairseq.checkpoint_utils.load_model_ensemble` does): mbart.cc25 as released stores fused
        ``in_proj_weight``/``in_proj_bias`` attention (split into q/k/v_proj) and no
        ``decoder.output_projection.weight`` (tied to ``decoder.embed_tokens.weight``).
        """
        check_sibling_dict(path, getattr(self.args, "target_dict_path", None))
        pretrained = dict(load_fairseq_checkpoint(path)["model"])
        rows = pretrained.get("encoder.embed_tokens.weight")
        n_dict = len(self.encoder.dictionary)
        if rows is not None and rows.size(0) != n_dict:
            raise ValueError(
                f"{path}: embeddings have {rows.size(0):,} rows but the target dictionary has {n_dict:,} entries; "
                "use the dict.txt written with this checkpoint (preprocess/trim_mbart.py writes both)"
            )
        own = self.state_dict()
        # fairseq's upgrade treats an encoder without a version key as an old one and removes its final layer
        # norm: the stage-1 Light-T encoder inside the model (--adapter-input light_t) is not in the mBART file
        for k, v in own.items():
            if k.startswith("encoder.visual.") and k.endswith(".version"):
                pretrained.setdefault(k, v)
        self.upgrade_state_dict(pretrained)
        ours_only = ("encoder.visual.", "encoder.adapter.")
        missing = sorted(k for k in own if k not in pretrained and not k.startswith(ours_only))
        unexpected = sorted(k for k in pretrained if k not in own)
        shapes = sorted(k for k in pretrained if k in own and own[k].shape != pretrained[k].shape)
        if missing or unexpected or shapes:
            raise ValueError(
                f"{path}: mBART checkpoint does not match the sign_mbart architecture (check layers, dims, "
                f"--encoder-normalize-before/--decoder-normalize-before, --layernorm-embedding): missing {missing[:8]}, "
                f"unexpected {unexpected[:8]}, shape mismatches {shapes[:8]}"
            )
        # fairseq's own loading (not this class's, which checks cached features against the visual encoder:
        # fairseq's upgrade adds the stage-1 Light-T encoder's version key, and the visual encoder is only
        # loaded next; load_pretrained_components checks the features once everything is in place)
        super().load_state_dict(pretrained, strict=False)
        logger.info(f"loaded pretrained mBART ({len(pretrained)} tensors) from {path}")

    # ----------------------------------------------------------- diagnostics
    def grad_norm_groups(self) -> Dict[str, List[nn.Parameter]]:
        groups = self.encoder.visual.grad_norm_groups()
        groups["adapter"] = list(self.encoder.adapter.parameters())
        adapter_visual = {id(p) for ps in groups.values() for p in ps}
        groups["llm"] = [p for p in self.parameters() if id(p) not in adapter_visual]
        return groups

    def param_summary(self) -> str:
        visual = self.encoder.visual
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return (
            f"sign_mbart parameters: visual encoder {num_params(visual):,} (frozen: {args_frozen(visual)}), "
            f"LLM-Adapter {num_params(self.encoder.adapter):,}, mBART "
            f"{num_params(self) - num_params(visual) - num_params(self.encoder.adapter):,}; trainable {trainable:,}"
        )

    def upgrade_state_dict_named(self, state_dict, name):
        # Skip BART's own upgrade (it drops/extends embedding rows for <mask> and classification
        # heads): our dictionaries match the checkpoint (trim_mbart writes both). Keep the
        # encoder/decoder upgrades of fairseq's base model.
        super(BARTModel, self).upgrade_state_dict_named(state_dict, name)


def has_path(path) -> bool:
    return path not in (None, "", "none")


def args_frozen(visual) -> str:
    parts = [n for n in ("backbone", "temporal") if all(not p.requires_grad for p in getattr(visual, n).parameters())]
    return "+".join(parts) or "nothing"


@register_model_architecture("sign_mbart", "sign_mbart_large")
def sign_mbart_large_architecture(args):
    """mBART-large-cc25: 12+12 layers, d 1024, 16 heads, FFN 4096, pre-norm, layernorm_embedding."""
    args.encoder_normalize_before = getattr(args, "encoder_normalize_before", True)
    args.decoder_normalize_before = getattr(args, "decoder_normalize_before", True)
    args.layernorm_embedding = getattr(args, "layernorm_embedding", True)
    args.load_visual_encoder_from = getattr(args, "load_visual_encoder_from", None)
    args.pretrained_mbart = getattr(args, "pretrained_mbart", None)
    args.adapter_input = getattr(args, "adapter_input", "sign")
    args.freeze_visual = getattr(args, "freeze_visual", "backbone+temporal")
    args.llm_adapter_hidden_dim = getattr(args, "llm_adapter_hidden_dim", None)
    args.llm_adapter_dropout = getattr(args, "llm_adapter_dropout", 0.0)
    args.stage1_args = getattr(args, "stage1_args", None)
    # adapter outputs are not token embeddings: no sqrt(d) scaling (as GFSLT-VLP)
    visual_input_scaling(args)
    visual_base_architecture(args)
    mbart_large_architecture(args)


sign_mbart_base_architecture = sign_mbart_large_architecture


@register_model_architecture("sign_mbart", "sign_mbart_tiny")
def sign_mbart_tiny_architecture(args):
    """Same structure, tiny sizes (tests, demo): 1+1 layers, d 64, 2 heads, FFN 128."""
    args.encoder_layers = getattr(args, "encoder_layers", 1)
    args.decoder_layers = getattr(args, "decoder_layers", 1)
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 64)
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 128)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 2)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", 2)
    sign_mbart_large_architecture(args)
