"""param_group_adam's multi-tensor step and clipping (flallm_plugin/optim/foreach.py) give fairseq's
``--optimizer adam`` results: the same losses and parameters after several updates through fairseq's
Trainer, and the same step / clipping arithmetic on fp16 parameters, AMSGrad, weight decay and
parameters without gradients. The step tests put their tensors on ``helpers.TEST_DEVICE`` (FLALLM_TEST_DEVICE=cuda
on a GPU machine, benchmarks/device_run.sh: torch's fused and multi-tensor kernels there are other code)."""
import sys
import tempfile

import pytest
import torch
from fairseq import metrics, utils
from fairseq.optim.adam import Adam as FairseqAdamAlgorithm

from flallm_plugin.optim.foreach import ForeachAdam, foreach_clip_grad_norm_
from flallm_plugin.optim.fused import FusedAdam, FusedSGD
from helpers import REPO, TEST_DEVICE

sys.path.insert(0, str(REPO / "benchmarks"))
import update_overhead  # noqa: E402


@pytest.fixture
def one_thread():
    """One intra-op thread: a CPU convolution's backward with several threads sums in an order that varies from
    run to run, and Adam's normalised step turns those last-bit differences into visible ones in two runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(optimizer, updates, extra, gnorms=None):
    with tempfile.TemporaryDirectory() as d:
        update_overhead.write_data_dir(d, 32)
        task, model, _, trainer = update_overhead.build_trainer(d, optimizer, extra=extra)
        items = update_overhead.make_items(task, 2, 3, 32, 6, seed=3)
        sample = update_overhead.make_dataset(task, d, items).collater(items)
    losses = []
    for _ in range(updates):
        with metrics.aggregate(new_root=True) as agg:
            losses.append(float(trainer.train_step([sample])["loss"]))
        if gnorms is not None:
            gnorms.append(agg.get_smoothed_value("gnorm"))
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}, trainer


def test_param_group_adam_trains_as_fairseq_adam(one_thread):
    extra = ["--weight-decay", "0.01", "--clip-norm", "0.5"]
    ref_gnorms, gnorms = [], []
    ref_losses, ref_params, ref = _train("adam", 4, extra, ref_gnorms)
    losses, params, ours = _train("param_group_adam", 4, extra, gnorms)
    assert type(ref.optimizer.optimizer) is FairseqAdamAlgorithm
    # the fused step, with the Trainer's multiply and clipping folded into it
    assert type(ours.optimizer.optimizer) is FusedAdam and ours.optimizer.supports_step_with_scale
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    assert gnorms == pytest.approx(ref_gnorms, rel=1e-5)  # fairseq's gnorm: of the gradients / sample size
    assert min(ref_gnorms) > 0.5  # so --clip-norm 0.5 clipped every update
    assert len(set(ref_losses)) == 4  # the parameters moved
    for k in ref_params:
        # Adam moves every parameter by about lr (1e-3) whatever its gradient's size: a last-bit difference
        # in a near-zero gradient (the fused kernel rounds differently) shows up to ~lr / 10 after 4 updates
        # (in ~1e-4 of the elements); the step arithmetic itself is checked to 1e-6 in the test below
        torch.testing.assert_close(params[k], ref_params[k], rtol=1e-5, atol=1e-4, msg=k)
    _, old_params, old = _train("param_group_adam", 4, extra + ["--use-old-adam"])
    assert type(old.optimizer.optimizer) is FairseqAdamAlgorithm and not old.optimizer.supports_step_with_scale
    for k in ref_params:
        torch.testing.assert_close(old_params[k], ref_params[k], rtol=1e-5, atol=1e-6, msg=k)
    # the state is fairseq's: a checkpoint of one loads into the other
    fresh = FairseqAdamAlgorithm([{"params": g["params"]} for g in ours.optimizer.param_groups])
    fresh.load_state_dict(ours.optimizer.optimizer.state_dict())
    state = fresh.state[next(iter(ours.model.parameters()))]
    assert state["step"] == 4 and set(state) == {"step", "exp_avg", "exp_avg_sq"}


def _params(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(s, generator=g).to(TEST_DEVICE, dtype)) for s in ((3, 4), (5,), (2, 2, 2), (7,))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_foreach_adam_step_is_fairseq_adam_step(dtype, amsgrad):
    ref, ours = _params(dtype), _params(dtype)
    kw = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1, amsgrad=amsgrad)
    opt_ref = FairseqAdamAlgorithm([{"params": ref[:2]}, {"params": ref[2:], "lr": 3e-3}], **kw)
    opt = ForeachAdam([{"params": ours[:2]}, {"params": ours[2:], "lr": 3e-3}], **kw)
    g = torch.Generator().manual_seed(1)
    for step in range(5):
        for i, (a, b) in enumerate(zip(ref, ours)):
            # the last parameter has no gradient at step 1: its step count falls behind the others'
            grad = None if (i == 3 and step == 1) else torch.randn(a.shape, generator=g).to(TEST_DEVICE, dtype)
            a.grad, b.grad = grad, None if grad is None else grad.clone()
        opt_ref.step()
        opt.step()
    assert opt.state[ours[3]]["step"] == 4 and opt.state[ours[0]]["step"] == 5
    for a, b in zip(ref, ours):
        if TEST_DEVICE == "cpu":
            torch.testing.assert_close(b, a, rtol=0, atol=0)  # operator for operator: the same bits on a CPU
        else:  # a GPU's multi-tensor kernels may contract a * b + c into one rounding (FMA)
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6 if dtype == torch.float32 else 1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("scale", [1.0, 4.0, "tensor"])
def test_fused_adam_step_is_fairseq_adam_step_of_the_scaled_gradients(dtype, amsgrad, scale):
    """The step with the Trainer's pending factor: fairseq's Adam on gradients / scale. eps is large enough
    here for a wrong scale or a wrong eps (torch's kernel adds it after the bias correction) to show."""
    ref, ours = _params(dtype), _params(dtype)
    kw = dict(lr=1e-2, betas=(0.9, 0.98), eps=1e-2, weight_decay=0.1, amsgrad=amsgrad)
    opt_ref = FairseqAdamAlgorithm([{"params": ref[:2]}, {"params": ref[2:], "lr": 3e-3}], **kw)
    opt = FusedAdam([{"params": ours[:2]}, {"params": ours[2:], "lr": 3e-3}], **kw)
    s = torch.tensor(4.0, device=TEST_DEVICE) if scale == "tensor" else scale
    g = torch.Generator().manual_seed(1)
    for step in range(5):
        for i, (a, b) in enumerate(zip(ref, ours)):
            grad = None if (i == 3 and step == 1) else torch.randn(a.shape, generator=g).to(TEST_DEVICE, dtype)
            a.grad, b.grad = None if grad is None else (grad.float() / float(s)).to(dtype), grad
        opt_ref.step()
        opt.step(scale=s)
    assert opt.state[ours[3]]["step"] == 4 and opt.state[ours[0]]["step"] == 5
    for a, b in zip(ref, ours):
        if dtype == torch.float16:  # fp16 parameters: divided, then ForeachAdam's step (fairseq's, bit for bit)
            torch.testing.assert_close(b, a, rtol=0, atol=0 if scale == 1.0 and TEST_DEVICE == "cpu" else 1e-3)
        else:  # torch's fused kernel: the same formula, rounded differently
            torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_fused_sgd_keeps_fused_and_its_state_after_loading_an_unfused_checkpoint():
    ps = _params(torch.float32)
    plain = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
    for p in ps:
        p.grad = torch.ones_like(p)
    plain.step()
    fused = FusedSGD(ps, lr=0.1, momentum=0.9)
    fused.load_state_dict(plain.state_dict())
    assert all(g["fused"] for g in fused.param_groups)
    torch.testing.assert_close(fused.state[ps[0]]["momentum_buffer"], torch.ones_like(ps[0]))
    before = ps[0].detach().clone()
    fused.step(scale=2.0)  # gradients / 2: the momentum buffer becomes 0.9 + 0.5
    torch.testing.assert_close(ps[0].detach(), before - 0.1 * 1.4)


def test_foreach_adam_is_a_few_operators_per_group():
    params = [torch.nn.Parameter(torch.randn(4)) for _ in range(40)]
    for p in params:
        p.grad = torch.randn(4)
    opt = ForeachAdam(params, lr=1e-3)
    opt.step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        opt.step()
    top = [e.name for e in prof.events() if e.cpu_parent is None and e.name.startswith("aten::")]
    assert len(top) <= 10, top  # fairseq's Adam: ~8 per parameter (320 here)


@pytest.mark.parametrize("max_norm", [0.0, 0.5, 1e6])
def test_foreach_clip_is_fairseq_clip(max_norm):
    ref = _params(torch.float32) + [torch.nn.Parameter(torch.randn(6).to(TEST_DEVICE, torch.float16))]
    ours = [torch.nn.Parameter(p.detach().clone()) for p in ref]
    g = torch.Generator().manual_seed(2)
    for a, b in zip(ref, ours):
        a.grad = torch.randn(a.shape, generator=g).to(TEST_DEVICE, a.dtype)
        b.grad = a.grad.clone()
    ref[1].grad = ours[1].grad = None
    want = utils.clip_grad_norm_(ref, max_norm)
    got = foreach_clip_grad_norm_(ours, max_norm)
    torch.testing.assert_close(got, want)
    for a, b in zip(ref, ours):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad)
    single = torch.nn.Parameter(torch.ones(3))
    single.grad = torch.full((3,), 2.0)
    torch.testing.assert_close(foreach_clip_grad_norm_([single], 0.0), torch.tensor(12.0).sqrt())
    assert float(foreach_clip_grad_norm_([torch.nn.Parameter(torch.ones(2))], 1.0)) == 0.0


def test_param_group_sgd_trains_as_fairseq_sgd(one_thread):
    extra = ["--momentum", "0.9", "--weight-decay", "1e-4", "--clip-norm", "0.5"]
    ref_losses, ref_params, ref = _train("sgd", 4, extra)
    losses, params, ours = _train("param_group_sgd", 4, extra)
    assert type(ours.optimizer.optimizer) is FusedSGD and ours.optimizer.supports_step_with_scale
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    assert len(set(ref_losses)) == 4  # the parameters moved
    for k in ref_params:
        torch.testing.assert_close(params[k], ref_params[k], rtol=1e-5, atol=1e-6, msg=k)
    # a group with its own peak lr follows the scheduler's base lr at its ratio
    _, _, grouped = _train("param_group_sgd", 1, extra + ["--group-lr", '{"visual": 1e-4}'])
    lrs = {g["group"]: g["lr"] for g in grouped.optimizer.param_groups}
    base = grouped.optimizer.get_lr()
    assert lrs["visual"] == pytest.approx(1e-4 / grouped.cfg.optimization.lr[0] * base) and lrs["default"] == base
