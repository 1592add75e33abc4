"""The demo's synthetic data through the real PHOENIX preprocessor, and a smoke run of the demo."""
import csv
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "examples", "synthetic"))
from generate_dataset import generate  # noqa: E402

import flallm_plugin  # noqa: E402,F401
from fairseq import options, tasks  # noqa: E402


def test_generator_output_is_a_valid_dataset(tmp_path):
    raw, data = str(tmp_path / "raw"), str(tmp_path / "data")
    generate(raw, n_train=24, n_dev=6, n_test=6, seed=3, text_corpus_size=200)
    r = subprocess.run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", raw, "--out-dir", data,
                        "--resize", "40", "--crop", "32", "--vocab-size", "120"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    for split, n in (("train", 24), ("dev", 6), ("test", 6)):
        with open(os.path.join(data, f"{split}.tsv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        assert len(rows) == n and all(int(x["n_frames"]) >= 16 for x in rows)
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [data, "--user-dir", os.path.join(REPO, "flallm_plugin"), "--task",
                                                "sign_translation", "--arch", "light_t_tiny", "--cpu"])
    task = tasks.setup_task(args)
    for split in ("train", "dev", "test"):
        task.load_dataset(split)
        ds = task.dataset(split)
        item = ds[0]
        assert item.source.dtype.is_floating_point is False and tuple(item.source.shape[1:]) == (32, 32, 3)
        assert item.source.float().std() > 5  # frames are not blank
        assert item.target[-1] == task.target_dictionary.eos()
        assert task.target_dictionary.unk() not in item.target.tolist()
    # unseen combinations: test targets never occur among training targets
    train = {x.strip() for x in task.dataset("train").tgt_texts}
    assert not train & set(task.dataset("test").tgt_texts)


def test_demo_runs_end_to_end_quick(tmp_path):
    out = str(tmp_path / "demo")
    r = subprocess.run([sys.executable, "examples/synthetic/run_demo.py", "--out-dir", out, "--quick"],
                       cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "stage 1 alone (Light-T)" in r.stdout and "stage 1+2 (FLa-LLM)" in r.stdout
    assert "BLEU-4" in r.stdout and "ROUGE-L" in r.stdout
    png = os.path.join(out, "training_curves.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    events = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(out, "tensorboard")) for f in fs
              if f.startswith("events")]
    assert events
    assert any(b"gnorm_backbone" in open(e, "rb").read() for e in events)
    assert np.isfinite(float(r.stdout.split("stage 1+2 (FLa-LLM)")[1].split()[3]))
