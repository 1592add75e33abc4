"""Per-module gradient norms (the paper's Fig. 2: the LLM's gradients dwarf the visual encoder's).

Models that define ``grad_norm_groups()`` (name -> parameters) get ``gnorm_<name>`` logged
every update: the L2 norm of the group's gradients, unscaled (mixed precision multiplies
gradients by the loss scale until the optimizer step) and per sample-size unit.

Per update this costs one ``torch._foreach_norm`` per group (one multi-tensor kernel on a GPU,
not one per parameter) and never waits for the device: the norms stay tensors until fairseq's
log interval, and the ``--amp`` loss scale is read as the scaler's tensor (``GradScaler.get_scale``
would copy it to the host, a device synchronisation every update).
"""
from typing import Dict, Union

import torch
from fairseq import metrics

GRAD_NORMS_REGION = "flallm grad norms"  # its torch.profiler range (benchmarks/update_overhead.py)


def loss_scale(optimizer) -> Union[float, torch.Tensor]:
    """The factor the gradients currently carry: torch's ``GradScaler`` (``--amp``; its scale
    tensor, on the device, once it has scaled a loss), fairseq's ``DynamicLossScaler``
    (``--fp16``), or 1."""
    scaler = getattr(optimizer, "scaler", None)
    if scaler is None:
        return 1.0
    if hasattr(scaler, "get_scale"):  # torch.amp.GradScaler (fairseq's AMPOptimizer)
        if not scaler.is_enabled():
            return 1.0
        # get_scale() is this tensor's .item() (or the initial scale before the first scale() call)
        scale = scaler._get_scale_async()
        return float(scaler.get_scale()) if scale is None else scale
    return float(scaler.loss_scale)  # fairseq.optim.DynamicLossScaler (FP16Optimizer)


def grad_norms(model, optimizer, sample_size) -> Dict[str, torch.Tensor]:
    """Unscaled gradient L2 norm of each of the model's ``grad_norm_groups()``, per sample-size unit."""
    groups_fn = getattr(model, "grad_norm_groups", None)
    if groups_fn is None:
        return {}
    if torch.is_tensor(sample_size):
        size = sample_size.detach().float().clamp(min=1.0)
    else:
        size = max(float(sample_size), 1.0)
    denom = loss_scale(optimizer) * size
    norms = {}
    with torch.no_grad():
        for name, params in groups_fn().items():
            grads = [p.grad for p in params if p.grad is not None]
            if grads:
                per_param = torch._foreach_norm(grads, 2, dtype=torch.float32)
                norms[name] = torch.linalg.vector_norm(torch.stack(per_param)) / denom
    return norms


def log_grad_norms(model, optimizer, sample_size):
    """Log ``gnorm_<group>`` as tensors: nothing synchronises with the device until the log interval."""
    for name, norm in grad_norms(model, optimizer, sample_size).items():
        metrics.log_scalar(f"gnorm_{name}", norm, weight=1, priority=900, round=6)
