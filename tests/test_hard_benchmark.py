"""examples/synthetic/hard_benchmark.sh itself, at tiny size (QUICK=1): the hard preset generated, a tiny mBART
pre-trained and trimmed on its text, the videos prepared twice (sentences; sign sequences), the ResNet-18 stand-in
pre-trained on other signs, then the rows of seed 2 alone with JOBS=2 (row groups x seeds as parallel processes
sharing the step store, a last run writing the table from their steps)."""
import json
import os
import sys

from helpers import run

ROWS = ["text_only", "recognition", "factorized", "scratch_pseudo_gloss"]


def test_hard_benchmark_script_with_parallel_jobs(tmp_path):
    out = tmp_path / "hard"
    settings = dict(PYTHON=sys.executable, SEEDS=1, FIRST_SEED=2, JOBS=2, N_TRAIN=12, N_DEV=3, N_TEST=3,
                    STAGE1_EPOCHS=1, STAGE2_EPOCHS=1, TEXT_CORPUS_SIZE=200, MBART_UPDATES=2, QUICK=1, WORKERS=0,
                    ROWS=",".join(ROWS), BACKBONE_ARGS="--n-clips 18 --epochs 1 --batch-size 32")
    cmd = ["env", *[f"{k}={v}" for k, v in settings.items()], "bash", "examples/synthetic/hard_benchmark.sh", out]
    first = run(cmd, timeout=900, label="hard_benchmark.sh QUICK=1 JOBS=2").stdout
    assert "data ready in" in first, first[-3000:]
    results = json.loads((out / "experiment" / "results.json").read_text("utf-8"))
    assert [r["row"] for r in results["rows"]] == ROWS
    assert results["meta"]["seeds"] == [2]
    for r in results["rows"]:
        assert r["bleu4"]["n"] == 1 and r["updates"]["mean"] >= 1, r
    # the rows that share stage 1 ran in one process, every other group in its own (JOBS > 1)
    assert sorted(os.listdir(out / "experiment" / "logs")) == [
        "factorized.seed2.log", "recognition.seed2.log", "scratch_pseudo_gloss.seed2.log", "text_only.seed2.log"]
    # the stand-in backbone is the paper rows' initialisation, the scratch row's is random
    standin = json.loads((out / "standin-resnet18.json").read_text("utf-8"))
    assert standin["out"] == str(out / "standin-resnet18.pth") and standin["clips"] == 18
    steps = {s["row"]: s["seeds"][0]["steps"] for s in results["rows"]}
    spec = lambda key: json.loads((out / "experiment" / "steps" / key / "spec.json").read_text("utf-8"))  # noqa: E731
    assert str(out / "standin-resnet18.pth") in spec(steps["factorized"][0])["args"]
    assert spec(steps["recognition"][0])["data"] == str(out / "gloss_data")
    md = (out / "experiment" / "results.md").read_text("utf-8")
    assert all(f"| {row} |" in md for row in ROWS)
    # the last run only read the steps the parallel ones had done
    assert "steps run: 0," in first, first[-3000:]
    # BACKBONE=signcl_pseudo_gloss: the from-scratch ResNet, self-supervised on the benchmark's own training videos
    # (SignCL), then trained on their sentences' words (pseudo-glosses), then frozen under a stage 1 on its cached
    # frame features (the data reused); the recognition row's ResNet one round further on the sign sequences
    signcl = dict(settings, JOBS=1, ROWS="stage1_only,recognition", BACKBONE="signcl_pseudo_gloss", FRAME_FEATURES=1,
                  EXPERIMENT="signcl", BACKBONE_ARGS="--epochs 1 --window 4 --videos-per-batch 4",
                  PSEUDO_GLOSS_ROUNDS="--epochs 1; --epochs 1 --lr 3e-4 --seed 2",
                  RECOGNITION_ROUNDS="--loss ctc --epochs 1 --seed 8",
                  PSEUDO_GLOSS_ARGS="--videos-per-batch 4 --min-count 1 --hidden 16")
    cmd = ["env", *[f"{k}={v}" for k, v in signcl.items()], "bash", "examples/synthetic/hard_benchmark.sh", out]
    second = run(cmd, timeout=900, label="hard_benchmark.sh BACKBONE=signcl_pseudo_gloss FRAME_FEATURES=1").stdout
    assert "data ready (reused" in second, second[-3000:]
    pretrained = json.loads((out / "signcl-resnet18.json").read_text("utf-8"))
    assert pretrained["out"] == str(out / "signcl-resnet18.pth") and pretrained["init"] is None
    assert pretrained["data"] == str(out / "data") and pretrained["train_videos"] == 12
    # two pseudo-gloss rounds, the second from the first's file
    for i, init in ((1, out / "signcl-resnet18.pth"), (2, out / "signcl-pseudo-gloss-1-resnet18.pth")):
        then = json.loads((out / f"signcl-pseudo-gloss-{i}-resnet18.json").read_text("utf-8"))
        assert then["init"] == str(init) and then["train_videos"] == 12
        assert then["out"] == str(out / f"signcl-pseudo-gloss-{i}-resnet18.pth") and len(then["history"]) == 1
    signs = json.loads((out / "signcl-pseudo-gloss-signs-1-resnet18.json").read_text("utf-8"))
    assert signs["init"] == str(out / "signcl-pseudo-gloss-2-resnet18.pth") and signs["data"] == str(out / "gloss_data")
    assert signs["loss"] == "ctc"
    results = json.loads((out / "signcl" / "results.json").read_text("utf-8"))
    assert [r["row"] for r in results["rows"]] == ["stage1_only", "recognition"]
    for row, weights in zip(results["rows"], ("signcl-pseudo-gloss-2-resnet18.pth",
                                              "signcl-pseudo-gloss-signs-1-resnet18.pth")):
        key = row["seeds"][0]["steps"][0]
        assert str(out / weights) in json.loads(
            (out / "signcl" / "steps" / key / "spec.json").read_text("utf-8"))["args"], row["row"]
