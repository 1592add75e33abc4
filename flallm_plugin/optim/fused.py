"""One pass over the gradients after the backward: fairseq's gradient scaling and clipping folded into
torch's fused optimizer kernels.

After the backward fairseq's Trainer multiplies every gradient by ``world_size / sample_size``
(``multiply_grads``), takes their norm (``clip_grad_norm``, also without ``--clip-norm``, for its ``gnorm``
log), multiplies them again by the clipping coefficient, then steps the optimizer: four passes over the
gradients before the step's own. fairseq's fp16 optimizers keep that product as one pending factor
(``_multiply_factor``) and hand it to an optimizer that divides its gradients inside the step
(``supports_step_with_scale``, as apex's FusedAdam). :class:`LazyGradMultiply` does the same for
``param_group_adam`` and ``param_group_sgd`` in fp32: ``multiply_grads`` and the clipping only update the
factor (the norm is taken once, of the gradients as they are, times the factor), and the step gives it to
torch's fused kernels (``fused=True``: one vectorised pass per parameter on CPUs, one multi-tensor kernel per
chunk on GPUs) as their ``grad_scale``.

:class:`FusedAdam` is fairseq's Adam formula (decoupled weight decay, ``eps`` added to the root of the
uncorrected second moment, fp32 state, ``step`` an int) on ``torch._fused_adamw_``: torch's kernel adds
``eps`` after dividing by ``sqrt(1 - beta2 ** step)``, so it is given ``eps / sqrt(1 - beta2 ** step)``,
the same number. Parameters the kernel cannot take as fairseq would (fp16/bf16, whose Adam state fairseq
keeps in fp32; devices without fused kernels) are divided by the scale and stepped by
:class:`~flallm_plugin.optim.foreach.ForeachAdam`.
"""
import math

import torch
from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

from flallm_plugin.optim.foreach import ForeachAdam, is_one, scale_on


def fused_device(device: torch.device) -> bool:
    return device.type in _get_fused_kernels_supported_devices()


class FusedAdam(ForeachAdam):
    """fairseq's Adam whose step divides the gradients by ``scale`` (a float or a 0-dim tensor) on the way."""

    @torch.no_grad()
    def step(self, closure=None, scale=1.0):
        return self._step(closure, scale)

    def _update_bucket(self, group, key, bucket, scale):
        device, dtype, step = key
        if dtype != torch.float32 or not fused_device(device):
            return super()._update_bucket(group, key, bucket, scale)
        params, _, grads, exp_avgs, exp_avg_sqs, max_sqs = bucket
        amsgrad = group.get("amsgrad", False)
        beta1, beta2 = group["betas"]
        torch._fused_adamw_(
            params, grads, exp_avgs, exp_avg_sqs, max_sqs if amsgrad else [],
            list(torch.full((len(params),), float(step), device=device).unbind()),
            lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
            eps=group["eps"] / math.sqrt(1 - beta2 ** step), amsgrad=amsgrad, maximize=False,
            grad_scale=None if is_one(scale) else scale_on(scale, device), found_inf=None)


class FusedSGD(torch.optim.SGD):
    """torch's SGD with ``fused=True`` whose step divides the gradients by ``scale`` (torch's own
    ``grad_scale`` protocol, as ``torch.amp.GradScaler`` uses it); a checkpoint of an unfused SGD loads
    into it and stays fused."""

    def __init__(self, params, **kwargs):
        params = list(params)
        if params and isinstance(params[0], dict):  # groups another SGD has seen carry its fused/foreach flags
            params = [{k: v for k, v in g.items() if k not in ("fused", "foreach")} for g in params]
        super().__init__(params, fused=True, **kwargs)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["fused"], group["foreach"] = True, None

    def step(self, closure=None, scale=1.0):
        if not is_one(scale):
            self.grad_scale = scale_on(scale, self.param_groups[0]["params"][0].device)
        try:
            return super().step(closure)
        finally:
            self.__dict__.pop("grad_scale", None)


class LazyGradMultiply(object):
    """Mixin for a fairseq optimizer whose inner optimizer's ``step`` takes ``scale`` (fused kernels):
    ``multiply_grads`` and ``clip_grad_norm`` keep a pending factor (as fairseq's fp16 optimizers do) that
    ``step`` passes on. Subclasses set ``self.lazy_grad_multiply``; when it is False nothing changes."""

    lazy_grad_multiply = False
    _multiply_factor = 1.0

    @property
    def supports_step_with_scale(self):
        return self.lazy_grad_multiply

    def multiply_grads(self, c):
        if not self.lazy_grad_multiply:
            return super().multiply_grads(c)
        self._multiply_factor = self._multiply_factor * c

    def clip_grad_norm(self, max_norm, aggregate_norm_fn=None):
        if not self.lazy_grad_multiply:
            return super().clip_grad_norm(max_norm, aggregate_norm_fn)
        # fairseq's clip_grad_norm_ arithmetic on the gradients times the pending factor
        grad_norm = self._multiply_factor * super().clip_grad_norm(0, aggregate_norm_fn)
        if max_norm > 0:
            self._multiply_factor = self._multiply_factor * (float(max_norm) / (grad_norm + 1e-6)).clamp_(max=1)
        return grad_norm

    def step(self, closure=None, scale=1.0, groups=None):
        if self.lazy_grad_multiply:
            scale = scale / self._multiply_factor
            self._multiply_factor = 1.0
        return super().step(closure, scale=scale, groups=groups)

    def zero_grad(self):
        super().zero_grad()
        self._multiply_factor = 1.0
