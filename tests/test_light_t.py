"""Stage 1 (Light-T): overfitting through the fairseq CLIs, decoding, batching, padding,
parameter counts, checkpoint safety and ResNet-18 weight loading.

The overfit run uses the paper's optimiser recipe (SGD, lr 1e-2, momentum 0.9, cosine
schedule) for 80 updates (40 epochs of the 6-sentence fixture), without augmentation,
with a word-level sentencepiece model (one token per word): a few seconds of CPU time.
The CLI timings close pytest's report; run with ``-s`` to see the parameter-count table.
"""
import json
import math
import os
import struct
import sys
from argparse import Namespace
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

import flallm_plugin  # noqa: F401  (registers the task/models, allowlists checkpoint classes)
from fairseq import checkpoint_utils, options, tasks
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
from flallm_plugin.checkpoint_safety import UnsafeCheckpointError, safe_torch_load
from flallm_plugin.models.light_t import PAPER_PARAMS
from flallm_plugin.models.visual_encoder import VisualEncoder, build_resnet18, lengths_to_mask, load_resnet18_weights
from flallm_plugin.scoring.generate_output import parse_generate_lines
from helpers import USER_DIR, run
from prep_phoenix14t import main as prep_phoenix

GNORM_KEYS = ("gnorm_backbone", "gnorm_temporal", "gnorm_adapter", "gnorm_translator")
EPOCHS, UPDATES = 40, 80  # 6 sentences, batch 4 -> 2 updates per epoch
TRAIN_ARGS = [
    "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny",
    "--visual-backbone-weights", "none",
    "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
    "--optimizer", "sgd", "--momentum", "0.9", "--lr", "1e-2", "--lr-scheduler", "cosine",
    "--max-update", str(UPDATES), "--max-epoch", str(EPOCHS),
    "--batch-size", "4", "--required-batch-size-multiple", "1", "--no-augment", "--seed", "1",
    "--cpu", "--num-workers", "0", "--disable-validation",
    "--no-epoch-checkpoints", "--save-interval", str(EPOCHS),
    "--log-format", "json", "--log-interval", "1",
]
GEN_ARGS = [
    "--user-dir", USER_DIR, "--task", "sign_translation", "--gen-subset", "train",
    "--batch-size", "4", "--required-batch-size-multiple", "1", "--cpu", "--num-workers", "0",
    # a train split gets train-time augmentation unless told otherwise
    "--no-augment",
]


# ---------------------------------------------------------------------------- helpers
def json_log(text, tag):
    """The JSON stats of ``| tag | {...}`` log lines."""
    out = []
    for line in text.splitlines():
        marker = f"| {tag} | "
        if marker in line:
            payload = line.split(marker, 1)[1]
            if payload.startswith("{"):
                out.append(json.loads(payload))
    return out


def parse_generate(text):
    """fairseq-generate output -> {id: target}, {id: [(score, detok hypothesis), ...]}."""
    samples = parse_generate_lines(text.splitlines(), "fairseq-generate output")
    targets = {i: s.reference for i, s in samples.items() if s.reference is not None}
    hyps = {i: [(h.score, h.text) for h in s.detokenized] for i, s in samples.items() if s.detokenized}
    return targets, hyps


def count_h_lines(text):
    samples = parse_generate_lines(text.splitlines(), "fairseq-generate output")
    return {i: len(s.tokenized) for i, s in samples.items() if s.tokenized}


def read_event_scalars(path):
    """Scalars of a TensorBoard event file (TFRecord framing: len u64, crc u32, data, crc u32)."""
    from tensorboardX.proto import event_pb2

    data = Path(path).read_bytes()
    scalars, pos = defaultdict(list), 0
    while pos + 12 <= len(data):
        (n,) = struct.unpack("<Q", data[pos : pos + 8])
        pos += 12
        event = event_pb2.Event.FromString(data[pos : pos + n])
        pos += n + 4
        for v in event.summary.value:
            scalars[v.tag].append(v.simple_value)
    return dict(scalars)


def build_task_and_model(data, arch="light_t_tiny", extra=(), meta=False, seed=0):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(
        parser,
        [str(data), "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", arch,
         "--visual-backbone-weights", "none", "--cpu", *extra],
    )
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    torch.manual_seed(seed)
    if meta:
        with torch.device("meta"):
            model = task.build_model(cfg.model)
    else:
        model = task.build_model(cfg.model)
    return task, model


def random_videos(lengths, size=28, seed=0, pad_value=None):
    """Padded uint8 batch B x T x H x W x 3; padding is 0, or ``pad_value`` (garbage) if given."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    src = torch.randint(0, 256, (len(lengths), T, size, size, 3), generator=g, dtype=torch.uint8)
    mask = lengths_to_mask(torch.tensor(lengths), T)
    src[~mask] = 0 if pad_value is None else pad_value
    return src, torch.tensor(lengths)


def closed_form_lengths(lengths, spec, padding):
    out = []
    for n in lengths:
        for tok in spec.split(","):
            k = int(tok[1:])
            if tok[0] == "K":
                n = n if padding == "same" else n - k + 1
            else:
                n = n // k
        out.append(n)
    return out


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data_dir(phoenix_release, tmp_path_factory):
    data = tmp_path_factory.mktemp("light_t_data") / "data"
    # word-level sentencepiece: one token per word keeps the beam search of a 6-sentence
    # model well-posed (character pieces let short junk hypotheses fill the beam)
    prep_phoenix(["--data-root", phoenix_release, "--out-dir", str(data), "--resize", "32", "--crop", "28",
                  "--vocab-size", "100", "--spm-type", "word", "--workers", "1"])
    return data


@pytest.fixture(scope="module")
def overfit(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("light_t_run")
    save_dir, tb = root / "ckpt", root / "tb"
    proc = run(["fairseq-train", data_dir, *TRAIN_ARGS, "--save-dir", save_dir, "--tensorboard-logdir", tb],
               timeout=300, label=f"overfit fairseq-train ({UPDATES} updates + checkpoint)")
    return SimpleNamespace(data=data_dir, ckpt=save_dir / "checkpoint_last.pt", tb=tb, log=proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def beam5(overfit):
    proc = run(["fairseq-generate", overfit.data, *GEN_ARGS, "--path", overfit.ckpt, "--beam", "5", "--nbest", "3"],
               timeout=300, label="fairseq-generate beam 5 nbest 3")
    return proc.stdout


# ----------------------------------------------------------------------- overfit (CLI)
def test_overfit_loss_goes_down_and_gnorms_logged(overfit):
    epochs = json_log(overfit.log, "train")
    assert [e["epoch"] for e in epochs] == list(range(1, EPOCHS + 1)), overfit.log[-2000:]
    first, last = float(epochs[0]["train_loss"]), float(epochs[-1]["train_loss"])
    print(f"\n[overfit] train loss (base 2, label smoothing 0.1): epoch 1 {first:.3f} -> epoch {EPOCHS} {last:.3f}")
    assert last < 0.5 * first and first - last > 1.5, (first, last)
    assert int(epochs[-1]["train_num_updates"]) == UPDATES
    # per-module gradient norms, in the epoch summaries and in every train_inner line
    inner = json_log(overfit.log, "train_inner")
    assert len(inner) >= UPDATES // 2
    for key in GNORM_KEYS:
        for stats, name in [(epochs[-1], f"train_{key}"), (inner[-1], key), (inner[0], key)]:
            assert name in stats, f"{name} missing from {sorted(stats)}"
            v = float(stats[name])
            assert math.isfinite(v) and v > 0, (name, v)


def test_overfit_tensorboard_receives_gnorms(overfit):
    for sub in ("train", "train_inner"):
        files = list((overfit.tb / sub).glob("events.out.tfevents.*"))
        assert files, f"no event file under {overfit.tb / sub}"
        scalars = {}
        for f in files:
            assert b"gnorm_backbone" in f.read_bytes()
            scalars.update(read_event_scalars(f))
        for key in GNORM_KEYS + ("loss",):
            assert key in scalars, f"{sub}: tag {key} not in {sorted(scalars)}"
            assert all(math.isfinite(v) for v in scalars[key])
        assert all(v > 0 for key in GNORM_KEYS for v in scalars[key])
        if sub == "train_inner":
            assert len(scalars["gnorm_translator"]) == UPDATES


def test_overfit_beam5_decodes_training_sentences(beam5):
    targets, hyps = parse_generate(beam5)
    assert len(targets) == 6
    exact = sum(hyps[i][0][1] == t for i, t in targets.items())
    print(f"\n[overfit] beam 5: {exact}/{len(targets)} training sentences decoded exactly")
    for i, t in sorted(targets.items()):
        print(f"  T-{i} {t!r:28} D-{i} {hyps[i][0][1]!r}")
    assert exact >= 0.9 * len(targets)


def test_beam5_returns_nbest_hypotheses(beam5):
    targets, hyps = parse_generate(beam5)
    assert count_h_lines(beam5) == {i: 3 for i in targets}
    for i, hs in hyps.items():
        scores = [s for s, _ in hs]
        assert len(hs) == 3 and scores == sorted(scores, reverse=True), hs
        assert len({h for _, h in hs}) == 3, f"duplicate hypotheses for {i}: {hs}"


def test_greedy_returns_one_hypothesis_and_decodes(overfit):
    out = run(["fairseq-generate", overfit.data, *GEN_ARGS, "--path", overfit.ckpt, "--beam", "1", "--nbest", "1"],
              timeout=300, label="fairseq-generate greedy").stdout
    targets, hyps = parse_generate(out)
    assert len(targets) == 6
    assert count_h_lines(out) == {i: 1 for i in targets}
    exact = sum(hyps[i][0][1] == t for i, t in targets.items())
    print(f"\n[overfit] greedy: {exact}/{len(targets)} exact")
    assert exact >= 0.9 * len(targets)


# ------------------------------------------------------------------ batch == one by one
def test_batch_equals_one_by_one_random_model(data_dir):
    task, model = build_task_and_model(data_dir)
    model.eval()
    lengths = [3, 7, 5]
    src, lens = random_videos(lengths)
    with torch.no_grad():
        batch = model.encoder(src, lens)
        x = batch["encoder_out"][0]  # T x B x C
        pad = batch["encoder_padding_mask"][0]
        assert torch.equal(pad, ~lengths_to_mask(lens, x.size(0)))
        for i, n in enumerate(lengths):
            alone = model.encoder(src[i : i + 1, :n], lens[i : i + 1])["encoder_out"][0]
            assert alone.shape[0] == n
            torch.testing.assert_close(x[:n, i], alone[:, 0], atol=1e-5, rtol=0)


def test_batch_equals_one_by_one_generation(overfit):
    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(overfit.ckpt)], arg_overrides={"data": str(overfit.data)})
    model = models[0].eval()
    task.load_dataset("train")
    ds = task.datasets["train"]
    items = [ds[i] for i in range(len(ds))]
    lengths = sorted({it.source.size(0) for it in items})
    assert len(lengths) > 1, "the batch must need padding"
    batch = ds.collater(items)
    for beam in (5, 1):
        gen = task.build_generator([model], Namespace(beam=beam, nbest=1))
        hyps = task.inference_step(gen, [model], batch)
        with torch.no_grad():
            enc = model.encoder(**{k: v for k, v in batch["net_input"].items() if k != "prev_output_tokens"})
        for j, it in enumerate(items):
            assert int(batch["id"][j]) == it.index
            one = ds.collater([it])
            alone = task.inference_step(gen, [model], one)[0][0]
            assert torch.equal(hyps[j][0]["tokens"], alone["tokens"]), (beam, j)
            assert abs(float(hyps[j][0]["score"]) - float(alone["score"])) < 1e-4
            with torch.no_grad():
                enc1 = model.encoder(one["net_input"]["src_tokens"], one["net_input"]["src_lengths"])
            n = it.source.size(0)
            torch.testing.assert_close(enc["encoder_out"][0][:n, j], enc1["encoder_out"][0][:, 0], atol=1e-5, rtol=0)


# ------------------------------------------------------------- padding never hits the CNN
@pytest.mark.parametrize("spec,padding,lengths", [
    ("K3", "same", [3, 7, 5]),
    ("K5,P2,K5,P2", "valid", [20, 31, 26]),
])
def test_padding_never_reaches_cnn_and_temporal_lengths(data_dir, spec, padding, lengths):
    task, model = build_task_and_model(data_dir, extra=["--temporal-spec", spec, "--temporal-padding", padding])
    model.eval()
    visual = model.encoder.visual
    seen = []
    hook = visual.backbone.conv1.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    src, lens = random_videos(lengths, pad_value=255)
    src_zero, _ = random_videos(lengths)
    expected = closed_form_lengths(lengths, spec, padding)
    try:
        before = visual.frames_processed
        with torch.no_grad():
            feats, out_lens = visual(src, lens, level="sign")
        assert visual.frames_processed - before == sum(lengths)
        assert sum(seen) == sum(lengths), seen
        # lengths: closed form == module formula == forward
        assert out_lens.tolist() == expected
        assert visual.temporal.output_lengths(lens).tolist() == expected
        assert feats.size(1) == max(expected)
        mask = lengths_to_mask(out_lens, feats.size(1))
        assert torch.all(feats[~mask] == 0)
        with torch.no_grad():
            enc = model.encoder(src, lens)
            enc_zero = model.encoder(src_zero, lens)
        assert torch.equal(enc["encoder_padding_mask"][0], ~mask)
        # garbage in the padding changes nothing
        assert torch.equal(enc["encoder_out"][0], enc_zero["encoder_out"][0])
        for i, n in enumerate(lengths):
            seen.clear()
            with torch.no_grad():
                f1, l1 = visual(src[i : i + 1, :n], lens[i : i + 1], level="sign")
                assert seen == [n]
                e1 = model.encoder(src[i : i + 1, :n], lens[i : i + 1])
            assert l1.tolist() == [expected[i]] and f1.size(1) == expected[i]
            torch.testing.assert_close(feats[i, : expected[i]], f1[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(enc["encoder_out"][0][: expected[i], i], e1["encoder_out"][0][:, 0], atol=1e-5, rtol=0)
    finally:
        hook.remove()


def test_padding_never_reaches_cnn_in_training_mode(data_dir):
    """Training mode (batch statistics): still only the real frames reach the CNN."""
    _, model = build_task_and_model(data_dir)
    model.train()
    visual = model.encoder.visual
    seen = []
    hook = visual.backbone.conv1.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape[0]))
    try:
        src, lens = random_videos([3, 7, 5], pad_value=255)
        before = visual.frames_processed
        tgt = torch.tensor([[2, 5, 6], [2, 7, 1], [2, 4, 5]])
        out = model(src, lens, tgt)[0]
        out.float().sum().backward()
        assert visual.frames_processed - before == 15 and sum(seen) == 15
        assert visual.backbone.conv1.weight.grad is not None
    finally:
        hook.remove()


def test_temporal_valid_too_short_video_is_a_clear_error():
    visual = VisualEncoder(temporal_spec="K5,P2,K5,P2", temporal_padding="valid").eval()
    src, lens = random_videos([5, 20])
    with pytest.raises(ValueError, match="too short"):
        with torch.no_grad():
            visual(src, lens)


# ---------------------------------------------------------------------- parameter counts
def test_translator_param_counts_match_paper(tmp_path):
    (tmp_path / "config.yaml").write_text("vocab_filename: dict.txt\n")
    (tmp_path / "dict.txt").write_text("".join(f"w{i} 1\n" for i in range(2400 - 4)))  # + 4 specials
    rows = []
    for arch, paper in PAPER_PARAMS.items():
        task, model = build_task_and_model(tmp_path, arch=arch, meta=True)
        assert len(task.target_dictionary) == 2400
        ours = model.translator_num_params()
        rows.append((arch, ours, paper, 100.0 * (ours - paper) / paper))
    print("\n[param counts] Light-T translator, |V| = 2,400")
    print(f"  {'arch':15} {'ours':>12} {'paper':>12} {'diff %':>8}")
    for arch, ours, paper, diff in rows:
        print(f"  {arch:15} {ours:>12,} {int(paper):>12,} {diff:>+8.2f}")
    for arch, ours, paper, diff in rows:
        assert abs(diff) < 2.0, (arch, ours, paper)


# --------------------------------------------------------------------- checkpoint safety
def test_overfit_checkpoint_loads_with_weights_only(overfit):
    state = checkpoint_utils.load_checkpoint_to_cpu(str(overfit.ckpt))
    assert "model" in state and any(k.startswith("encoder.visual.backbone.") for k in state["model"])
    assert "light_t_tiny" in str(state["cfg"]["model"])
    raw = safe_torch_load(str(overfit.ckpt))
    assert set(raw["model"]) == set(state["model"])
    # the same file in a program that only imports the plugin (none of this module's imports)
    code = (
        "import sys, flallm_plugin; from fairseq import checkpoint_utils; "
        "s = checkpoint_utils.load_checkpoint_to_cpu(sys.argv[1]); print('LOADED', len(s['model']))"
    )
    proc = run([sys.executable, "-c", code, overfit.ckpt], timeout=120)
    assert f"LOADED {len(state['model'])}" in proc.stdout, proc.stdout[-3000:]


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"echo pwned > {self.marker}",))


def test_malicious_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "payload": _Exploit(marker)}, str(path))
    assert b"system" in path.read_bytes()
    with pytest.raises(Exception) as e1:
        checkpoint_utils.load_checkpoint_to_cpu(str(path))
    assert "system" in str(e1.value) or "Weights only" in str(e1.value)
    with pytest.raises(UnsafeCheckpointError) as e2:
        safe_torch_load(str(path))
    assert str(path) in str(e2.value)
    # and through the model-loading path of fairseq-generate
    with pytest.raises(Exception):
        checkpoint_utils.load_model_ensemble_and_task([str(path)])
    assert not marker.exists()


# -------------------------------------------------------------------- ResNet-18 weights
def test_missing_backbone_weights_file_cli(data_dir, tmp_path):
    args = list(TRAIN_ARGS)
    args[args.index("--visual-backbone-weights") + 1] = "/nonexistent.pth"
    proc = run(["fairseq-train", data_dir, *args, "--save-dir", tmp_path / "ckpt"],
               check=False, timeout=300, label="fairseq-train missing weights")
    assert proc.returncode != 0
    tail = proc.stderr.strip().splitlines()[-1]
    assert "FileNotFoundError" in tail and "/nonexistent.pth" in tail and "ResNet-18" in tail, tail
    assert not (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_imagenet_weights_are_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth"):
        load_resnet18_weights(build_resnet18(), "imagenet")
    assert not (tmp_path / "torch_home").exists() or not any((tmp_path / "torch_home").rglob("*.pth"))


def _loaded_resnet18(path):
    net = build_resnet18()
    assert load_resnet18_weights(net, path) == path
    return net


def _not_resnet18(kind):
    if kind == "resnet34":  # extra blocks
        return torchvision.models.resnet34(weights=None).state_dict()
    if kind == "resnet50":  # same key names in part, other shapes
        return torchvision.models.resnet50(weights=None).state_dict()
    if kind == "unrelated":
        return {"foo.weight": torch.zeros(3, 3)}
    if kind == "tensor":
        return torch.zeros(3)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["resnet34", "resnet50", "unrelated", "tensor"])
def test_wrong_backbone_state_dict_is_a_clear_error(tmp_path, kind):
    path = tmp_path / f"{kind}.pth"
    torch.save(_not_resnet18(kind), str(path))
    with pytest.raises((ValueError, RuntimeError)) as e:
        _loaded_resnet18(str(path))
    msg = str(e.value)
    # the error names the file and says what was expected
    assert str(path) in msg and "ResNet-18" in msg, msg


def test_torchvision_resnet18_weights_load_bit_exactly(tmp_path, data_dir):
    torch.manual_seed(123)
    ref = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # make every buffer non-default too
        for name, buf in ref.named_buffers():
            if buf.dtype.is_floating_point:
                buf.copy_(torch.rand_like(buf) + 0.5)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(ref.state_dict(), str(path))
    net = _loaded_resnet18(str(path))
    got = net.state_dict()
    expected = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert torch.equal(got[k], v), k
    # and through the model: --visual-backbone-weights PATH
    _, model = build_task_and_model(data_dir, extra=["--visual-backbone-weights", str(path)])
    backbone = model.encoder.visual.backbone.state_dict()
    for k, v in expected.items():
        assert torch.equal(backbone[k], v), k


def test_resnet18_with_another_classifier_head_loads(tmp_path):
    """The classifier is dropped anyway: a ResNet-18 trained for 10 classes gives its backbone bit-exactly."""
    torch.manual_seed(7)
    ref = torchvision.models.resnet18(weights=None, num_classes=10)
    path = tmp_path / "resnet18_10cls.pth"
    torch.save(ref.state_dict(), str(path))
    net = _loaded_resnet18(str(path))
    got = net.state_dict()
    for k, v in ref.state_dict().items():
        if not k.startswith("fc."):
            assert torch.equal(got[k], v), k


# ------------------------------------------------------------- beam search encodes once
@pytest.mark.parametrize("beam", [1, 5])
def test_beam_search_runs_the_visual_encoder_once_per_sentence(data_dir, beam):
    """fairseq's SequenceGenerator (through the task's inference_step, as fairseq-generate calls it)
    encodes each video once and reorders the encoder output for the beams: the CNN sees every real
    frame of the batch exactly once, never once per beam or per step."""
    task, model = build_task_and_model(data_dir)
    model.eval()
    visual = model.encoder.visual
    gen_args = options.parse_args_and_arch(options.get_generation_parser(), [
        str(data_dir), "--user-dir", USER_DIR, "--task", "sign_translation", "--beam", str(beam),
        "--max-len-a", "0", "--max-len-b", "6", "--min-len", "6"])
    generator = task.build_generator([model], convert_namespace_to_omegaconf(gen_args).generation)
    lengths = [5, 9, 7]
    src, lens = random_videos(lengths)
    sample = {"id": torch.arange(3), "net_input": {"src_tokens": src, "src_lengths": lens,
                                                  "prev_output_tokens": torch.full((3, 1), 2)}}
    before = visual.frames_processed
    hypos = task.inference_step(generator, [model], sample)
    assert [len(h) for h in hypos] == [beam] * 3 and all(len(h[0]["tokens"]) == 7 for h in hypos)
    assert visual.frames_processed - before == sum(lengths)


def test_visual_encoder_is_the_visual_param_group(data_dir):
    """--optimizer param_group_adam --group-lr '{"visual": ...}' reaches exactly the ResNet-18 + temporal module."""
    from fairseq import optim

    _, model = build_task_and_model(data_dir)
    visual = {id(p) for p in model.encoder.visual.parameters()}
    assert all(getattr(p, "param_group", "default") == ("visual" if id(p) in visual else "default")
               for p in model.parameters())
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data_dir), "--user-dir", USER_DIR, "--task", "sign_translation", "--arch", "light_t_tiny", "--cpu",
        "--optimizer", "param_group_adam", "--lr", "1e-3", "--group-lr", '{"visual": 1e-2}'])
    opt = optim.build_optimizer(convert_namespace_to_omegaconf(args).optimizer, list(model.parameters()))
    lrs = {g["group"]: (g["lr"], sum(p.numel() for p in g["params"])) for g in opt.optimizer.param_groups}
    assert lrs["visual"] == (1e-2, sum(p.numel() for p in model.encoder.visual.parameters()))
    assert lrs["default"][0] == 1e-3
