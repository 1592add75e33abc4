"""flallm-experiment --quick on a tiny generated dataset: every row runs, and each trained what it says.

The checks read the checkpoints (never the logs): which parts of each row's model equal their source
(the stage-1 checkpoint, the ResNet weights file, the mBART file) and which moved, the configuration
fairseq saved with them, and the parameter count the table reports (the optimizer state) against the
parameters of the parts the row trains. A second run of the same command trains nothing; a step whose
``done.json`` is missing (an interrupted run) is redone, alone.
"""
import json
import os
import sys

import pytest
import torch
import torchvision

from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_tools.experiment.rows import ROWS
from flallm_tools.synthetic import make_phoenix, write_lm_corpus
from helpers import run

BUFFERS = ("running_mean", "running_var", "num_batches_tracked", "version", "_float_tensor")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    raw = make_phoenix(str(root / "raw"))
    text, train_text = write_lm_corpus(str(root))
    run([sys.executable, "preprocess/pretrain_tiny_mbart.py", "--text", text, "--out-dir", root / "mbart",
         "--langs", "de_DE", "--max-update", "10"])
    run([sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", root / "mbart", "--train-text", train_text,
         "--out-dir", root / "mbart.trimmed", "--langs", "de_DE"])
    data = root / "data"
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", raw, "--out-dir", data, "--resize", "32",
         "--crop", "28", "--spm-model", root / "mbart" / "sentence.bpe.model", "--dict",
         root / "mbart.trimmed" / "dict.txt", "--tgt-lang-tag", "[de_DE]", "--workers", "1"])
    # the same videos with the sign sequences (the release's orth column) as targets: the recognition control
    gloss = root / "gloss_data"
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", raw, "--out-dir", gloss, "--resize", "32",
         "--crop", "28", "--target-column", "orth", "--spm-type", "word", "--vocab-size", "60", "--workers", "1"])
    # a ResNet-18 weights file standing in for ImageNet's (nothing is downloaded)
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None)
    resnet = str(root / "resnet18-random.pth")
    torch.save(net.state_dict(), resnet)
    cmd = [sys.executable, "-m", "flallm_tools.cli.experiment", "--data", data, "--mbart",
           root / "mbart.trimmed" / "model.pt", "--out-dir", root / "out", "--quick", "--cpu", "--num-workers", "0",
           "--visual-backbone-weights", resnet, "--contrastive-args",
           "--criterion sign_contrastive_ce --contrastive-weight 0.5", "--gloss-data", gloss,
           "--rows", ",".join(r.name for r in ROWS)]
    first = run(cmd, timeout=3000, label="flallm-experiment --quick, all rows")
    with open(root / "out" / "results.json", encoding="utf-8") as f:
        results = json.load(f)
    return {"root": root, "cmd": cmd, "first": first.stdout, "results": results, "resnet": resnet,
            "mbart": str(root / "mbart.trimmed" / "model.pt"),
            "rows": {r["row"]: r["seeds"][0] for r in results["rows"]}}


def state(path):
    return safe_torch_load(path)


def model_cfg(ckpt):
    """The model args fairseq saved (a Namespace for these legacy-args models, else a dict)."""
    cfg = ckpt["cfg"]["model"]
    return cfg if isinstance(cfg, dict) else vars(cfg)


def params(model_state, prefix=""):
    """Parameters under ``prefix`` (BatchNorm statistics and version buffers left out)."""
    return {k: v for k, v in model_state.items() if k.startswith(prefix) and not k.endswith(BUFFERS)}


def numel(tensors):
    """Elements of distinct tensors (tied embeddings are one parameter saved under several keys)."""
    seen = {}
    for v in tensors.values():
        seen.setdefault((v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)), v.numel())
    return sum(seen.values())


def equal(a, b):
    assert a.keys() == b.keys() and a
    return all(torch.equal(a[k], b[k]) for k in a)


def strip(d, prefix):
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def test_every_row_in_the_table(experiment):
    expected = [r.name for r in ROWS]
    assert [r["row"] for r in experiment["results"]["rows"]] == expected
    md = (experiment["root"] / "out" / "results.md").read_text("utf-8")
    csv = (experiment["root"] / "out" / "results.csv").read_text("utf-8")
    for name in expected:
        assert f"| {name} |" in md and f"\n{name}," in csv
    for r in experiment["results"]["rows"]:
        for key in ("bleu1", "bleu4", "rouge_l", "dev_bleu", "epoch", "updates", "train_seconds", "trained_params"):
            assert r[key]["n"] == 1, (r["row"], key)
        assert r["epoch"]["mean"] == 1 and r["updates"]["mean"] >= 1 and r["trained_params"]["mean"] > 0
        # the grounding check: every row that reads video is decoded again with black frames
        if r["row"] == "gloss2text":
            assert "bleu4_masked" not in r and r["looks_at_video"] is None
        else:
            assert r["bleu4_masked"]["n"] == 1 and r["looks_at_video"] in (True, False), r["row"]
    # one seed: a row is flagged when masking the video does not lower its BLEU-4 (text_only by construction)
    assert next(r for r in experiment["results"]["rows"] if r["row"] == "text_only")["looks_at_video"] is False
    assert "looks at the video" in md and "translate(s) from the targets' language" in md


def test_rows_train_what_they_say(experiment):
    rows = experiment["rows"]
    ck = {name: state(r["checkpoint"])["model"] for name, r in rows.items()}
    stage1 = {name: state(r["stage1_checkpoint"]) for name, r in rows.items() if r["stage1_checkpoint"]}
    resnet = torch.load(experiment["resnet"], weights_only=True)
    resnet = {k: v for k, v in resnet.items() if not k.startswith("fc.") and not k.endswith(BUFFERS)}
    mbart = state(experiment["mbart"])["model"]
    trained = {name: r["trained_params"] for name, r in rows.items()}
    s1 = stage1["factorized"]["model"]

    # stage 1 alone: everything trained, starting from the ResNet file
    assert trained["stage1_only"] == numel(params(ck["stage1_only"]))
    assert not equal(strip(params(ck["stage1_only"], "encoder.visual.backbone."), "encoder.visual.backbone."), resnet)
    # factorized: the stage-1 visual encoder frozen (BatchNorm statistics too), adapter + mBART trained
    assert equal(strip(ck["factorized"], "encoder.visual."), strip(s1, "encoder.visual."))
    visual = numel(params(ck["factorized"], "encoder.visual."))
    assert trained["factorized"] == numel(params(ck["factorized"])) - visual
    # T4 joint: everything trained, the ResNet moved from its initialisation
    assert trained["joint"] == numel(params(ck["joint"]))
    assert not equal(strip(params(ck["joint"], "encoder.visual.backbone."), "encoder.visual.backbone."), resnet)
    # T5 no visual initialing: the ResNet file's weights, frozen; no stage 1
    assert rows["no_visual_init"]["stage1_checkpoint"] is None and rows["joint"]["stage1_checkpoint"] is None
    assert equal(strip(params(ck["no_visual_init"], "encoder.visual.backbone."), "encoder.visual.backbone."), resnet)
    assert trained["no_visual_init"] == trained["factorized"]
    # T9 on video: what is frozen equals stage 1, what is trained moved
    for name in ("freeze_backbone_temporal", "freeze_backbone", "freeze_none"):
        assert model_cfg(state(rows[name]["checkpoint"]))["visual_input"]["input_type"] == "video"
        assert rows[name]["stage1_checkpoint"] == rows["factorized"]["stage1_checkpoint"]
    backbone = lambda m: strip(m, "encoder.visual.backbone.")  # noqa: E731
    temporal = lambda m: strip(params(m, "encoder.visual.temporal."), "encoder.visual.temporal.")  # noqa: E731
    assert equal(strip(ck["freeze_backbone_temporal"], "encoder.visual."), strip(s1, "encoder.visual."))
    assert equal(backbone(ck["freeze_backbone"]), backbone(s1))
    assert not equal(temporal(ck["freeze_backbone"]), temporal(s1))
    assert not equal(backbone(params(ck["freeze_none"])), backbone(params(s1)))
    assert trained["freeze_backbone_temporal"] == trained["factorized"]
    assert trained["freeze_backbone"] - trained["freeze_backbone_temporal"] == numel(params(s1, "encoder.visual.temporal."))
    assert trained["freeze_none"] == numel(params(ck["freeze_none"])) == trained["joint"]
    # T10: the pretrained row starts from the mBART file, the random one does not
    key = "decoder.layers.0.fc1.weight"
    assert rows["mbart_pretrained"]["checkpoint"] == rows["factorized"]["checkpoint"]  # the same run
    near = (ck["mbart_pretrained"][key] - mbart[key]).abs().mean()
    far = (ck["mbart_random"][key] - mbart[key]).abs().mean()
    assert far > 5 * near, (far, near)
    # T6: stage 1 at each sampling rate (25 % is the data's own: the factorized run itself)
    for name, rate in (("sampling_100", 1.0), ("sampling_50", 0.5), ("sampling_25", 0.25), ("sampling_12.5", 0.125)):
        assert stage1[name]["cfg"]["task"]["sampling_rate"] == rate
    assert rows["sampling_25"]["checkpoint"] == rows["factorized"]["checkpoint"]
    # T7: Light-T sizes (layers as the real sizes; --quick divides the widths by 8)
    sizes = {name: (model_cfg(stage1[name])["encoder_layers"], model_cfg(stage1[name])["encoder_embed_dim"])
             for name in ("light_t_tiny", "light_t_small", "light_t_base", "light_t_large")}
    assert sizes == {"light_t_tiny": (1, 32), "light_t_small": (2, 64), "light_t_base": (3, 64), "light_t_large": (4, 128)}
    # T8: the adapter reads features at its level, extracted from the same stage 1
    for level in ("sign", "frame", "light_t"):
        cfg = model_cfg(state(rows[f"adapter_{level}"]["checkpoint"]))
        spec = cfg["visual_input"]
        assert (cfg["adapter_input"], spec["input_type"], spec["feature_level"]) == (level, "features", level)
    # the diagnostic and the extra-argument rows
    assert stage1["text_only"]["cfg"]["task"]["blank_video"] is True
    crit = stage1["contrastive"]["cfg"]["criterion"]
    assert (crit["_name"], crit["contrastive_weight"]) == ("sign_contrastive_ce", 0.5)
    assert stage1["contrastive"]["criterion"] is not None  # the learnt logit scale, saved by fairseq's trainer
    assert stage1["factorized"]["cfg"]["criterion"]["_name"] == "label_smoothed_cross_entropy"
    # the controls: the floor and the scratch rows start from a random ResNet whatever the run's weights; the
    # recognition rows train on the gloss data; the remedy rows with the pseudo-gloss loss (and its warm-up)
    for name in ("text_only", "scratch", "scratch_pseudo_gloss", "recognition_scratch_pseudo_gloss"):
        assert model_cfg(stage1[name])["visual_backbone_weights"] == "none", name
    for name in ("recognition", "pseudo_gloss"):
        assert model_cfg(stage1[name])["visual_backbone_weights"] == experiment["resnet"], name
    for name in ("recognition", "recognition_scratch_pseudo_gloss"):
        assert stage1[name]["cfg"]["task"]["data"] == str(experiment["root"] / "gloss_data")
    for name in ("pseudo_gloss", "scratch_pseudo_gloss", "recognition_scratch_pseudo_gloss"):
        crit = stage1[name]["cfg"]["criterion"]
        assert (crit["_name"], crit["pseudo_gloss_weight"]) == ("sign_pseudo_gloss_ce", 1.0)
        assert crit["pseudo_gloss_only_updates"] == round(0.3 * rows[name]["updates"])
        assert stage1[name]["criterion"] is not None  # the scorer's scale and biases, saved by fairseq's trainer
    # gloss2text: fairseq's transformer on the gloss sequences, no video
    g2t = state(rows["gloss2text"]["checkpoint"])
    assert g2t["cfg"]["task"]["_name"] == "translation" and "gloss2text-data-" in g2t["cfg"]["task"]["data"]
    assert "transformer" in (model_cfg(g2t).get("arch"), model_cfg(g2t).get("_name"))
    assert rows["gloss2text"]["stage1_checkpoint"] is None


def test_rerun_trains_nothing_and_redoes_an_interrupted_step(experiment):
    out = experiment["root"] / "out"
    checkpoints = {r["checkpoint"]: os.stat(r["checkpoint"]).st_mtime_ns for r in experiment["rows"].values()}
    again = run(experiment["cmd"], label="flallm-experiment --quick, re-run").stdout
    assert "steps run: 0," in again
    assert {p: os.stat(p).st_mtime_ns for p in checkpoints} == checkpoints
    # an interrupted decoding step (no done.json) is deleted and redone, nothing else
    decode_dir = os.path.dirname(os.path.dirname(experiment["rows"]["stage1_only"]["checkpoint"]))
    key = experiment["rows"]["stage1_only"]["steps"][-1]
    os.remove(os.path.join(decode_dir, key, "done.json"))
    third = run(experiment["cmd"], label="flallm-experiment --quick, one step redone").stdout
    assert "steps run: 1," in third
    with open(out / "results.json", encoding="utf-8") as f:
        redone = {r["row"]: r["seeds"][0] for r in json.load(f)["rows"]}
    assert redone["stage1_only"]["bleu4"] == experiment["rows"]["stage1_only"]["bleu4"]


def test_recognition_row_reads_its_own_resnet(experiment, tmp_path):
    """--recognition-backbone-weights: the recognition row's stage 1 (and its cached frame features) start from that
    file, every other row from --visual-backbone-weights; without a recognition row the option is refused."""
    root = experiment["root"]
    torch.manual_seed(1)
    other = str(tmp_path / "signs-resnet18.pth")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), other)
    cmd = [sys.executable, "-m", "flallm_tools.cli.experiment", "--data", root / "data", "--mbart",
           experiment["mbart"], "--out-dir", tmp_path / "out", "--quick", "--cpu", "--num-workers", "0",
           "--visual-backbone-weights", experiment["resnet"], "--stage1-frame-features", "--gloss-data",
           root / "gloss_data", "--recognition-backbone-weights", other]
    refused = run(cmd + ["--rows", "stage1_only,recognition_scratch_pseudo_gloss"], check=False)
    assert refused.returncode != 0 and "only the recognition row reads it" in refused.stderr, refused.stderr
    missing = run(cmd[:-1] + [str(tmp_path / "nope.pth"), "--rows", "recognition"], check=False)
    assert missing.returncode != 0 and "nope.pth: --recognition-backbone-weights file not found" in missing.stderr
    run(cmd + ["--rows", "stage1_only,recognition"], label="flallm-experiment --recognition-backbone-weights")
    with open(tmp_path / "out" / "results.json", encoding="utf-8") as f:
        rows = {r["row"]: r for r in json.load(f)["rows"]}
    for name, weights in (("recognition", other), ("stage1_only", experiment["resnet"])):
        ck = state(rows[name]["seeds"][0]["stage1_checkpoint"])
        expected = torch.load(weights, weights_only=True)
        backbone = strip(ck["model"], "encoder.visual.backbone.")
        assert backbone and all(torch.equal(v, expected[k]) for k, v in backbone.items()), name
    assert "signs-resnet18.pth (--recognition-backbone-weights)" in rows["recognition"]["trains"]
    assert "--recognition-backbone-weights" not in rows["stage1_only"]["trains"]


def test_row_selection_refuses_what_cannot_take_effect():
    from flallm_tools.experiment.rows import select_rows

    assert "contrastive" not in [r.name for r in select_rows(None, have_mbart=True, have_contrastive=False)]
    assert not [r for r in select_rows(None, have_mbart=False, have_contrastive=True) if r.table == "T10"]
    assert [r.name for r in select_rows("joint,factorized,joint", True, False)] == ["joint", "factorized"]
    with pytest.raises(ValueError, match="unknown row.*nope"):
        select_rows("factorized,nope", True, False)
    with pytest.raises(ValueError, match="mbart_random --mbart none"):
        select_rows("mbart_random", have_mbart=False, have_contrastive=False)
    with pytest.raises(ValueError, match="contrastive needs --contrastive-args"):
        select_rows("contrastive", have_mbart=True, have_contrastive=False)
    for name in ("recognition", "gloss2text", "recognition_scratch_pseudo_gloss"):
        with pytest.raises(ValueError, match=f"{name} needs --gloss-data"):
            select_rows(name, have_mbart=True, have_contrastive=False)
    assert "recognition" not in [r.name for r in select_rows(None, True, False)]
    # the from-scratch and beyond-the-paper stage 1s run only when named
    default = [r.name for r in select_rows(None, True, True, True)]
    assert "recognition" in default and "contrastive" in default
    assert not {"scratch", "scratch_pseudo_gloss", "recognition_scratch_pseudo_gloss", "pseudo_gloss"} & set(default)


def test_blank_video_gives_black_clips_of_the_same_shape(experiment):
    from flallm_plugin.data.data_cfg import SignDataConfig
    from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator

    def dataset(data, blank):
        cfg = SignDataConfig(os.path.join(data, "config.yaml"))
        return SignTranslationDatasetCreator.from_tsv(str(data), cfg, "dev", None, None, is_train_split=False,
                                                      visual_input=None, augment=False, seed=1, blank_video=blank)

    data = experiment["root"] / "data"
    real, blank = dataset(data, False)[0].source, dataset(data, True)[0].source
    assert real.shape == blank.shape and real.any() and not blank.any()
    feats = os.path.join(os.path.dirname(experiment["rows"]["factorized"]["checkpoint"]), "..")
    feats = [os.path.join(feats, d, "features") for d in sorted(os.listdir(feats))
             if d.startswith("features-") and not d.endswith(".lock")][0]  # a step, not its lock file
    real, blank = dataset(feats, False)[0].source, dataset(feats, True)[0].source  # features: zeros
    assert real.shape == blank.shape and real.any() and not blank.any()


def test_stage1_on_frame_features(experiment):
    """--stage1-frame-features: every stage 1 trains on the run's cached ResNet features (extracted once per
    data directory), its ResNet frozen at the weights file; decoding reads the video; scratch rows are refused."""
    root = experiment["root"]
    cmd = [sys.executable, "-m", "flallm_tools.cli.experiment", "--data", root / "data", "--mbart",
           experiment["mbart"], "--out-dir", root / "out_frames", "--quick", "--cpu", "--num-workers", "0",
           "--visual-backbone-weights", experiment["resnet"], "--stage1-frame-features"]
    refused = run(cmd + ["--rows", "scratch"], check=False)
    assert refused.returncode != 0 and "--stage1-frame-features freezes the ResNet" in refused.stderr, refused.stderr
    run(cmd + ["--rows", "text_only,stage1_only,factorized"], label="flallm-experiment --stage1-frame-features")
    with open(root / "out_frames" / "results.json", encoding="utf-8") as f:
        rows = {r["row"]: r["seeds"][0] for r in json.load(f)["rows"]}
    resnet = torch.load(experiment["resnet"], weights_only=True)
    for name in ("text_only", "stage1_only"):
        ck = state(rows[name]["stage1_checkpoint"])
        cfg = model_cfg(ck)
        assert (cfg["visual_input"]["input_type"], cfg["visual_input"]["feature_level"]) == ("features", "frame"), name
        backbone = strip(ck["model"], "encoder.visual.backbone.")
        assert backbone and all(torch.equal(v, resnet[k]) for k, v in backbone.items()), name
    assert state(rows["text_only"]["stage1_checkpoint"])["cfg"]["task"]["blank_video"] is True
    assert rows["factorized"]["stage1_checkpoint"] == rows["stage1_only"]["checkpoint"]
    steps = os.listdir(root / "out_frames" / "steps")
    extractions = [d for d in steps if d.startswith("frame_features-") and not d.endswith(".lock")]
    assert len(extractions) == 1  # one extraction for both stage 1s
