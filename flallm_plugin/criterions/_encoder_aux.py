"""What the criteria with an auxiliary loss on the encoder share (``sign_contrastive_ce``, ``sign_pseudo_gloss_ce``).

Both are fairseq's ``label_smoothed_cross_entropy`` plus a term computed from the encoder's output of the same
forward pass (captured by a forward hook, so the model and its checkpoint keys stay the paper's) and the model's
target token embeddings, with a warm-up whose first N updates train the auxiliary term alone. fairseq tells models
the update number, not criteria: the ``sign_translation`` task calls ``criterion.set_num_updates`` before each
training step (as fairseq's task calls ``model.set_num_updates``).
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn

# what an auxiliary loss can read: --contrastive-visual / --pseudo-gloss-visual choice -> fairseq encoder_out key
VISUAL_SOURCES = {"encoder_out": "encoder_out", "adapter": "encoder_embedding"}


class EncoderAuxiliaryLoss(object):
    """Mixin for a ``LabelSmoothedCrossEntropyCriterion`` subclass, which sets: ``name`` (its registered name),
    ``loss_name`` (e.g. "the contrastive loss"), ``weight_flag`` / ``visual_flag`` / ``warmup_flag`` (its
    options, for errors), ``visual_key`` (the encoder_out entry it reads) and ``aux_only_updates`` (N)."""

    name: str
    loss_name: str
    weight_flag: str
    visual_flag: str
    warmup_flag: str
    visual_key: str = "encoder_out"
    aux_only_updates: int = 0
    num_updates = None  # set by the task before every training step

    def set_num_updates(self, num_updates: int) -> None:
        """The trainer's update number (the sign_translation task calls this before each training step)."""
        self.num_updates = num_updates

    def auxiliary_only(self, model) -> bool:
        """Whether this forward trains the auxiliary loss alone (the first N training updates)."""
        if self.aux_only_updates == 0 or not model.training:
            return False
        if self.num_updates is None:
            raise ValueError(
                f"{self.name}: {self.warmup_flag} {self.aux_only_updates} needs the update number, which the "
                f"sign_translation task gives the criterion before each training step; this task did not: use "
                f"--task sign_translation or drop {self.warmup_flag}"
            )
        return self.num_updates < self.aux_only_updates

    def cross_entropy_and_encoder_out(self, model, sample, reduce: bool) -> Tuple:
        """(CE loss, sample size, logging output, the encoder's output dict, the target token embeddings) of one
        forward; during the warm-up the CE is multiplied by 0 (it stays in the graph: DDP expects every gradient)."""
        if not reduce:
            raise ValueError(f"{self.name}: {self.loss_name} is a loss over the batch and has no per-token value "
                             "(reduce=False): use label_smoothed_cross_entropy")
        encoder, embed_tokens = self.model_parts(model)
        captured = []
        handle = encoder.register_forward_hook(lambda module, inputs, output: captured.append(output))
        try:
            loss, sample_size, logging_output = super().forward(model, sample, reduce=reduce)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(f"{self.name}: {type(model).__name__}'s forward ran its encoder {len(captured)} times, "
                             f"not once: {self.loss_name} cannot tell which output belongs to the sentences")
        if self.auxiliary_only(model):
            loss = 0.0 * loss
        return loss, sample_size, logging_output, captured[0], embed_tokens

    def model_parts(self, model):
        """The model's encoder and target token embeddings, or a clear error."""
        encoder = getattr(model, "encoder", None)
        embed_tokens = getattr(getattr(model, "decoder", None), "embed_tokens", None)
        if not isinstance(encoder, nn.Module) or not isinstance(embed_tokens, nn.Embedding):
            raise ValueError(
                f"{self.name}: model {type(model).__name__} has no encoder module and decoder.embed_tokens "
                f"embedding; {self.weight_flag} needs an encoder-decoder such as --arch light_t* or sign_mbart* "
                f"(or use {self.weight_flag} 0)"
            )
        return encoder, embed_tokens

    def encoder_states(self, encoder_out: Dict, model_name: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B x T x C states, B x T valid mask) of the encoder output entry ``visual_key``."""
        states = encoder_out.get(self.visual_key) if isinstance(encoder_out, dict) else None
        if not states or not torch.is_tensor(states[0]) or states[0].dim() != 3:
            raise ValueError(
                f"{self.name}: {model_name}'s encoder output has no {self.visual_key!r} tensor (fairseq's encoder_out "
                f"dict); choose another {self.visual_flag} or model (or use {self.weight_flag} 0)"
            )
        x = states[0]
        if self.visual_key == "encoder_out":
            x = x.transpose(0, 1)  # T x B x C -> B x T x C
        masks = encoder_out.get("encoder_padding_mask") or []
        valid = ~masks[0] if masks else x.new_ones(x.shape[:2], dtype=torch.bool)
        if valid.shape != x.shape[:2]:
            raise ValueError(f"{self.name}: {model_name}'s encoder_padding_mask has shape {tuple(valid.shape)}, "
                             f"its {self.visual_key!r} B x T is {tuple(x.shape[:2])}")
        return x, valid

    def load_state_dict(self, state_dict, strict=True, **kwargs):
        """A checkpoint trained without the auxiliary loss has no criterion state (fairseq saves ``None``): the
        criterion's parameters then start from their initial values."""
        if state_dict is None and any(True for _ in self.parameters()):
            return None
        return super().load_state_dict(state_dict, strict=strict, **kwargs)
