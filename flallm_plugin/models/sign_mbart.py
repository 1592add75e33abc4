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
import json
import logging
from typing import Dict, List

import torch.nn as nn
from fairseq.models import register_model, register_model_architecture
from fairseq.models.bart import BARTModel
from fairseq.models.bart.model import mbart_large_architecture

from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.models.light_t import light_t_base_architecture
from flallm_plugin.models.sign_encoder import (
    MLPAdapter,
    SignTransformerEncoder,
    add_visual_args,
    build_visual_encoder,
    num_params,
    visual_base_architecture,
)
from flallm_plugin.models.visual_encoder import BACKBONE_DIM

logger = logging.getLogger(__name__)

STAGE1_VISUAL_ARGS = ("temporal_spec", "temporal_dim", "temporal_stride", "temporal_padding")


class LightTFeatures(nn.Module):
    """Table 8's ``light_t`` input: the stage-1 Light-T encoder's last hidden states."""

    def __init__(self, encoder: SignTransformerEncoder):
        super().__init__()
        self.encoder = encoder
        self.backbone = encoder.visual.backbone  # for freezing / grad-norm groups
        self.temporal = encoder.visual.temporal

    def freeze(self, modules):
        if modules != "backbone+temporal":
            raise ValueError("--adapter-input light_t freezes the whole stage-1 encoder (--freeze-visual backbone+temporal)")
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        self.frozen = True
        self.encoder.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if getattr(self, "frozen", False):
            self.encoder.eval()
        return self

    def forward(self, src, lengths, level="light_t"):
        out = self.encoder(src, lengths)
        x = out["encoder_out"][0].transpose(0, 1)  # B x N x D
        n = (~out["encoder_padding_mask"][0]).sum(1)
        return x, n

    def grad_norm_groups(self):
        return self.encoder.visual.grad_norm_groups()


def _stage1_state(path: str):
    state = safe_torch_load(path)
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state


def _stage1_args(state) -> argparse.Namespace:
    cfg = state.get("cfg")
    if cfg is not None and cfg.get("model") is not None:
        model_cfg = cfg["model"]
        return model_cfg if isinstance(model_cfg, argparse.Namespace) else argparse.Namespace(**dict(model_cfg))
    if state.get("args") is not None:
        return state["args"]
    raise ValueError("stage-1 checkpoint has no model configuration (cfg.model / args)")


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
            "--adapter-input", choices=["sign", "frame", "light_t"],
            help="what the LLM-Adapter reads (paper Table 8): sign-wise features (temporal module, default), "
            "frame-wise features (ResNet), or the stage-1 Light-T encoder's hidden states",
        )
        parser.add_argument(
            "--freeze-visual", choices=["backbone+temporal", "backbone", "none"],
            help="frozen part of the visual encoder (paper Table 9; default backbone+temporal)",
        )
        parser.add_argument("--llm-adapter-hidden-dim", type=int, metavar="N", help="LLM-Adapter hidden width (default: d)")
        parser.add_argument("--llm-adapter-dropout", type=float, metavar="P", help="dropout inside the LLM-Adapter")

    @classmethod
    def build_model(cls, args, task):
        sign_mbart_base_architecture(args)
        tgt_dict = task.target_dictionary
        from_ckpt = getattr(task, "building_from_checkpoint", False)
        stage1 = args.load_visual_encoder_from
        has_stage1 = stage1 not in (None, "", "none")
        if has_stage1 and not from_ckpt:
            state1 = _stage1_state(stage1)
            a1 = _stage1_args(state1)
            for k in STAGE1_VISUAL_ARGS:  # the visual encoder's shape comes from stage 1
                if hasattr(a1, k):
                    setattr(args, k, getattr(a1, k))
            if args.adapter_input == "light_t":
                args.stage1_encoder_args = json.dumps(
                    {k: v for k, v in vars(a1).items() if isinstance(v, (int, float, str, bool, type(None)))}
                )
        d = args.encoder_embed_dim
        if args.adapter_input == "light_t":
            if not getattr(args, "stage1_encoder_args", None):
                raise ValueError("--adapter-input light_t needs --load-visual-encoder-from STAGE1_CKPT")
            a1 = argparse.Namespace(**json.loads(args.stage1_encoder_args))
            a1.visual_backbone_weights = "none"
            light_t_base_architecture(a1)
            visual1 = build_visual_encoder(a1, task, load_pretrained=False)
            adapter1 = MLPAdapter(visual1.out_dim, a1.vl_adapter_hidden_dim or a1.encoder_embed_dim, a1.encoder_embed_dim)
            visual = LightTFeatures(SignTransformerEncoder(a1, tgt_dict, visual1, adapter1, a1.encoder_embed_dim))
            in_dim, level = a1.encoder_embed_dim, "light_t"
        else:
            load_imagenet = not has_stage1 and not from_ckpt
            visual = build_visual_encoder(args, task, load_pretrained=load_imagenet)
            level = args.adapter_input
            in_dim = visual.out_dim if level == "sign" else BACKBONE_DIM
        adapter = MLPAdapter(in_dim, args.llm_adapter_hidden_dim or d, d, dropout=args.llm_adapter_dropout)
        embed_tokens = cls.build_embedding(args, tgt_dict, d)
        encoder = SignTransformerEncoder(args, tgt_dict, visual, adapter, d, embed_tokens=embed_tokens, feature_level=level)
        encoder.embed_scale = 1.0  # adapter outputs are not token embeddings: no sqrt(d) scaling
        data_cfg = getattr(task, "data_cfg", None)
        if data_cfg is not None and data_cfg.input_type == "features":
            encoder.cached_feature_level = data_cfg.feature_level or "sign"
            if encoder.cached_feature_level != level and not (encoder.cached_feature_level == "frame" and level == "sign"):
                raise ValueError(
                    f"{data_cfg.path}: cached features are at level {encoder.cached_feature_level!r} but "
                    f"--adapter-input is {level!r}; extract features at that level or train on raw video"
                )
        decoder = cls.build_decoder(args, tgt_dict, embed_tokens)
        model = cls(args, encoder, decoder)  # BARTModel re-initialises Linear/Embedding (BERT init) ...
        for m in model.encoder.adapter.modules():  # ... but the adapter keeps nn.Linear's default init, as in
            if isinstance(m, nn.Linear):  # stage 1: N(0, 0.02) would make its output vanish next to mBART's
                m.reset_parameters()  # position embeddings and starve the visual signal
        for p in model.encoder.adapter.parameters():
            p.param_group = "adapter"  # its own learning rate with --optimizer param_group_adam
        if not from_ckpt:
            if args.pretrained_mbart not in (None, "", "none"):
                model.load_pretrained_mbart(args.pretrained_mbart)
            else:
                logger.warning("sign_mbart: --pretrained-mbart none: mBART is randomly initialised (paper Table 10)")
            if has_stage1:
                model.load_visual_encoder(stage1, state1)
            else:
                logger.warning("sign_mbart: no stage-1 checkpoint: the temporal module is randomly initialised")
        model.encoder.visual.freeze(args.freeze_visual)
        logger.info(model.param_summary())
        return model

    # ----------------------------------------------------------- loading
    def load_visual_encoder(self, path: str, state=None):
        """Load the stage-1 visual encoder (``encoder.visual.*``), exact key match required."""
        state = state if state is not None else _stage1_state(path)
        model_state = state["model"]
        visual = self.encoder.visual
        prefix = "encoder." if isinstance(visual, LightTFeatures) else "encoder.visual."
        target = visual.encoder if isinstance(visual, LightTFeatures) else visual
        sub = {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}
        expected = target.state_dict()
        missing = sorted(set(expected) - set(sub))
        unexpected = sorted(set(sub) - set(expected))
        shapes = sorted(k for k in set(expected) & set(sub) if expected[k].shape != sub[k].shape)
        if missing or unexpected or shapes:
            raise ValueError(
                f"{path}: stage-1 visual encoder does not match this model: missing keys {missing}, "
                f"unexpected keys {unexpected}, shape mismatches {shapes}"
            )
        target.load_state_dict(sub, strict=True)
        logger.info(f"loaded the stage-1 visual encoder ({len(sub)} tensors) from {path}")

    def load_pretrained_mbart(self, path: str):
        """Load a fairseq-format mBART checkpoint into the encoder (layers, positions) and decoder."""
        state = safe_torch_load(path)
        if not isinstance(state, dict) or "model" not in state:
            raise ValueError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
        pretrained = dict(state["model"])
        rows = pretrained.get("encoder.embed_tokens.weight")
        n_dict = len(self.encoder.dictionary)
        if rows is not None and rows.size(0) != n_dict:
            raise ValueError(
                f"{path}: embeddings have {rows.size(0):,} rows but the target dictionary has {n_dict:,} entries; "
                "use the dict.txt written with this checkpoint (preprocess/trim_mbart.py writes both)"
            )
        own = self.state_dict()
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
        self.load_state_dict(pretrained, strict=False)
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
    args.stage1_encoder_args = getattr(args, "stage1_encoder_args", None)
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
