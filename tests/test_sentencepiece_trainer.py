"""The shared sentencepiece trainer (flallm_plugin/data/sentencepiece_trainer.py)."""
import pytest
import sentencepiece as spm

from flallm_plugin.data.sentencepiece_trainer import train_sentencepiece

TEXT = ["der wind weht im norden", "die sonne scheint im süden", "morgen regen und wind"] * 20


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "layout, ids",  # (unk, <s>, </s>, <pad>)
    [("fairseq", (3, 0, 2, 1)), ("mbart", (0, 1, 2, -1))],
)
def test_id_layouts(tmp_path, text_file, layout, ids):
    model = train_sentencepiece(text_file, str(tmp_path / layout), 40, id_layout=layout)
    assert model == str(tmp_path / layout) + ".model"
    sp = spm.SentencePieceProcessor(model_file=model)
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == ids
    assert sp.get_piece_size() <= 40
    assert sp.decode(sp.encode("die sonne weht")) == "die sonne weht"


def test_same_arguments_give_the_same_bytes(tmp_path, text_file):
    prefix = str(tmp_path / "m")
    first = open(train_sentencepiece(text_file, prefix, 40, id_layout="mbart"), "rb").read()
    second = open(train_sentencepiece(text_file, prefix, 40, id_layout="mbart"), "rb").read()
    assert first == second


def test_unknown_layout(tmp_path, text_file):
    with pytest.raises(ValueError, match="id_layout"):
        train_sentencepiece(text_file, str(tmp_path / "m"), 40, id_layout="t5")
