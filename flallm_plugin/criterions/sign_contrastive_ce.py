"""Label-smoothed cross-entropy + a CLIP-style visual-text contrastive loss (beyond the paper).

``--criterion sign_contrastive_ce`` is fairseq's ``label_smoothed_cross_entropy`` plus, with
``--contrastive-weight W > 0``, a symmetric InfoNCE loss (in-batch negatives, as CLIP and
GFSLT-VLP's pre-training; SignCL and C2RL add such visual-text objectives to the same
ResNet-18 + Light-T + mBART pipeline) between

* the pooled visual representation of each video: the mean over its valid (non-padded)
  positions of the encoder's output (``--contrastive-visual encoder_out``, default) or of the
  adapter's output (``adapter``: the encoder's ``encoder_embedding``), and
* the pooled text representation of its target sentence: the mean of the model's target token
  embeddings (``decoder.embed_tokens``) over its content tokens (not ``<pad>``, ``</s>``,
  ``<s>``, ``<unk>`` nor the target language tag),

compared by cosine similarity times a learnable logit scale (CLIP's ``exp(s)``, ``s`` initialised
to ``log(1 / --contrastive-init-temperature)`` and capped at 100). Videos of the same sentence
are all positives of each other (a soft target over them), so repeated sentences in a batch are
never pushed apart.

The loss per sample-size unit is the label-smoothed CE per token (per sentence with
``--sentence-avg``) + ``W`` x the InfoNCE per video: fairseq divides the summed loss by the
sample size, so the criterion adds ``W x sample_size x mean InfoNCE``. ``W = 0`` (the default)
is the paper's loss exactly: the criterion then is ``label_smoothed_cross_entropy`` and has no
parameters. ``--contrastive-only-updates N`` trains the contrastive loss alone for the first N
updates (an alignment warm-up before translation, as GFSLT-VLP's visual-language pre-training;
the CE is still computed and logged as ``nll_loss``), then CE + ``W`` x contrastive; validation
always scores CE + ``W`` x contrastive, so the best checkpoint is chosen on the full loss.

Where the logit scale lives: on the criterion. fairseq's trainer optimises the criterion's
parameters with the model's, saves them in the checkpoint (``criterion``) and restores them on
resume (``fairseq/trainer.py``), while the model's architecture and state dict stay the paper's:
fairseq-generate, flallm-extract-features and stage 2's loading of the stage-1 visual encoder
see the same checkpoint keys as without the loss. There are no projection heads: the pooled
encoder output and the token embeddings already share the model's width (Light-T: encoder and
decoder width d; sign_mbart: mBART's shared embeddings), and fairseq builds a criterion from the
task before it sees the model, so head sizes could not be known there.

Logged (train and valid): ``contrastive_loss`` (InfoNCE per video, base 2 as fairseq's losses),
``contrastive_v2t_acc`` / ``contrastive_t2v_acc`` (in-batch retrieval accuracy, %: the best
scoring sentence of a video, or video of a sentence, is a positive; chance is about 1 / batch
size) and ``contrastive_scale`` (the logit scale). A batch of one video has no negative: it
contributes 0 and is not counted (the last partial batch of an epoch may be one video);
``--batch-size 1``, where every batch would be one video, is refused. Negatives are the videos
of the same forward pass: one GPU's batch under data parallelism, not the global batch.
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
from omegaconf import II

from flallm_plugin.criterions._encoder_aux import VISUAL_SOURCES, EncoderAuxiliaryLoss

NAME = "sign_contrastive_ce"
DEFAULT_TEMPERATURE = 0.07  # CLIP's initial temperature
MAX_LOGIT_SCALE = 100.0  # CLIP caps exp(s) at 100


@dataclass
class SignContrastiveCECriterionConfig(LabelSmoothedCrossEntropyCriterionConfig):
    contrastive_weight: float = field(
        default=0.0,
        metadata={
            "help": "weight of a symmetric InfoNCE loss (in-batch negatives) between each video's pooled visual "
            "representation and its target sentence's pooled token embeddings, per video, added to the "
            "per-token label-smoothed CE; 0 (default) = the paper's loss, label_smoothed_cross_entropy exactly"
        },
    )
    contrastive_init_temperature: Optional[float] = field(
        default=None,
        metadata={
            "help": f"initial temperature of the contrastive loss's learnable logit scale (default "
            f"{DEFAULT_TEMPERATURE}, CLIP's); only with --contrastive-weight > 0"
        },
    )
    contrastive_visual: Optional[ChoiceEnum(list(VISUAL_SOURCES))] = field(
        default=None,
        metadata={
            "help": "visual side of the contrastive loss, averaged over each video's valid positions: the "
            "encoder's output (encoder_out, default) or the adapter's output (adapter); only with "
            "--contrastive-weight > 0"
        },
    )
    contrastive_only_updates: int = field(
        default=0,
        metadata={
            "help": "train on the contrastive loss alone for the first N updates (the cross-entropy is computed and "
            "logged but not trained: an alignment warm-up, as GFSLT-VLP's visual-language pre-training before "
            "translation), then on CE + weight x contrastive; validation always reports CE + weight x contrastive. "
            "Needs --contrastive-weight > 0 and --task sign_translation (which tells the criterion the update number)"
        },
    )
    batch_size: Optional[int] = II("dataset.batch_size")


def masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (B x T x C) over the positions where ``valid`` (B x T) is true; zeros where none is."""
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


def symmetric_info_nce(visual: torch.Tensor, text: torch.Tensor, positives: torch.Tensor, logit_scale: torch.Tensor):
    """CLIP's symmetric InfoNCE over a batch of paired representations (B x C each).

    ``positives`` (B x B bool, symmetric, true on the diagonal) marks the pairs that match (the same
    sentence); each row's target is uniform over its positives. ``logit_scale`` is CLIP's ``s``
    (similarities are multiplied by ``exp(s)``, capped at :data:`MAX_LOGIT_SCALE`). Computed in float32.

    Returns the loss of each item (B: the mean of its video->text and text->video losses) and the
    number of videos whose best-scoring sentence, and of sentences whose best-scoring video, is a positive.
    """
    with torch.autocast(device_type=visual.device.type, enabled=False):
        v = F.normalize(visual.float(), dim=-1)
        t = F.normalize(text.float(), dim=-1)
        scale = logit_scale.float().clamp(max=math.log(MAX_LOGIT_SCALE)).exp()
        logits = scale * v @ t.t()  # B x B: video i vs sentence j
        target = positives.float() / positives.sum(1, keepdim=True).float()
        v2t = F.cross_entropy(logits, target, reduction="none")
        t2v = F.cross_entropy(logits.t(), target, reduction="none")
    v2t_correct = positives.gather(1, logits.argmax(1, keepdim=True)).sum()
    t2v_correct = positives.gather(1, logits.t().argmax(1, keepdim=True)).sum()
    return 0.5 * (v2t + t2v), v2t_correct, t2v_correct


@register_criterion(NAME, dataclass=SignContrastiveCECriterionConfig)
class SignContrastiveCECriterion(EncoderAuxiliaryLoss, LabelSmoothedCrossEntropyCriterion):
    """``label_smoothed_cross_entropy`` + ``contrastive_weight`` x symmetric visual-text InfoNCE."""

    def __init__(
        self,
        task,
        sentence_avg,
        label_smoothing,
        ignore_prefix_size=0,
        report_accuracy=False,
        contrastive_weight=0.0,
        contrastive_init_temperature=None,
        contrastive_visual=None,
        contrastive_only_updates=0,
        batch_size=None,
    ):
        super().__init__(task, sentence_avg, label_smoothing, ignore_prefix_size, report_accuracy)
        if contrastive_weight < 0:
            raise ValueError(f"--contrastive-weight {contrastive_weight}: must be >= 0 (0 = the paper's loss)")
        if contrastive_weight == 0:
            for flag, value in (("--contrastive-init-temperature", contrastive_init_temperature),
                                ("--contrastive-visual", contrastive_visual),
                                ("--contrastive-only-updates", contrastive_only_updates or None)):
                if value is not None:
                    raise ValueError(f"{flag} acts only with --contrastive-weight > 0: set a weight or drop {flag}")
        temperature = DEFAULT_TEMPERATURE if contrastive_init_temperature is None else contrastive_init_temperature
        if temperature <= 0:
            raise ValueError(f"--contrastive-init-temperature {temperature}: must be > 0 (CLIP: {DEFAULT_TEMPERATURE})")
        if contrastive_weight > 0 and isinstance(batch_size, int) and batch_size == 1:
            raise ValueError(
                "--batch-size 1 with --contrastive-weight > 0: every batch holds one video, which has no in-batch "
                "negative, so the contrastive loss would never act: use --batch-size 2 or more (or weight 0)"
            )
        if contrastive_only_updates < 0:
            raise ValueError(f"--contrastive-only-updates {contrastive_only_updates}: must be >= 0")
        self.contrastive_weight = contrastive_weight
        self.name, self.loss_name, self.aux_only_updates = NAME, "the contrastive loss", contrastive_only_updates
        self.weight_flag, self.visual_flag, self.warmup_flag = (
            "--contrastive-weight", "--contrastive-visual", "--contrastive-only-updates")
        self.visual_key = VISUAL_SOURCES[str(contrastive_visual or "encoder_out")]
        tgt_dict = task.target_dictionary
        self.nspecial = tgt_dict.nspecial
        self.lang_tag_idx = getattr(task, "lang_tag_idx", None)
        # no parameter (and no 'criterion' entry in checkpoints) unless the loss is on
        scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature))) if contrastive_weight > 0 else None
        self.register_parameter("logit_scale", scale)

    # ------------------------------------------------------------------ loss
    def forward(self, model, sample, reduce=True):
        if self.contrastive_weight == 0:
            return super().forward(model, sample, reduce=reduce)
        loss, sample_size, logging_output, encoder_out, embed_tokens = self.cross_entropy_and_encoder_out(
            model, sample, reduce)
        visual = masked_mean(*self.encoder_states(encoder_out, type(model).__name__))
        text = self.pooled_text(embed_tokens, sample["target"])
        if visual.size(-1) != text.size(-1):
            raise ValueError(
                f"{NAME}: the pooled visual representation has width {visual.size(-1)} but the target token "
                f"embeddings {text.size(-1)}: the cosine similarity needs one width (give the encoder and "
                "decoder the same embedding dim, or use --contrastive-weight 0)"
            )
        bsz = visual.size(0)
        if bsz < 2:  # no negative: 0, but the logit scale stays in the graph (DDP expects its gradient)
            loss = loss + 0.0 * self.logit_scale.sum()
            logging_output.update(loss=loss.data, ncontrastive=0)
            return loss, sample_size, logging_output
        target = sample["target"]
        positives = (target.unsqueeze(1) == target.unsqueeze(0)).all(-1)  # same sentence
        per_item, v2t_correct, t2v_correct = symmetric_info_nce(visual, text, positives, self.logit_scale)
        loss = loss + self.contrastive_weight * sample_size * per_item.mean()
        scale = self.logit_scale.detach().float().clamp(max=math.log(MAX_LOGIT_SCALE)).exp()
        logging_output.update(
            loss=loss.data,
            contrastive_loss=per_item.sum().data,
            ncontrastive=bsz,
            contrastive_v2t_correct=v2t_correct.data,  # tensors: no device sync before the log interval
            contrastive_t2v_correct=t2v_correct.data,
            contrastive_scale=scale * bsz,
        )
        return loss, sample_size, logging_output

    def pooled_text(self, embed_tokens: nn.Embedding, target: torch.Tensor) -> torch.Tensor:
        """Mean of the target token embeddings over the content tokens (B x C)."""
        content = target.ge(self.nspecial)  # not <s>, <pad>, </s>, <unk>
        if self.lang_tag_idx is not None:
            content &= target.ne(self.lang_tag_idx)
        return masked_mean(embed_tokens(target), content)

    # --------------------------------------------------------------- metrics
    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        n = utils.item(sum(log.get("ncontrastive", 0) for log in logging_outputs))
        if n == 0:
            return

        def total(key):
            return sum(log.get(key, 0) for log in logging_outputs)

        metrics.log_scalar("contrastive_loss", total("contrastive_loss") / n / math.log(2), n, round=3)
        for direction in ("v2t", "t2v"):
            correct = utils.item(total(f"contrastive_{direction}_correct"))
            metrics.log_scalar(f"contrastive_{direction}_acc", 100.0 * correct / n, n, round=2)
        metrics.log_scalar("contrastive_scale", total("contrastive_scale") / n, n, round=2)
