"""Stage 1 (visual initialing): ResNet-18 -> temporal module -> VL-Adapter -> Light-T.

Light-T is a small fairseq transformer encoder-decoder (learned positions, mBART-style
pre-norm with ``layernorm_embedding``, untied output projection) over the target
vocabulary of the LLM. Sizes follow the paper's Table 7::

    arch            layers  heads  d     FFN    params (Light-T, |V| = 2.4k)
    light_t_tiny    1+1     4      256   1024   3.61M
    light_t_small   2+2     4      512   2048   18.25M
    light_t         3+3     8      512   2048   25.61M
    light_t_large   4+4     8      1024  4096   124.66M
"""
import logging
from typing import Dict, List

import torch.nn as nn
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerModel
from fairseq.models.transformer import base_architecture as transformer_base_architecture

from flallm_plugin.data.visual_input import VisualInputSpec
from flallm_plugin.models.adapter import MLPAdapter, num_params
from flallm_plugin.models.fingerprint import check_feature_source
from flallm_plugin.models.sign_encoder import SignTransformerEncoder
from flallm_plugin.models.stage1_features import feature_width
from flallm_plugin.models.visual_encoder import (
    add_visual_args,
    build_visual_encoder,
    visual_base_architecture,
    visual_input_scaling,
)

logger = logging.getLogger(__name__)

# Paper Table 7: parameters "without the ResNet" = the Light-T translator.
PAPER_PARAMS = {
    "light_t_tiny": 3.61e6,
    "light_t_small": 18.25e6,
    "light_t": 25.61e6,
    "light_t_large": 124.66e6,
}


@register_model("light_t")
class LightTModel(TransformerModel):
    """Stage-1 model: :class:`SignTransformerEncoder` (visual + VL-Adapter) + fairseq TransformerDecoder."""

    @staticmethod
    def add_args(parser):
        TransformerModel.add_args(parser)
        add_visual_args(parser)
        parser.add_argument(
            "--vl-adapter-hidden-dim", type=int, metavar="N",
            help="hidden width of the VL-Adapter MLP (default: the Light-T width d)",
        )
        parser.add_argument("--vl-adapter-dropout", type=float, metavar="P", help="dropout inside the VL-Adapter")

    @classmethod
    def build_encoder(cls, args, tgt_dict):
        """Visual encoder -> VL-Adapter -> Light-T encoder, reading what the task's data holds."""
        visual = build_visual_encoder(args)
        adapter = MLPAdapter(
            feature_width(visual, "sign"),
            args.vl_adapter_hidden_dim or args.encoder_embed_dim,
            args.encoder_embed_dim,
            dropout=args.vl_adapter_dropout,
        )
        return SignTransformerEncoder(
            args, tgt_dict, visual, adapter, args.encoder_embed_dim, feature_level="sign",
            input_level=VisualInputSpec.from_args(args).input_level,
        )

    @classmethod
    def build_decoder(cls, args, tgt_dict, embed_tokens):
        return super().build_decoder(args, tgt_dict, embed_tokens)

    @classmethod
    def build_model(cls, args, task):
        light_t_base_architecture(args)
        check_light_t_input(args)
        tgt_dict = task.target_dictionary
        encoder = cls.build_encoder(args, tgt_dict)
        decoder = cls.build_decoder(args, tgt_dict, cls.build_embedding(args, tgt_dict, args.decoder_embed_dim))
        model = cls(args, encoder, decoder)
        if VisualInputSpec.from_args(args).features:  # frame-level features: the ResNet that computed them is frozen
            model.encoder.visual.freeze("backbone")
        # the visual encoder (ResNet-18 + temporal module) is the "visual" group of --optimizer
        # param_group_adam: --group-lr '{"visual": ...}' gives it its own peak learning rate
        for p in model.encoder.visual.parameters():
            p.param_group = "visual"
        logger.info(model.param_summary(getattr(args, "arch", None)))
        return model

    def load_pretrained_components(self):
        """ImageNet ResNet-18 weights (``--visual-backbone-weights``); called by the task
        when the model is not being rebuilt from one of its own checkpoints. On frame-level
        features they must be the weights that computed them (their fingerprint is checked)."""
        loaded = self.encoder.visual.load_backbone_weights(self.args.visual_backbone_weights)
        check_feature_source(self.args, self.encoder.visual, f"--visual-backbone-weights {loaded or 'none'}")

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        """fairseq's loading of this model's own checkpoint, then the check that cached frame-level
        features come from its (frozen) ResNet."""
        result = super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)
        check_feature_source(self.args, self.encoder.visual, "this checkpoint")
        return result

    def grad_norm_groups(self) -> Dict[str, List[nn.Parameter]]:
        groups = self.encoder.visual.grad_norm_groups()
        groups["adapter"] = list(self.encoder.adapter.parameters())
        groups["translator"] = self.encoder.translator_parameters() + list(self.decoder.parameters())
        return groups

    def translator_num_params(self) -> int:
        return num_params([nn.ParameterList(self.encoder.translator_parameters()), self.decoder])

    def param_summary(self, arch=None) -> str:
        translator = self.translator_num_params()
        temporal = num_params(self.encoder.visual.temporal)
        adapter = num_params(self.encoder.adapter)
        backbone = num_params(self.encoder.visual.backbone)
        msg = (
            f"light_t parameters excluding the ResNet: {translator + temporal + adapter:,} = Light-T translator "
            f"{translator:,} + temporal module {temporal:,} + VL-Adapter {adapter:,} (ResNet-18: {backbone:,}; "
            f"target vocabulary {len(self.decoder.dictionary):,})"
        )
        if arch in PAPER_PARAMS:
            paper = PAPER_PARAMS[arch]
            msg += f"; paper Table 7 ({arch}, |V|~2.4k): {paper / 1e6:.2f}M, Light-T here {translator / 1e6:.2f}M"
        return msg


def check_light_t_input(args):
    """Light-T trains its temporal module: it reads video, or cached ``frame``-level (ResNet) features,
    with the ResNet that computed them frozen (a stage 1 whose CNN is not fine-tuned, at the cost of one
    extraction). Cached ``sign``/``light_t`` features would leave the temporal module unused."""
    spec = VisualInputSpec.from_args(args)
    if not spec.features:
        return
    level = spec.input_level
    if level != "frame":
        raise ValueError(
            f"{spec.data_config or 'the data directory'}: holds {level}-level features, "
            "but light_t trains its temporal module on top of the ResNet: train it on the video data directory, "
            "or on frame-level features (flallm-extract-features --level frame --visual-backbone-weights FILE); "
            "other fairseq models (e.g. --arch s2t_transformer_s) train on any features"
        )


@register_model_architecture("light_t", "light_t")
def light_t_base_architecture(args):
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", 512)
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", 2048)
    args.encoder_layers = getattr(args, "encoder_layers", 3)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", 8)
    args.decoder_embed_dim = getattr(args, "decoder_embed_dim", args.encoder_embed_dim)
    args.decoder_ffn_embed_dim = getattr(args, "decoder_ffn_embed_dim", args.encoder_ffn_embed_dim)
    args.decoder_layers = getattr(args, "decoder_layers", args.encoder_layers)
    args.decoder_attention_heads = getattr(args, "decoder_attention_heads", args.encoder_attention_heads)
    # mBART-style: learned positions, pre-norm, layernorm on embeddings (paper leaves it open)
    args.encoder_learned_pos = getattr(args, "encoder_learned_pos", True)
    args.decoder_learned_pos = getattr(args, "decoder_learned_pos", True)
    args.encoder_normalize_before = getattr(args, "encoder_normalize_before", True)
    args.decoder_normalize_before = getattr(args, "decoder_normalize_before", True)
    args.layernorm_embedding = getattr(args, "layernorm_embedding", True)
    args.share_decoder_input_output_embed = getattr(args, "share_decoder_input_output_embed", False)
    args.dropout = getattr(args, "dropout", 0.1)
    args.attention_dropout = getattr(args, "attention_dropout", 0.1)
    args.activation_dropout = getattr(args, "activation_dropout", 0.0)
    args.vl_adapter_hidden_dim = getattr(args, "vl_adapter_hidden_dim", None)
    args.vl_adapter_dropout = getattr(args, "vl_adapter_dropout", 0.0)
    # adapter outputs are not scaled by sqrt(d) (GFSLT-VLP; measured better, docs/architecture.md "Choices")
    visual_input_scaling(args)
    visual_base_architecture(args)
    transformer_base_architecture(args)


def _size(args, layers, heads, dim, ffn):
    args.encoder_layers = getattr(args, "encoder_layers", layers)
    args.encoder_attention_heads = getattr(args, "encoder_attention_heads", heads)
    args.encoder_embed_dim = getattr(args, "encoder_embed_dim", dim)
    args.encoder_ffn_embed_dim = getattr(args, "encoder_ffn_embed_dim", ffn)
    light_t_base_architecture(args)


@register_model_architecture("light_t", "light_t_tiny")
def light_t_tiny(args):
    _size(args, 1, 4, 256, 1024)


@register_model_architecture("light_t", "light_t_small")
def light_t_small(args):
    _size(args, 2, 4, 512, 2048)


@register_model_architecture("light_t", "light_t_large")
def light_t_large(args):
    _size(args, 4, 8, 1024, 4096)
