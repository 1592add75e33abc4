"""Scores use the manifest's original reference text, never the text rebuilt from target ids.

The dev split holds a word ("wind") whose letters never occur in the training text, so its
pieces are outside the dictionary and fairseq-generate's T- lines show <<unk>>. Every score
(fairseq-generate --scoring sign_eval, flallm-score, validation BLEU) must equal sacrebleu on
the D- lines against the raw tgt_text column.
"""
import os
import re
from types import SimpleNamespace

import pytest
import sacrebleu

from fairseq import checkpoint_utils, metrics, options, tasks
from flallm_plugin.data.sign_translation_dataset import read_manifest
from flallm_plugin.scoring.generate_output import hypotheses_and_references, parse_generate_lines
from flallm_tools.synthetic import make_phoenix
from helpers import USER_DIR, run

SPLITS = {  # no "w" or "i" in training: "wind" is made of pieces outside the vocabulary
    "train": ["regen nord heute morgen", "sonne sued heute morgen", "schnee nord morgen heute",
              "sonne heute regen nord", "regen sued morgen sonne", "schnee heute sued nord"],
    "dev": ["wind nord heute morgen", "sonne sued heute morgen", "regen wind sued heute", "schnee nord morgen heute"],
    "test": ["regen sued morgen wind", "sonne heute regen nord"],
}
COMMON = ["--user-dir", USER_DIR, "--task", "sign_translation", "--cpu", "--num-workers", "0",
          "--required-batch-size-multiple", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("references")
    make_phoenix(str(root / "raw"), splits=SPLITS)
    data = str(root / "data")
    prep = run(["python", "preprocess/prep_phoenix14t.py", "--data-root", str(root / "raw"), "--out-dir", data,
                "--resize", "32", "--crop", "28", "--vocab-size", "60"])
    run(["fairseq-train", data, *COMMON, "--arch", "light_t_tiny", "--visual-backbone-weights", "none",
         "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1", "--optimizer", "sgd",
         "--momentum", "0.9", "--lr", "1e-2", "--lr-scheduler", "cosine", "--max-update", "60", "--max-epoch", "30",
         "--batch-size", "4", "--no-augment", "--seed", "1", "--disable-validation", "--no-epoch-checkpoints",
         "--save-dir", str(root / "ckpt")], label="references: stage-1 training")
    gen = run(["fairseq-generate", data, *COMMON, "--gen-subset", "dev", "--path", str(root / "ckpt" / "checkpoint_last.pt"),
               "--beam", "5", "--batch-size", "3", "--scoring", "sign_eval"])
    out = root / "gen.txt"
    out.write_text(gen.stdout, encoding="utf-8")
    raw_refs = [r["tgt_text"] for r in read_manifest(os.path.join(data, "dev.tsv"))]
    samples = parse_generate_lines(gen.stdout.splitlines(), str(out))
    hyps, id_refs = hypotheses_and_references(samples, str(out))
    gen_test = run(["fairseq-generate", data, *COMMON, "--gen-subset", "test", "--path",
                    str(root / "ckpt" / "checkpoint_last.pt"), "--beam", "5", "--batch-size", "3"])
    return SimpleNamespace(data=data, ckpt=str(root / "ckpt" / "checkpoint_last.pt"), prep=prep.stdout,
                           gen=gen.stdout + gen.stderr, out=str(out), hyps=hyps, id_refs=id_refs, raw_refs=raw_refs,
                           samples={"dev": samples, "test": parse_generate_lines(gen_test.stdout.splitlines(), "test")})


def test_the_split_really_has_pieces_outside_the_vocabulary(trained):
    assert any("<unk>" in r for r in trained.id_refs), trained.id_refs
    assert trained.id_refs != trained.raw_refs
    rates = dict(re.findall(r"^\s+(\w+)\s.*pieces outside the dictionary: ([\d.]+)%", trained.prep, re.M))
    assert float(rates["train"]) == 0.0 and float(rates["dev"]) > 0 and float(rates["test"]) > 0, trained.prep


def test_generate_sign_eval_scores_against_the_raw_tgt_text(trained):
    expected = sacrebleu.corpus_bleu(trained.hyps, [trained.raw_refs], tokenize="13a").score
    against_ids = sacrebleu.corpus_bleu(trained.hyps, [trained.id_refs], tokenize="13a").score
    assert expected > 0 and expected != pytest.approx(against_ids)
    printed = float(re.search(r"Generate dev with beam=5: BLEU = ([\d.]+) ", trained.gen).group(1))
    assert printed == pytest.approx(expected, abs=0.005)
    assert "references: the manifest's original tgt_text (4 sentences)" in trained.gen


def test_flallm_score_scores_against_the_raw_tgt_text(trained):
    proc = run(["flallm-score", "--generate-output", trained.out, "--data", trained.data, "--gen-subset", "dev"])
    expected = sacrebleu.corpus_bleu(trained.hyps, [trained.raw_refs], tokenize="13a").score
    assert float(re.search(r"^BLEU = ([\d.]+) ", proc.stdout, re.M).group(1)) == pytest.approx(expected, abs=0.005)


def test_validation_bleu_scores_against_the_raw_tgt_text(trained):
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [trained.data, *COMMON, "--arch", "light_t_tiny", "--eval-bleu",
                                                "--eval-bleu-args", '{"beam": 5}'])
    task = tasks.setup_task(args)
    model = task.build_model(args, from_checkpoint=True)
    model.load_state_dict(checkpoint_utils.load_checkpoint_to_cpu(trained.ckpt)["model"])
    model.eval()
    criterion = task.build_criterion(args)
    task.load_dataset("dev")
    ds = task.dataset("dev")
    sample = ds.collater([ds[i] for i in range(len(ds))])
    with metrics.aggregate() as agg:
        _, _, log = task.valid_step(sample, model, criterion)
        task.reduce_metrics([log], criterion)
    gen = task.generate(task.sequence_generator, [model], sample)
    hyps = [task.decode_tokens(g[0]["tokens"]) for g in gen]
    refs = [ds.tgt_texts[i] for i in sample["id"].tolist()]
    assert refs == sample["tgt_text"]
    expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score
    assert expected > 0
    assert agg.get_smoothed_values()["bleu"] == pytest.approx(expected, abs=0.005)


@pytest.mark.filterwarnings("ignore::UserWarning")  # hydra deprecation notices
def test_scorers_of_two_splits_in_one_process(trained):
    """fairseq-generate's steps for dev and test in one process, interleaved: a scorer per split, the
    test one built before any split is loaded, each fed fairseq-generate's own T- and D- lines in
    reverse order; each scores against its own split's original tgt_text. (The old registry gave
    every scorer every split's references, in the order they were generated.)"""
    from fairseq import utils
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.scoring import build_scorer

    cfgs = {
        split: convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_generation_parser(), [
            trained.data, *COMMON, "--gen-subset", split, "--path", trained.ckpt, "--beam", "5", "--batch-size", "3",
            "--scoring", "sign_eval"]))
        for split in ("dev", "test")
    }
    scorers = {"test": build_scorer(cfgs["test"].scoring, None)}
    task = tasks.setup_task(cfgs["dev"].task)
    models, saved_cfg = checkpoint_utils.load_model_ensemble([trained.ckpt], task=task)
    generator = task.build_generator(models, cfgs["dev"].generation)
    batches = {}
    for split in ("test", "dev"):
        task.load_dataset(split, task_cfg=saved_cfg.task)
        batches[split] = list(task.get_batch_iterator(
            dataset=task.dataset(split), max_sentences=3,
            max_positions=utils.resolve_max_positions(task.max_positions(), *[m.max_positions() for m in models]),
        ).next_epoch_itr(shuffle=False))
    scorers["dev"] = build_scorer(cfgs["dev"].scoring, task.target_dictionary)
    for a, b in zip(batches["dev"], batches["test"] + [None] * len(batches["dev"])):  # interleaved
        for sample in (a, b):
            if sample is not None:
                task.inference_step(generator, models, sample)
    for split, scorer in scorers.items():
        samples = trained.samples[split]
        raw = [r["tgt_text"] for r in read_manifest(os.path.join(trained.data, f"{split}.tsv"))]
        ids = sorted(samples, reverse=True)
        for i in ids:
            scorer.add_string(samples[i].reference, samples[i].hypothesis)
        hyps, refs = [samples[i].hypothesis for i in ids], [raw[i] for i in ids]
        assert any("<unk>" in samples[i].reference for i in ids), split  # the originals are needed
        expected = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score
        assert scorer.ref == refs and scorer.score() == pytest.approx(expected), split
