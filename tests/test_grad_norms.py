"""Per-module gradient norms are logged unscaled under --amp (torch GradScaler) and --fp16."""
from types import SimpleNamespace

import pytest
import torch
from fairseq import metrics
from fairseq.optim.dynamic_loss_scaler import DynamicLossScaler

from flallm_plugin.tasks.grad_norms import grad_norms, log_grad_norms


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
