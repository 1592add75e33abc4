"""Label-smoothed cross-entropy + an order-free pseudo-gloss loss on the encoder (beyond the paper).

``--criterion sign_pseudo_gloss_ce`` is fairseq's ``label_smoothed_cross_entropy`` plus, with
``--pseudo-gloss-weight W > 0``, a multi-label loss that asks the *encoder* which target tokens the
video contains, in any order (Sign2GPT's pseudo-gloss pre-training, ICLR 2024; "pseudo-glosses"
because the sentence's own words stand in for the glosses a gloss-free corpus lacks). Every valid
position ``t`` of the encoder's output (``--pseudo-gloss-visual encoder_out``, default, or the
adapter's output ``adapter``) scores every token ``v`` of the target vocabulary as
``exp(s) * <h_t, E_v> / sqrt(C) + b_v``, with ``E`` the model's target token embeddings
(``decoder.embed_tokens``), so the scorer needs no head of the encoder's width; a token's video score
is its best position's (max over time, multiple-instance learning), and a binary cross-entropy
compares it with whether the token occurs in the target. Only content tokens count (not ``<pad>``,
``</s>``, ``<s>``, ``<unk>`` nor the language tag). Sign2GPT selects nouns, verbs and adjectives
with a part-of-speech tagger; here every target piece is a pseudo-gloss (frequent function words are
learnt as a prior by ``b``).

Why it helps stage 1 from a random ResNet: with the cross-entropy alone the decoder learns the
targets' language first and the gradient reaching the CNN collapses (docs/grounding.md); this loss
reaches the encoder without passing the decoder, so the only way to lower it is to look at the video.

The loss per sample-size unit: the label-smoothed CE per token (per sentence with ``--sentence-avg``)
+ ``W`` x the pseudo-gloss BCE summed over the vocabulary per target content token.
``--pseudo-gloss-only-updates N`` trains the pseudo-gloss loss alone for the first N updates (the CE is
computed and logged as ``nll_loss``), then both; validation always scores both. ``W = 0`` (default)
is ``label_smoothed_cross_entropy`` exactly, with no parameters.

Where the scorer's parameters live (``s``, initialised to 0, and ``b``, one per token, initialised to
the log-odds of :data:`PRIOR`): on the criterion, as ``sign_contrastive_ce``'s logit scale: fairseq
optimises, saves (``criterion``) and restores them, and the model's keys stay the paper's.

Logged (train and valid): ``pseudo_gloss_loss`` (per content token, base 2) and ``pseudo_gloss_recall``
(%: of each video's distinct target tokens, how many are among its K best-scoring tokens, K = their
number; about K / vocabulary for a model that does not look at the video, beyond what the prior ``b``
knows of frequent words).
"""
import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq import utils
from fairseq.criterions import register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)
from fairseq.dataclass import ChoiceEnum
from fairseq.logging import metrics

from flallm_plugin.criterions._encoder_aux import VISUAL_SOURCES, EncoderAuxiliaryLoss

NAME = "sign_pseudo_gloss_ce"
PRIOR = 0.01  # initial probability of every token (b = its log-odds)


@dataclass
class SignPseudoGlossCECriterionConfig(LabelSmoothedCrossEntropyCriterionConfig):
    pseudo_gloss_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of an order-free multi-label loss on the encoder: which target tokens the video "
            "contains (max over positions, binary cross-entropy; Sign2GPT's pseudo-glosses), per target content "
            "token, added to the label-smoothed CE; 0 (default) = label_smoothed_cross_entropy exactly"
        },
    )
    pseudo_gloss_visual: Optional[ChoiceEnum(list(VISUAL_SOURCES))] = field(
        default=None,
        metadata={
            "help": "what scores the tokens: the encoder's output (encoder_out, default) or the adapter's output "
            "(adapter); only with --pseudo-gloss-weight > 0"
        },
    )
    pseudo_gloss_only_updates: int = field(
        default=0,
        metadata={
            "help": "train on the pseudo-gloss loss alone for the first N updates (the CE is computed and logged but "
            "not trained), then on CE + weight x pseudo-gloss; validation always reports both. Needs "
            "--pseudo-gloss-weight > 0 and --task sign_translation (which tells the criterion the update number)"
        },
    )


@register_criterion(NAME, dataclass=SignPseudoGlossCECriterionConfig)
class SignPseudoGlossCECriterion(EncoderAuxiliaryLoss, LabelSmoothedCrossEntropyCriterion):
    """``label_smoothed_cross_entropy`` + ``pseudo_gloss_weight`` x order-free bag-of-tokens BCE on the encoder."""

    def __init__(
        self,
        task,
        sentence_avg,
        label_smoothing,
        ignore_prefix_size=0,
        report_accuracy=False,
        pseudo_gloss_weight=0.0,
        pseudo_gloss_visual=None,
        pseudo_gloss_only_updates=0,
    ):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        if pseudo_gloss_weight < 0:
            raise ValueError(f"--pseudo-gloss-weight {pseudo_gloss_weight}: must be >= 0 (0 = the paper's loss)")
        if pseudo_gloss_only_updates < 0:
            raise ValueError(f"--pseudo-gloss-only-updates {pseudo_gloss_only_updates}: must be >= 0")
        if pseudo_gloss_weight == 0:
            for flag, value in (("--pseudo-gloss-visual", pseudo_gloss_visual),
                                ("--pseudo-gloss-only-updates", pseudo_gloss_only_updates or None)):
                if value is not None:
                    raise ValueError(f"{flag} acts only with --pseudo-gloss-weight > 0: set a weight or drop {flag}")
        self.weight = pseudo_gloss_weight
        self.name, self.loss_name, self.aux_only_updates = NAME, "the pseudo-gloss loss", pseudo_gloss_only_updates
        self.weight_flag, self.visual_flag, self.warmup_flag = (
            "--pseudo-gloss-weight", "--pseudo-gloss-visual", "--pseudo-gloss-only-updates")
        self.visual_key = VISUAL_SOURCES[str(pseudo_gloss_visual or "encoder_out")]
        tgt_dict = task.target_dictionary
        content = torch.ones(len(tgt_dict), dtype=torch.bool)
        content[: tgt_dict.nspecial] = False  # <s>, <pad>, </s>, <unk>
        lang_tag_idx = getattr(task, "lang_tag_idx", None)
        if lang_tag_idx is not None:
            content[lang_tag_idx] = False
        self.register_buffer("content", content, persistent=False)
        if pseudo_gloss_weight > 0:
            self.log_scale = nn.Parameter(torch.zeros(()))
            self.bias = nn.Parameter(torch.full((len(tgt_dict),), math.log(PRIOR / (1 - PRIOR))))
        else:  # no parameter (and no 'criterion' entry in checkpoints) unless the loss is on
            self.register_parameter("log_scale", None)
            self.register_parameter("bias", None)

    def forward(self, model, sample, reduce=True):
        if self.weight == 0:
            return super().forward(model, sample, reduce=reduce)
        loss, sample_size, logging_output, encoder_out, embed_tokens = self.cross_entropy_and_encoder_out(
            model, sample, reduce)
        states, valid = self.encoder_states(encoder_out, type(model).__name__)
        if states.size(-1) != embed_tokens.embedding_dim:
            raise ValueError(
                f"{NAME}: the encoder's {self.visual_key!r} has width {states.size(-1)} but the target token "
                f"embeddings {embed_tokens.embedding_dim}: the scorer needs one width (or use --pseudo-gloss-weight 0)"
            )
        bce, n_pos, hits = self.pseudo_gloss_loss(states, valid, embed_tokens.weight, sample["target"])
        loss = loss + self.weight * sample_size * bce / n_pos.clamp(min=1)
        logging_output.update(loss=loss.data, pseudo_gloss_loss=bce.data, pseudo_gloss_npos=n_pos.data,
                              pseudo_gloss_hits=hits.data)  # tensors: no device sync before the log interval
        return loss, sample_size, logging_output

    def pseudo_gloss_loss(self, states: torch.Tensor, valid: torch.Tensor, embeddings: torch.Tensor,
                          target: torch.Tensor):
        """(BCE summed over videos and content tokens, number of (video, distinct target token) pairs, how many of
        those are among the video's K best-scoring tokens) for ``states`` B x T x C, ``valid`` B x T."""
        with torch.autocast(device_type=states.device.type, enabled=False):
            cols = self.content.nonzero().squeeze(1)
            scale = self.log_scale.float().exp() / math.sqrt(states.size(-1))
            scores = scale * states.float() @ embeddings[cols].float().t() + self.bias[cols].float()  # B x T x V'
            scores = scores.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(1)  # B x V': best position
            present = torch.zeros(target.size(0), len(self.content), device=target.device)
            present.scatter_(1, target, 1.0)
            present = present[:, cols]
            bce = F.binary_cross_entropy_with_logits(scores, present, reduction="sum")
        n_pos = present.sum(1)  # distinct content tokens of each sentence
        rank = scores.argsort(1, descending=True).argsort(1)  # 0 = best-scoring token
        hits = (present.bool() & (rank < n_pos.unsqueeze(1))).sum()
        return bce, n_pos.sum(), hits

    # --------------------------------------------------------------- metrics
    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        n = utils.item(sum(log.get("pseudo_gloss_npos", 0) for log in logging_outputs))
        if n == 0:
            return
        loss = utils.item(sum(log.get("pseudo_gloss_loss", 0) for log in logging_outputs))
        hits = utils.item(sum(log.get("pseudo_gloss_hits", 0) for log in logging_outputs))
        metrics.log_scalar("pseudo_gloss_loss", loss / n / math.log(2), n, round=3)
        metrics.log_scalar("pseudo_gloss_recall", 100.0 * hits / n, n, round=2)
