"""A fairseq transformer encoder over sign videos: visual encoder -> adapter -> transformer.

:class:`SignTransformerEncoder` is fairseq's own :class:`TransformerEncoder` (positions,
``layernorm_embedding``, layers, ``reorder_encoder_out``) whose token embeddings are
replaced by adapter outputs: :meth:`forward_embedding` embeds visual features, and the
padding mask comes from the lengths. Stage 1 (Light-T) uses it with the VL-Adapter,
stage 2 with the LLM-Adapter in front of mBART's encoder.

What the encoder reads is explicit: ``input_level`` is ``None`` for video batches
(B x T x H x W x 3 uint8) or the level of cached features (B x T x C float), and
``feature_level`` is what the adapter consumes (``frame``, ``sign`` or ``light_t``).
"""
import copy
import logging
from typing import List, NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.models.transformer import TransformerEncoder
from fairseq.modules import LearnedPositionalEmbedding

from flallm_plugin.data.visual_input import check_feature_level, computable_from
from flallm_plugin.models.visual_encoder import lengths_to_mask

logger = logging.getLogger(__name__)


class EmbeddingShape(NamedTuple):
    """What :class:`TransformerEncoder`'s constructor reads from ``embed_tokens``.

    A sign encoder has no token embeddings; stage 2 passes mBART's shared embedding
    instead, so that its keys (and the decoder's tied weights) stay mBART's.
    """

    embedding_dim: int
    padding_idx: int


def check_input_level(input_level: Optional[str], feature_level: str):
    """Refuse cached features that cannot produce what the adapter reads."""
    check_feature_level(feature_level)
    if input_level is None or computable_from(input_level, feature_level):
        return
    raise ValueError(
        f"cached features are at level {input_level!r} but the adapter reads {feature_level!r} features: "
        f"extract features at level {feature_level!r} (flallm-extract-features --level {feature_level}) "
        "or train on the video data directory"
    )


class SignTransformerEncoder(TransformerEncoder):
    """fairseq TransformerEncoder fed by ``visual`` -> ``adapter`` instead of token embeddings.

    Args:
        args: transformer encoder args (fairseq legacy namespace); ``no_scale_visual_input``
            decides whether adapter outputs are multiplied by sqrt(d) as token embeddings are.
        visual: :class:`VisualEncoder` (or the stage-1 Light-T encoder wrapper).
        adapter: module mapping visual features to the transformer width.
        embed_tokens: token embeddings to keep (stage 2: mBART's, shared with its decoder),
            or ``None``.
        feature_level: what the adapter reads (``frame`` / ``sign`` / ``light_t``).
        input_level: ``None`` for video input, else the level of the cached features.
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
        input_level: Optional[str] = None,
    ):
        check_input_level(input_level, feature_level)
        encoder_args = copy.copy(args)
        encoder_args.no_scale_embedding = bool(getattr(args, "no_scale_visual_input", False))
        super().__init__(encoder_args, dictionary, embed_tokens or EmbeddingShape(embed_dim, dictionary.pad()))
        if embed_tokens is None:
            self.embed_tokens = None
        if self.embed_positions is not None and not isinstance(self.embed_positions, LearnedPositionalEmbedding):
            raise ValueError("sign encoders use learned positions (--encoder-learned-pos)")
        self.embed_dim = embed_dim
        self.visual = visual
        self.adapter = adapter
        self.feature_level = feature_level
        self.input_level = input_level

    def forward_visual(self, src_tokens: torch.Tensor, src_lengths: torch.Tensor, src_level: Optional[str] = None):
        """Video or cached features -> (features at ``feature_level``, lengths).

        ``src_level``: the level of a batch of cached features, when it differs from the data the
        encoder was built for (e.g. ``.npy`` features given to a video model); ``None``: ``input_level``.
        """
        level = self.input_level if src_level is None else src_level
        if src_level is not None:
            check_input_level(level, self.feature_level)
        if level is None:
            return self.visual(src_tokens, src_lengths, level=self.feature_level)
        if level == self.feature_level:
            return src_tokens.to(next(self.adapter.parameters()).dtype), src_lengths
        return self.visual.forward_features(src_tokens, src_lengths, level, self.feature_level)

    def forward_embedding(self, feats: torch.Tensor, padding_mask: torch.Tensor):
        """Adapter output (scaled unless ``no_scale_visual_input``) + learned positions, then
        ``layernorm_embedding`` and dropout, as fairseq embeds tokens."""
        x = embed = self.embed_scale * self.adapter(feats)
        if self.embed_positions is not None:
            not_pad = (~padding_mask).long()
            positions = torch.cumsum(not_pad, dim=1) * not_pad + self.padding_idx  # fairseq make_positions
            x = embed + F.embedding(positions, self.embed_positions.weight, self.padding_idx)
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        x = self.dropout_module(x)
        if self.quant_noise is not None:
            x = self.quant_noise(x)
        return x, embed

    def forward(
        self,
        src_tokens: torch.Tensor,
        src_lengths: torch.Tensor,
        return_all_hiddens: bool = False,
        token_embeddings: Optional[torch.Tensor] = None,
        src_level: Optional[str] = None,
    ):
        """``src_tokens``: the video (or feature) batch, named as fairseq's models and generator pass it;
        ``src_level``: see :meth:`forward_visual` (fairseq's generator passes every ``net_input`` key)."""
        return self.forward_scriptable(src_tokens, src_lengths, return_all_hiddens, token_embeddings, src_level)

    def forward_scriptable(
        self, src_tokens, src_lengths, return_all_hiddens: bool = False, token_embeddings=None, src_level=None
    ):
        if token_embeddings is not None:
            raise ValueError("SignTransformerEncoder computes its input embeddings from the video")
        if src_lengths is None:
            raise ValueError("src_lengths is required (number of frames of each video)")
        feats, lengths = self.forward_visual(src_tokens, src_lengths, src_level)
        padding_mask = ~lengths_to_mask(lengths, feats.size(1))
        x, encoder_embedding = self.forward_embedding(feats, padding_mask)
        has_pads = bool(padding_mask.any())
        if has_pads:
            x = x * (~padding_mask).unsqueeze(-1).type_as(x)
        x = x.transpose(0, 1)  # B x T x C -> T x B x C
        encoder_states = [x] if return_all_hiddens else []
        for layer in self.layers:
            x = layer(x, encoder_padding_mask=padding_mask if has_pads else None)
            if return_all_hiddens:
                encoder_states.append(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return {
            "encoder_out": [x],  # T x B x C
            "encoder_padding_mask": [padding_mask],  # B x T
            "encoder_embedding": [encoder_embedding],  # B x T x C
            "encoder_states": encoder_states,  # List[T x B x C]
            "fc_results": [],
            "src_tokens": [],
            "src_lengths": [lengths.to(torch.int32).reshape(-1, 1)],
        }

    def translator_parameters(self) -> List[nn.Parameter]:
        """The transformer's own parameters (not visual, not adapter, not shared embeddings)."""
        skip = {id(p) for p in self.visual.parameters()} | {id(p) for p in self.adapter.parameters()}
        if self.embed_tokens is not None:
            skip |= {id(p) for p in self.embed_tokens.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]
