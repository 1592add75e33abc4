"""The demo's synthetic data through the real PHOENIX preprocessor, and a smoke run of the demo."""
import csv
import os
import sys

import numpy as np

import flallm_plugin  # noqa: F401
from fairseq import options, tasks
from flallm_tools.synthetic import generate
from helpers import USER_DIR, run


def test_generator_output_is_a_valid_dataset(tmp_path):
    raw, data = str(tmp_path / "raw"), str(tmp_path / "data")
    generate(raw, n_train=24, n_dev=6, n_test=6, seed=3, text_corpus_size=200)
    run([sys.executable, "preprocess/prep_phoenix14t.py", "--data-root", raw, "--out-dir", data,
         "--resize", "40", "--crop", "32", "--vocab-size", "120"])
    for split, n in (("train", 24), ("dev", 6), ("test", 6)):
        with open(os.path.join(data, f"{split}.tsv"), encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        assert len(rows) == n and all(int(x["n_frames"]) >= 16 for x in rows)
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [data, "--user-dir", USER_DIR, "--task",
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
    r = run([sys.executable, "examples/synthetic/run_demo.py", "--out-dir", out, "--quick"], label="demo --quick")
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


def test_demo_never_deletes_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    r = run([sys.executable, "examples/synthetic/run_demo.py", "--out-dir", str(mine), "--quick"], check=False)
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1] == (
        f"run_demo.py: error: --out-dir {mine}: not empty and not written by run_demo.py (no .flallm-demo file in "
        "it), so it is not deleted: choose another --out-dir, or remove it yourself")
    assert os.listdir(mine) == ["thesis.tex"] and (mine / "thesis.tex").read_text() == "months of work"
