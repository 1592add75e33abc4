"""Per-module gradient norms are logged unscaled under --amp (torch GradScaler) and --fp16."""
from types import SimpleNamespace

import pytest
import torch
from fairseq import metrics
from fairseq.optim.dynamic_loss_scaler import DynamicLossScaler

from flallm_plugin.tasks.grad_norms import grad_norms, log_grad_norms, loss_scale


class TwoPart(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.visual = torch.nn.Linear(5, 4)
        self.translator = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.translator(torch.relu(self.visual(x)))

    def grad_norm_groups(self):
        return {"visual": list(self.visual.parameters()), "translator": list(self.translator.parameters())}


def _reference_norms(sample_size):
    model = TwoPart()
    model(torch.ones(2, 5)).pow(2).sum().backward()
    return {
        name: torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ps])) / sample_size
        for name, ps in model.grad_norm_groups().items()
    }


@pytest.mark.parametrize("kind", ["amp", "fp16"])
def test_grad_norms_are_unscaled(kind):
    sample_size = 6
    expected = _reference_norms(sample_size)
    model = TwoPart()
    loss = model(torch.ones(2, 5)).pow(2).sum()
    if kind == "amp":  # what fairseq's AMPOptimizer.scaler is: a torch GradScaler
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        scaler.scale(loss).backward()
        assert scaler.get_scale() == 1024.0
    else:  # FP16Optimizer.scaler: fairseq's DynamicLossScaler
        scaler = DynamicLossScaler(init_scale=128.0)
        scaler.scale(loss).backward()
    optimizer = SimpleNamespace(scaler=scaler)  # the attribute fairseq's optimizer wrappers expose
    got = grad_norms(model, optimizer, sample_size)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=0)
    with metrics.aggregate() as agg:
        log_grad_norms(model, optimizer, sample_size)
    logged = agg.get_smoothed_values()
    for name in expected:
        assert logged[f"gnorm_{name}"] == pytest.approx(float(expected[name]), rel=1e-4)


def test_no_scaler_means_scale_one():
    model = TwoPart()
    model(torch.ones(2, 5)).pow(2).sum().backward()
    expected = _reference_norms(1)
    got = grad_norms(model, SimpleNamespace(), 1)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])


def _per_parameter_norms(model, scale, sample_size):
    """The implementation before the foreach one: one norm per parameter, the scale read as a float."""
    out = {}
    for name, ps in model.grad_norm_groups().items():
        grads = [p.grad.detach().float() for p in ps if p.grad is not None]
        out[name] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])) / (
            scale * max(float(sample_size), 1.0))
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_foreach_norms_match_per_parameter_norms_one_kernel_per_group(dtype):
    model = TwoPart().to(dtype)
    scaler = torch.amp.GradScaler("cpu", init_scale=64.0)
    scaler.scale(model(torch.ones(2, 5, dtype=dtype)).float().pow(2).sum()).backward()
    expected = _per_parameter_norms(model, 64.0, 5)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        got = grad_norms(model, SimpleNamespace(scaler=scaler), 5)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=0)
    top = [e.name for e in prof.events() if e.cpu_parent is None]  # operators called from Python
    groups = len(model.grad_norm_groups())
    assert top.count("aten::_foreach_norm") == groups
    assert top.count("aten::linalg_vector_norm") == groups  # the norm of each group's stacked norms only


def test_amp_scale_is_read_without_a_host_copy():
    """Under --amp the loss scale is the scaler's own tensor (get_scale() would be a device sync per update)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=32.0)
    opt = SimpleNamespace(scaler=scaler)
    assert loss_scale(opt) == 32.0  # nothing scaled yet: the initial scale
    scaler.scale(torch.ones(()))
    got = loss_scale(opt)
    assert torch.is_tensor(got) and got is scaler._get_scale_async() and float(got) == 32.0
    assert loss_scale(SimpleNamespace(scaler=torch.amp.GradScaler("cpu", enabled=False))) == 1.0


def test_tensor_sample_size():
    model = TwoPart()
    model(torch.ones(2, 5)).pow(2).sum().backward()
    expected = _reference_norms(6)
    got = grad_norms(model, SimpleNamespace(), torch.tensor(6))
    for name in expected:
        torch.testing.assert_close(got[name], expected[name])
