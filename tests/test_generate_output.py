"""The shared fairseq-generate output parser (flallm_plugin/scoring/generate_output.py)."""
import pytest

from flallm_plugin.scoring.generate_output import (
    hypotheses_and_references,
    parse_generate_lines,
    read_generate_output,
)
from flallm_plugin.scoring.score_input import ScoreInputError

NBEST = [
    "2026-01-01 10:00:00 | INFO | fairseq_cli.generate | loading model",
    "S-1\tvideo",
    "T-1\tdie sonne scheint",
    "H-1\t-0.20\t▁die ▁sonne ▁scheint",
    "D-1\t-0.20\tdie sonne scheint",
    "P-1\t-0.1 -0.2 -0.3",
    "H-1\t-0.90\t▁die ▁sonne",
    "D-1\t-0.90\tdie sonne",
    "T-0\tder wind\tweht",  # only the first tab separates the reference
    "H-0\t-0.30\t▁der ▁wind",
    "D-0\t-0.30\t",  # an empty hypothesis
]


def test_nbest_lists_scores_and_lines():
    samples = parse_generate_lines(NBEST, "gen.log")
    assert list(samples) == [1, 0]  # order of first appearance
    s1 = samples[1]
    assert s1.reference == "die sonne scheint" and s1.reference_line == 3
    assert [(h.score, h.text, h.line) for h in s1.detokenized] == [
        (-0.2, "die sonne scheint", 5), (-0.9, "die sonne", 8)
    ]
    assert [h.text for h in s1.tokenized] == ["▁die ▁sonne ▁scheint", "▁die ▁sonne"]
    assert s1.hypothesis == "die sonne scheint"
    assert samples[0].reference == "der wind\tweht" and samples[0].hypothesis == ""
    hyps, refs = hypotheses_and_references(samples, "gen.log")
    assert hyps == ["", "die sonne scheint"] and refs == ["der wind\tweht", "die sonne scheint"]


def test_h_lines_when_there_is_no_d_line():
    samples = parse_generate_lines(["T-0\ta b", "H-0\t-1\ta b c", "H-0\t-2\ta"], "x")
    assert samples[0].hypothesis is None
    assert hypotheses_and_references(samples, "x") == (["a b c"], ["a b"])


@pytest.mark.parametrize(
    "lines, where, what",
    [
        (["T-0\ta", "D-0 no tabs"], "f:2:", "malformed D- line"),
        (["T-x\ta"], "f:1:", "malformed T- line"),
        (["T-0\ta", "H-0\t-0.1"], "f:2:", "malformed H- line"),
        (["T-0\ta", "D-0\tbest\ta"], "f:2:", "score 'best' is not a number"),
        (["T-0\ta", "T-0\tb"], "f:2:", "second reference for id 0 (first at line 1)"),
        (["S-0\ta", "hello"], "f:", "no T-/D-/H- lines found"),
    ],
)
def test_parse_errors_name_source_and_line(lines, where, what):
    with pytest.raises(ScoreInputError) as e:
        parse_generate_lines(lines, "f")
    assert str(e.value).startswith(where) and what in str(e.value)


def test_pairing_errors():
    with pytest.raises(ScoreInputError, match=r"^f:3: T-1 has no D-1 hypothesis"):
        hypotheses_and_references(parse_generate_lines(["T-0\ta", "D-0\t-1\ta", "T-1\tb"], "f"), "f")
    with pytest.raises(ScoreInputError, match=r"^f:2: D-4 has no T-4 reference"):
        hypotheses_and_references(parse_generate_lines(["T-0\ta", "D-4\t-1\tb", "D-0\t-1\ta"], "f"), "f")


def test_read_file(tmp_path):
    path = tmp_path / "gen.log"
    path.write_bytes("T-0\tüber\r\nD-0\t-0.5\tüber\r\n".encode("utf-8"))
    samples = read_generate_output(str(path))
    assert samples[0].reference == "über" and samples[0].hypothesis == "über"
    path.write_bytes(b"T-0\tok\nD-0\t-0.5\t\xfcber\n")
    with pytest.raises(ScoreInputError, match=f"^{path}:2: not valid UTF-8"):
        read_generate_output(str(path))
