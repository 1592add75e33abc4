"""Per-module gradient norms (the paper's Fig. 2: the LLM's gradients dwarf the visual encoder's).

Models that define ``grad_norm_groups()`` (name -> parameters) get ``gnorm_<name>`` logged
every update: the L2 norm of the group's gradients, unscaled (mixed precision multiplies
gradients by the loss scale until the optimizer step) and per sample-size unit.
"""
from typing import Dict

import torch
from fairseq import metrics

GRAD_NORMS_REGION = "flallm grad norms"  # its torch.profiler range (benchmarks/update_overhead.py)


def loss_scale(optimizer) -> float:
    """The factor the gradients currently carry: torch's ``GradScaler`` (``--amp``),
    fairseq's ``DynamicLossScaler`` (``--fp16``), or 1."""
    scaler = getattr(optimizer, "scaler", None)
    if scaler is None:
        return 1.0
    if hasattr(scaler, "get_scale"):  # torch.amp.GradScaler (fairseq's AMPOptimizer)
        return float(scaler.get_scale())
    return float(scaler.loss_scale)  # fairseq.optim.DynamicLossScaler (FP16Optimizer)


def grad_norms(model, optimizer, sample_size) -> Dict[str, torch.Tensor]:
    """Unscaled gradient L2 norm of each of the model's ``grad_norm_groups()``, per sample-size unit."""
    groups_fn = getattr(model, "grad_norm_groups", None)
    if groups_fn is None:
        return {}
    denom = loss_scale(optimizer) * max(float(sample_size), 1.0)
    norms = {}
    for name, params in groups_fn().items():
        grads = [p.grad.detach().float() for p in params if p.grad is not None]
        if grads:
            norms[name] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) / denom
    return norms


def log_grad_norms(model, optimizer, sample_size):
    """Log ``gnorm_<group>`` as tensors: nothing synchronises with the device until the log interval."""
    for name, norm in grad_norms(model, optimizer, sample_size).items():
        metrics.log_scalar(f"gnorm_{name}", norm, weight=1, priority=900, round=6)
