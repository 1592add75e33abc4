"""Tests of the rouge_l / sign_eval scorers and the flallm-score CLI."""
import json
import math
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import flallm_plugin  # noqa: F401  (registers the scorers)
from fairseq.data import Dictionary
from fairseq.scoring import build_scorer
from flallm_plugin.cli.score import ScoreInputError, cli_main, get_parser, parse_generate_output
from flallm_plugin.cli.score import main as _score_main
from flallm_plugin.scoring.rouge import (
    RougeLScorer,
    lcs_length,
    rouge_l_corpus,
    rouge_l_sentence,
)
from flallm_plugin.scoring.sign_eval import SignEvalScorer, evaluate, format_report


HYPS = [
    "und nun die wettervorhersage für morgen , donnerstag den zwölften august .",
    "im süden regnet es heute nacht kräftig",
    "morgen scheint im norden die sonne .",
    "der wind weht schwach aus west",
]
REFS = [
    "und nun die wettervorhersage für morgen donnerstag den zwölften august .",
    "in der nacht regnet es im süden teilweise kräftig .",
    "morgen scheint im norden oft die sonne .",
    "der wind weht mäßig aus südwest .",
]


def _write(path: Path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


# --------------------------------------------------------------------------- ROUGE-L


def test_rouge_l_sentence_by_hand():
    # identical: LCS = 3, prec = rec = 1 -> F = 2.44 / 2.44 = 1
    assert rouge_l_sentence("a b c".split(), "a b c".split()) == pytest.approx(1.0)
    # no common token: LCS = 0 -> 0
    assert rouge_l_sentence("a b c".split(), "x y".split()) == 0.0
    # ref "the cat sat on the mat" (6), hyp "the cat on mat" (4):
    # LCS = "the cat on mat" = 4, prec = 4/4 = 1, rec = 4/6 = 2/3
    # F = 2.44 * 1 * 2/3 / (2/3 + 1.44 * 1) = 4.88 / 6.32 = 0.7721518987...
    ref, hyp = "the cat sat on the mat".split(), "the cat on mat".split()
    assert lcs_length(ref, hyp) == 4
    assert rouge_l_sentence(ref, hyp) == pytest.approx(4.88 / 6.32, abs=1e-12)
    # ref "a b c d" (4), hyp "a x c y d e" (6): LCS = "a c d" = 3,
    # prec = 3/6 = 0.5, rec = 3/4 = 0.75, F = 2.44*0.5*0.75 / (0.75 + 1.44*0.5) = 0.915 / 1.47
    ref, hyp = "a b c d".split(), "a x c y d e".split()
    assert lcs_length(ref, hyp) == 3
    assert rouge_l_sentence(ref, hyp) == pytest.approx(0.915 / 1.47, abs=1e-12)
    # beta = 1 is the plain F1: 2 * 0.5 * 0.75 / 1.25 = 0.6
    assert rouge_l_sentence(ref, hyp, beta=1.0) == pytest.approx(0.6, abs=1e-12)
    # empty hypothesis or reference -> 0 (no division by zero)
    assert rouge_l_sentence([], ["a"]) == 0.0
    assert rouge_l_sentence(["a"], []) == 0.0


def test_rouge_l_corpus_mean_x100_and_tokenization():
    refs = ["a b c", "a b c", "the cat sat on the mat"]
    hyps = ["a b c", "x y", "the cat on mat"]
    # mean of (1, 0, 4.88/6.32) x 100
    expected = 100 * (1 + 0 + 4.88 / 6.32) / 3
    assert rouge_l_corpus(refs, hyps) == pytest.approx(expected, abs=1e-9)
    # "none": whitespace split, "hello," != "hello": LCS 1, prec = rec = 1/2 -> F = 0.5
    assert rouge_l_corpus(["hello, world"], ["hello world"]) == pytest.approx(50.0)
    # 13a splits off the comma: ref [hello , world] (3), hyp [hello world] (2):
    # LCS 2, prec 1, rec 2/3 -> 4.88 / 6.32
    assert rouge_l_corpus(["hello, world"], ["hello world"], tokenize="13a") == pytest.approx(
        100 * 4.88 / 6.32
    )
    assert rouge_l_corpus(["Hello World"], ["hello world"]) == 0.0
    assert rouge_l_corpus(["Hello World"], ["hello world"], lowercase=True) == pytest.approx(100.0)
    # char: ref "abcd" (4 chars), hyp "abd" (3): LCS 3, prec 1, rec 3/4
    # F = 2.44 * 0.75 / (0.75 + 1.44) = 1.83 / 2.19
    assert rouge_l_corpus(["abcd"], ["abd"], tokenize="char") == pytest.approx(100 * 1.83 / 2.19)
    with pytest.raises(ValueError):
        rouge_l_corpus(["a", "b"], ["a"])


# ---------------------------------------------------------------------- registration


def test_scorers_built_through_fairseq_registry():
    tgt_dict = Dictionary()
    # argparse namespace, as fairseq.options produces
    scorer = build_scorer(
        Namespace(scoring="rouge_l", rouge_tokenizer="13a", rouge_lowercase=True), tgt_dict
    )
    assert isinstance(scorer, RougeLScorer)
    scorer.add_string("Hello, world", "hello world")
    assert scorer.score() == pytest.approx(100 * 4.88 / 6.32)
    assert scorer.result_string() == f"ROUGE-L = {100 * 4.88 / 6.32:.2f}"

    # DictConfig with defaults filled in from the dataclass ("none", no lowercasing)
    scorer = build_scorer(OmegaConf.create({"_name": "rouge_l"}), tgt_dict)
    assert isinstance(scorer, RougeLScorer)
    assert (scorer.tokenize, scorer.lowercase) == ("none", False)

    scorer = build_scorer(OmegaConf.create({"_name": "sign_eval"}), tgt_dict)
    assert isinstance(scorer, SignEvalScorer)
    for ref, hyp in zip(REFS, HYPS):
        scorer.add_string(ref, hyp)
    expected = evaluate(HYPS, REFS, tokenize="13a")
    assert scorer.score() == expected["bleu4"]
    report = scorer.result_string()
    assert report == format_report(expected)
    assert "ROUGE-L" in report and "BLEU-1" in report and "tok:13a" in report


@pytest.mark.filterwarnings("ignore::UserWarning")  # hydra deprecation notices
def test_scorer_options_from_the_generate_command_line(tmp_path):
    """The exact path of fairseq-generate: argparse flags -> DictConfig -> build_scorer."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_generation_parser()
    args = options.parse_args_and_arch(
        parser,
        [str(tmp_path), "--scoring", "sign_eval", "--sign-eval-tokenizer", "char",
         "--sign-eval-lowercase"],
    )
    cfg = convert_namespace_to_omegaconf(args)
    scorer = build_scorer(cfg.scoring, Dictionary())
    assert isinstance(scorer, SignEvalScorer)
    assert (scorer.tokenize, scorer.lowercase) == ("char", True)
    scorer.add_string("Guten Morgen", "guten morgen")
    assert scorer.score() == pytest.approx(100.0)


# ------------------------------------------------------------------------------ BLEU


def _sacrebleu_cli(ref: str, hyp: str, tok: str) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "sacrebleu", ref, "-i", hyp, "-b", "-w", "6", "-tok", tok],
        capture_output=True, text=True, check=True,
    )
    return float(out.stdout.strip())


@pytest.mark.parametrize("tok", ["13a", "char"])
def test_bleu4_equals_sacrebleu_command_line(tmp_path, tok):
    hyp = _write(tmp_path / "hyp.txt", HYPS)
    ref = _write(tmp_path / "ref.txt", REFS)
    result = evaluate(HYPS, REFS, tokenize=tok)
    assert result["bleu4"] == pytest.approx(_sacrebleu_cli(ref, hyp, tok), abs=1e-6)
    assert result["signature"].split("|")[3] == f"tok:{tok}"
    assert result["n"] == len(HYPS)
    assert len(result["precisions"]) == 4


def test_bleu_n_is_cumulative_max_ngram_order():
    # hyp "the cat sat on the mat" vs ref "the cat is on the mat", BP = 1 (6 vs 6 tokens)
    # p1 = 5/6, p2 = 3/5 (the cat, on the, the mat), p3 = 1/4 (on the mat), p4 = 0/3
    # BLEU-1 = 5/6, BLEU-2 = sqrt(5/6 * 3/5) = sqrt(1/2), BLEU-3 = (1/8)^(1/3) = 1/2
    # BLEU-4: sacrebleu's exp smoothing replaces p4 = 0/3 by 1/(2*3) -> (1/48)^(1/4)
    result = evaluate(["the cat sat on the mat"], ["the cat is on the mat"])
    assert result["bleu1"] == pytest.approx(100 * 5 / 6)
    assert result["bleu2"] == pytest.approx(100 * math.sqrt(0.5))
    assert result["bleu3"] == pytest.approx(50.0)
    assert result["bleu4"] == pytest.approx(100 * (1 / 48) ** 0.25)
    assert result["precisions"][:3] == pytest.approx([100 * 5 / 6, 60.0, 25.0])

    # on a corpus: BLEU-n = BP * geometric mean of p1..pn
    result = evaluate(HYPS, REFS)
    p = [x / 100 for x in result["precisions"]]
    assert result["bp"] < 1
    for n in range(1, 5):
        expected = 100 * result["bp"] * math.exp(sum(math.log(x) for x in p[:n]) / n)
        assert result[f"bleu{n}"] == pytest.approx(expected, rel=1e-9)
    assert result["bleu1"] > result["bleu2"] > result["bleu3"] > result["bleu4"]


def test_lowercase_applies_to_bleu_and_rouge():
    cased = evaluate(["Der Wind weht"], ["der wind weht"])
    lower = evaluate(["Der Wind weht"], ["der wind weht"], lowercase=True)
    assert cased["bleu1"] < 100 and cased["rouge_l"] < 100
    assert lower["bleu1"] == pytest.approx(100) and lower["rouge_l"] == pytest.approx(100)
    assert "case:lc" in lower["signature"]


# ------------------------------------------------------------------------------- CLI

GENERATE_OUTPUT = [
    "2024-05-01 10:00:00 | INFO | fairseq_cli.generate | loading model(s) from ckpt.pt",
    "S-2\t/data/videos/2.mp4",
    "T-2\t" + REFS[2],
    "H-2\t-0.41\t▁morgen ▁scheint ▁im ▁norden ▁die ▁sonne ▁.",
    "D-2\t-0.41\t" + HYPS[2],
    "P-2\t-0.1 -0.2 -0.3 -0.4 -0.5 -0.6 -0.7 -0.8",
    "S-0\t/data/videos/0.mp4",
    "T-0\t" + REFS[0],
    "H-0\t-0.20\t▁und ▁nun ...",
    "D-0\t-0.20\t" + HYPS[0],
    "D-0\t-0.90\tsecond best hypothesis , ignored",
    "T-3\t" + REFS[3],
    "D-3\t-0.35\t" + HYPS[3],
    "T-1\t" + REFS[1],
    "D-1\t-0.52\t" + HYPS[1],
    "2024-05-01 10:00:05 | INFO | fairseq_cli.generate | Generate test with beam=5: BLEU4 = 20.1",
]


def test_parse_generate_output_pairs_by_id(tmp_path):
    path = _write(tmp_path / "gen.log", GENERATE_OUTPUT)
    hyps, refs = parse_generate_output(path)
    assert hyps == HYPS and refs == REFS

    # without D- lines, H- lines are used
    lines = ["T-0\tder wind", "H-0\t-0.1\tder wind .", "T-1\tdie sonne", "H-1\t-0.2\tsonne"]
    hyps, refs = parse_generate_output(_write(tmp_path / "h.log", lines))
    assert hyps == ["der wind .", "sonne"] and refs == ["der wind", "die sonne"]


def score_main(argv):
    return _score_main(get_parser().parse_args(argv))


def _data_dir(tmp_path, refs, tokenizer="char"):
    from flallm_plugin.data.manifest import write_manifest

    data = tmp_path / "data"
    data.mkdir()
    (data / "config.yaml").write_text(f"bleu_tokenizer: {tokenizer}\n", encoding="utf-8")
    write_manifest(str(data / "test.tsv"), [[f"v{i}", f"v{i}", 8, r, "s"] for i, r in enumerate(refs)],
                   ["id", "video", "n_frames", "tgt_text", "speaker"])
    return data


def test_cli_generate_output_matches_evaluate(tmp_path):
    gen = _write(tmp_path / "gen.log", GENERATE_OUTPUT)
    data = _data_dir(tmp_path, REFS)
    out = subprocess.run(
        [sys.executable, "-m", "flallm_plugin.cli.score", "--generate-output", gen,
         "--data", str(data), "--json"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["tokenize"] == "char"  # from the data config
    assert result == evaluate(HYPS, REFS, tokenize="char")


def test_cli_scores_against_the_manifest_text_not_the_unk_references(tmp_path):
    """T- lines are rebuilt from ids (<<unk>> for pieces outside the vocabulary); --data scores the
    D- lines against the manifest's original tgt_text, by sample id."""
    refs = ["die sonne scheint im westen", "morgen wind aus nordwest"]
    lines = ["T-1\tmorgen <<unk> aus nordwest", "D-1\t-0.3\tmorgen wind aus nord",
             "T-0\tdie sonne scheint im <<unk>>", "D-0\t-0.2\tdie sonne scheint im westen"]
    gen = _write(tmp_path / "gen.log", lines)
    data = _data_dir(tmp_path, refs, tokenizer="13a")
    result = score_main(["--generate-output", gen, "--data", str(data)])
    expected = evaluate(["die sonne scheint im westen", "morgen wind aus nord"], refs, tokenize="13a")
    assert result == expected
    unk_refs = evaluate(["die sonne scheint im westen", "morgen wind aus nord"],
                        ["die sonne scheint im <<unk>>", "morgen <<unk> aus nordwest"], tokenize="13a")
    assert result["bleu4"] > unk_refs["bleu4"]


def test_cli_refuses_a_manifest_of_another_split(tmp_path):
    gen = _write(tmp_path / "gen.log", ["T-0\tder wind weht", "D-0\t-0.2\tder wind"])
    data = _data_dir(tmp_path, ["die sonne scheint"])
    with pytest.raises(ScoreInputError, match=r"gen.log:1: T-0 .* is not .*test.tsv line 2.*--gen-subset"):
        score_main(["--generate-output", gen, "--data", str(data)])


def test_cli_hyp_ref_table(tmp_path, capsys):
    hyp = _write(tmp_path / "hyp.txt", HYPS)
    ref = _write(tmp_path / "ref.txt", REFS)
    cli_main(["--hyp", hyp, "--ref", ref, "--lowercase"])
    table = capsys.readouterr().out
    expected = evaluate(HYPS, REFS, tokenize="13a", lowercase=True)
    assert table.strip() == format_report(expected)
    rows = dict(line.strip().rsplit(None, 1) for line in table.splitlines()[1:5])
    for n in range(1, 5):
        assert float(rows[f"BLEU-{n}"]) == pytest.approx(expected[f"bleu{n}"], abs=0.005)


def _cli_error(argv) -> str:
    with pytest.raises(SystemExit) as e:
        cli_main(argv)
    assert e.value.code not in (0, None)
    return str(e.value.code)


def test_cli_errors_name_file_and_line(tmp_path):
    hyp = _write(tmp_path / "hyp.txt", HYPS)
    ref = _write(tmp_path / "ref.txt", REFS[:3])
    msg = _cli_error(["--hyp", hyp, "--ref", ref])
    assert hyp in msg and ref in msg and "4 lines" in msg and "3 lines" in msg

    gen = _write(tmp_path / "bad.log", ["T-0\tdie sonne", "D-0\t-0.1\tdie sonne", "D-1 no tabs"])
    assert f"{gen}:3:" in _cli_error(["--generate-output", gen])

    gen = _write(tmp_path / "bad_id.log", ["T-x\tdie sonne"])
    assert f"{gen}:1:" in _cli_error(["--generate-output", gen])

    gen = _write(tmp_path / "bad_score.log", ["T-0\tdie sonne", "H-0\tsonne"])
    assert f"{gen}:2:" in _cli_error(["--generate-output", gen])

    # id 1 has a reference but no hypothesis
    gen = _write(tmp_path / "lone.log", ["T-0\ta", "D-0\t-0.1\ta", "S-1\tx", "T-1\tb"])
    msg = _cli_error(["--generate-output", gen])
    assert f"{gen}:4:" in msg and "T-1" in msg
    # id 5 has a hypothesis but no reference
    gen = _write(tmp_path / "lone_hyp.log", ["T-0\ta", "D-0\t-0.1\ta", "D-5\t-0.1\tb"])
    msg = _cli_error(["--generate-output", gen])
    assert f"{gen}:3:" in msg and "D-5" in msg

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok\nwetter f\u00fcr morgen\n".encode("latin-1"))
    msg = _cli_error(["--hyp", str(bad), "--ref", ref])
    assert f"{bad}:2:" in msg and "UTF-8" in msg


def _generate_scorer(data, split, *extra):
    """sign_eval built as fairseq-generate builds it: its command line -> DictConfig -> build_scorer."""
    from fairseq import options
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    args = options.parse_args_and_arch(
        options.get_generation_parser(), [str(data), "--gen-subset", split, "--scoring", "sign_eval", *extra]
    )
    return build_scorer(convert_namespace_to_omegaconf(args).scoring, Dictionary())


@pytest.mark.filterwarnings("ignore::UserWarning")  # hydra deprecation notices
def test_sign_eval_takes_the_original_references_and_the_data_tokenizer_from_the_task(tmp_path):
    """What SignTranslationTask publishes for a split (CSL-Daily: char) is what sign_eval scores for
    that --gen-subset, matched by the text fairseq-generate rebuilds from ids, in any order."""
    from flallm_plugin.scoring import references

    scorer = _generate_scorer(tmp_path, "dev")
    assert scorer.split == references.split_key(tmp_path, "dev")
    originals, hyps = ["今天下雨", "明天太阳很好"], ["今天下雨", "明天下雨很好"]
    rebuilt = ["今天下<<unk>>", "明天<<unk>>很好"]  # what fairseq-generate rebuilds from ids
    references.register(str(tmp_path), "dev", "char")
    references.publish(str(tmp_path), "dev", [7, 3], rebuilt, originals)
    scorer.add_string(rebuilt[1], hyps[1])  # not in the published order
    scorer.add_string(rebuilt[0], hyps[0])
    result = scorer.evaluate()
    assert result["tokenize"] == "char" and "tok:char" in result["signature"]
    assert result["bleu4"] == evaluate(hyps[::-1], originals[::-1], tokenize="char")["bleu4"]
    assert scorer.ref == originals[::-1]
    assert result["references"] == "the manifest's original tgt_text (2 sentences)"
    # an explicit --sign-eval-tokenizer wins over the data's
    scorer = _generate_scorer(tmp_path, "dev", "--sign-eval-tokenizer", "13a")
    for r, h in zip(rebuilt, hyps):
        scorer.add_string(r, h)
    assert scorer.evaluate()["tokenize"] == "13a" and scorer.ref == originals


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sign_eval_scorers_of_two_splits_in_one_process(tmp_path):
    """Each scorer takes its own split's originals, whether built before the split is loaded or
    after its batches were generated, and whatever the order of the calls; the old one-queue
    registry gave every scorer every split's references in publication order."""
    from flallm_plugin.scoring import references

    early = _generate_scorer(tmp_path, "test")  # built before the split is loaded
    references.register(str(tmp_path), "dev", "13a")
    references.register(str(tmp_path), "test", "13a")
    rebuilt = ["regen <<unk>> nord", "sonne sued"]
    references.publish(str(tmp_path), "test", [0, 1], rebuilt, ["regen wind nord", "sonne sued"])
    references.publish(str(tmp_path), "dev", [0, 1], rebuilt, ["regen wald nord", "sonne sued"])
    late = _generate_scorer(tmp_path, "dev")  # built after both splits' batches were generated
    for r in reversed(rebuilt):
        late.add_string(r, "x")
        early.add_string(r, "x")
    assert early.ref == ["sonne sued", "regen wind nord"]
    assert late.ref == ["sonne sued", "regen wald nord"]
    # another data directory's split of the same name is another split
    other = tmp_path / "other"
    other.mkdir()
    references.register(str(other), "dev", "13a")
    references.publish(str(other), "dev", [0], ["regen <<unk>> nord"], ["regen wolf nord"])
    scorer = _generate_scorer(other, "dev")
    scorer.add_string("regen <<unk>> nord", "x")
    assert scorer.ref == ["regen wolf nord"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sign_eval_equal_rebuilt_references_in_generation_order(tmp_path):
    """Samples whose ids rebuild to the same text are taken in the order they were generated; a
    sample published again (a second pass over the split) adds nothing."""
    from flallm_plugin.scoring import references

    references.register(str(tmp_path), "dev", "13a")
    references.publish(str(tmp_path), "dev", [4, 2], ["<<unk>> nord", "<<unk>> nord"], ["wind nord", "wald nord"])
    references.publish(str(tmp_path), "dev", [2], ["<<unk>> nord"], ["wald nord"])
    for _ in range(2):  # two passes (two scorers) over the same split
        scorer = _generate_scorer(tmp_path, "dev")
        scorer.add_string("<<unk>> nord", "a")
        scorer.add_string("<<unk>> nord", "b")
        assert scorer.ref == ["wind nord", "wald nord"]
        with pytest.raises(RuntimeError, match=r"split dev of .*: no original reference was generated for "
                                               r"the reference '<<unk>> nord' \(occurrence 3, 2 generated\)"):
            scorer.add_string("<<unk>> nord", "c")


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sign_eval_refuses_references_it_cannot_match(tmp_path):
    from flallm_plugin.scoring import references

    references.register(str(tmp_path), "dev", "13a")
    references.publish(str(tmp_path), "dev", [0], ["a b c d"], ["a b c d"])
    scorer = _generate_scorer(tmp_path, "dev")
    scorer.add_string("a b c d", "a b c d")
    with pytest.raises(RuntimeError, match="no original reference was generated for the reference 'e f'"):
        scorer.add_string("e f", "e f")
    # a split no task registered (another task's data): fairseq's references, as given
    scorer = _generate_scorer(tmp_path, "test")
    scorer.add_string("e f", "e f")
    assert scorer.ref == ["e f"] and "references" not in scorer.evaluate()
    # ... but a split registered once scoring began is refused, not scored half against originals
    references.register(str(tmp_path), "test", "13a")
    references.publish(str(tmp_path), "test", [0], ["g h"], ["g h"])
    scorer.add_string("g h", "g h")
    with pytest.raises(RuntimeError, match="only 1 of 2 references are the manifest's originals"):
        scorer.evaluate()
    with pytest.raises(RuntimeError, match="was never registered"):
        references.publish(str(tmp_path), "train", [0], ["a"], ["a"])
