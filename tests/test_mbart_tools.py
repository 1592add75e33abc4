"""Tests of the mBART tools: tiny pre-training, vocabulary trimming and HF conversion.

A tiny mBART is pre-trained once (fairseq-train, ~15 s on 2 CPU cores) and saved in the
mbart.cc25 release format (fused attention projections, no output projection key, an
``args`` namespace and no ``cfg``, dict.txt without language tags and <mask>); fairseq's own
loader must compute the same logits from it as from the checkpoint fairseq-train wrote,
trimming must preserve the renormalised output distribution exactly and the HF -> fairseq
conversion must reproduce the HF logits, also after trimming.
"""
import argparse
import os
import random
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import flallm_plugin  # noqa: F401  (allowlists the checkpoint classes)
from fairseq import checkpoint_utils
from fairseq.data import Dictionary
from fairseq.models.bart import BARTModel
from fairseq.models.bart.model import mbart_large_architecture
from flallm_plugin.checkpoint_safety import safe_torch_load
from flallm_plugin.data.sentencepiece_trainer import train_sentencepiece
from helpers import run

from convert_hf_mbart import ConversionError, convert_hf_mbart  # noqa: E402
from pretrain_tiny_mbart import pretrain_tiny_mbart  # noqa: E402
from trim_mbart import TrimError, trim_mbart  # noqa: E402

SUBJECTS = ["der Hund", "die Katze", "das Kind", "der Lehrer", "die Frau", "der Mann",
            "das Wetter", "die Sonne", "der Wind", "die Wolke", "der Regen", "das Gewitter"]
VERBS = ["läuft", "schläft", "spielt", "kommt", "geht", "scheint", "weht", "bleibt",
         "wartet", "zieht", "fällt", "ändert sich"]
ADVERBIALS = ["heute", "morgen", "im Norden", "im Süden", "am Abend", "in der Nacht",
              "sehr schnell", "langsam", "überall", "kaum", "an der Küste", "am Wochenende"]


def german_sentences(n, seed=0):
    """``n`` short German-like sentences (deterministic)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(ADVERBIALS)}"
        if rng.random() < 0.3:
            s += f" und {rng.choice(ADVERBIALS)}"
        out.append(s[0].upper() + s[1:] + rng.choice([".", ".", "!"]))
    return out


def build_fairseq_mbart(checkpoint, dictionary):
    """A fairseq BARTModel (eval mode) built from a checkpoint's args/cfg, strict weights."""
    args = checkpoint["cfg"]["model"] if checkpoint.get("cfg") else checkpoint["args"]
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    model = BARTModel.build_model(args, task)
    model.load_state_dict(checkpoint["model"], strict=True)
    return model.eval()


@pytest.fixture(scope="module")
def tiny_mbart(tmp_path_factory):
    """A tiny mBART pre-trained with fairseq on ~200 sentences (release layout)."""
    root = tmp_path_factory.mktemp("tiny_mbart")
    sentences = german_sentences(200)
    text = root / "train.de"
    text.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    res = pretrain_tiny_mbart(str(text), str(root / "mbart"), langs=("de_DE",), max_update=100)
    return SimpleNamespace(dir=root / "mbart", text=text, sentences=sentences, res=res)


# (a) pre-training ------------------------------------------------------------------------

def test_pretrain_writes_release_format(tiny_mbart):
    d = tiny_mbart.dir
    for name in ("model.pt", "dict.txt", "sentence.bpe.model"):
        assert (d / name).is_file(), name
    state = safe_torch_load(str(d / "model.pt"))
    dictionary = Dictionary.load(str(d / "dict.txt"))
    symbols = [line.split(" ")[0] for line in (d / "dict.txt").read_text("utf-8").splitlines()]
    assert "<mask>" not in symbols and "[de_DE]" not in symbols  # plain release dict.txt
    weights = state["model"]
    rows = weights["encoder.embed_tokens.weight"].shape[0]
    assert rows == len(dictionary) + 1 + 1  # + [de_DE] + <mask>, appended by the task
    # mbart.cc25's checkpoint layout: top-level keys, an args namespace and no cfg
    assert set(state) == {"args", "model", "optimizer_history", "extra_state",
                          "last_optimizer_state"}
    args = state["args"]
    assert isinstance(args, argparse.Namespace) and not hasattr(args, "_name")
    assert (args.arch, args.task, args.langs) == ("mbart_large", "multilingual_denoising", "de_DE")
    assert args.add_lang_token and args.share_all_embeddings
    assert args.share_decoder_input_output_embed and args.layernorm_embedding
    assert args.encoder_normalize_before and args.decoder_normalize_before
    # fused attention, no output projection (tied to decoder.embed_tokens), version buffers
    assert "decoder.output_projection.weight" not in weights
    assert not any(k.endswith(("q_proj.weight", "k_proj.bias", "v_proj.weight")) for k in weights)
    for prefix in ("encoder.layers.0.self_attn", "decoder.layers.0.self_attn",
                   "decoder.layers.0.encoder_attn"):
        assert weights[f"{prefix}.in_proj_weight"].shape == (3 * 64, 64)
        assert weights[f"{prefix}.in_proj_bias"].shape == (3 * 64,)
    assert weights["encoder.version"].item() == weights["decoder.version"].item() == 3

    # mbart.cc25 convention: dict.txt line k is sentencepiece piece k + 3
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(d / "sentence.bpe.model"))
    assert symbols == [sp.id_to_piece(i) for i in range(3, sp.get_piece_size())]

    # fairseq builds the model from the checkpoint with the task's dictionary layout
    dictionary.add_symbol("[de_DE]")
    dictionary.add_symbol("<mask>")
    model = build_fairseq_mbart(state, dictionary)
    assert model.encoder.embed_tokens.weight.shape[0] == rows
    assert tiny_mbart.res["seconds"] < 120


def _ensemble_logits(path, data_dir, src, prev):
    """Logits of fairseq's own loader: load_model_ensemble builds the checkpoint's task
    (multilingual_denoising: dict.txt + [de_DE] + <mask>) and model, upgrading old keys."""
    models, cfg = checkpoint_utils.load_model_ensemble([str(path)], arg_overrides={"data": str(data_dir)})
    model = models[0].eval()
    with torch.no_grad():
        logits, _ = model(src, torch.tensor([src.shape[1]] * src.shape[0]), prev)
    return logits, cfg


def test_release_form_is_faithful_to_the_fairseq_checkpoint(tiny_mbart):
    """The release-form model.pt computes what the checkpoint fairseq-train wrote computes."""
    import sentencepiece as spm

    d = tiny_mbart.dir
    sp = spm.SentencePieceProcessor(model_file=str(d / "sentence.bpe.model"))
    dictionary = Dictionary.load(str(d / "dict.txt"))
    lang, eos = len(dictionary), dictionary.eos()  # [de_DE] is appended first
    toks = [[dictionary.index(p) for p in sp.encode(s, out_type=str)] for s in tiny_mbart.sentences[:2]]
    n = min(map(len, toks))
    src = torch.tensor([t[:n] + [eos, lang] for t in toks])
    prev = torch.tensor([[lang] + t[:n] + [eos] for t in toks])
    ref, ref_cfg = _ensemble_logits(tiny_mbart.res["fairseq_model"], d, src, prev)
    got, cfg = _ensemble_logits(d / "model.pt", d, src, prev)
    assert ref_cfg.model.arch == "mbart_base" and cfg.model.arch == "mbart_large"
    assert got.shape == ref.shape == (2, n + 2, len(dictionary) + 2)
    assert ref.abs().max() > 1.0  # a trained model, not a degenerate comparison
    assert torch.equal(got, ref), (got - ref).abs().max()


# (b) trimming ----------------------------------------------------------------------------

def _encode(sp, dictionary, sentence):
    return [dictionary.index(p) for p in sp.encode(sentence, out_type=str)]


def _teacher_forced_logits(model, dictionary, tokens):
    """Logits for target ``X </s> [de_DE]`` with decoder input ``[de_DE] X </s>``."""
    eos, lang = dictionary.eos(), dictionary.index("[de_DE]")
    src = torch.tensor([tokens + [eos, lang]])
    prev = torch.tensor([[lang] + tokens + [eos]])
    target = torch.tensor([tokens + [eos, lang]])
    with torch.no_grad():
        logits, _ = model(src, torch.tensor([src.shape[1]]), prev)
    return logits[0], target[0]


@pytest.mark.parametrize("form", ["release", "fairseq-train"])
def test_trim_preserves_renormalised_log_probs(tiny_mbart, tmp_path, form):
    import sentencepiece as spm

    mbart_dir = tiny_mbart.dir
    if form == "fairseq-train":  # today's fairseq key layout and a cfg, same dict.txt
        mbart_dir = tmp_path / "fairseq_form"
        mbart_dir.mkdir()
        for name in ("dict.txt", "sentence.bpe.model"):
            (mbart_dir / name).write_bytes((tiny_mbart.dir / name).read_bytes())
        (mbart_dir / "model.pt").write_bytes(Path(tiny_mbart.res["fairseq_model"]).read_bytes())
    subset = tiny_mbart.sentences[:8]
    train_text = tmp_path / "subset.de"
    train_text.write_text("\n".join(subset) + "\n", encoding="utf-8")
    out = tmp_path / "trimmed"
    proc = run([sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", mbart_dir, "--train-text", train_text,
                "--out-dir", out, "--langs", "de_DE"])
    assert "->" in proc.stdout
    assert sorted(os.listdir(tmp_path)) == sorted(  # no temporary directory left behind
        ["subset.de", "trimmed"] + (["fairseq_form"] if form == "fairseq-train" else []))

    orig_state = safe_torch_load(str(mbart_dir / "model.pt"))
    orig_dict = Dictionary.load(str(mbart_dir / "dict.txt"))
    orig_dict.add_symbol("[de_DE]")
    orig_dict.add_symbol("<mask>")
    trim_state = safe_torch_load(str(out / "model.pt"))
    trim_dict = Dictionary.load(str(out / "dict.txt"))  # tags and <mask> already in it
    lines = (out / "dict.txt").read_text("utf-8").splitlines()
    assert lines[-2:] == ["[de_DE] 1", "<mask> 1"]
    rows = trim_state["model"]["encoder.embed_tokens.weight"].shape[0]
    assert rows == len(trim_dict) < len(orig_dict)
    assert set(trim_state) == set(orig_state) - {"last_optimizer_state"}
    # fairseq's own loader still reads it (e.g. for --restore-file / --finetune-from-model)
    assert checkpoint_utils.load_checkpoint_to_cpu(str(out / "model.pt"))["cfg"].model.arch
    assert (out / "sentence.bpe.model").read_bytes() == (
        tiny_mbart.dir / "sentence.bpe.model").read_bytes()
    # today's key layout (fairseq's upgrade ran): exactly a BART model's keys, one tied embedding
    weights = trim_state["model"]
    assert not any("in_proj" in k for k in weights)
    expected_keys = set(BARTModel.build_model(
        checkpoint_utils.load_checkpoint_to_cpu(str(out / "model.pt"))["cfg"].model,
        SimpleNamespace(source_dictionary=trim_dict, target_dictionary=trim_dict)).state_dict())
    assert set(weights) == expected_keys
    tied = [weights[k].data_ptr() for k in ("encoder.embed_tokens.weight",
                                            "decoder.embed_tokens.weight",
                                            "decoder.output_projection.weight")]
    assert len(set(tied)) == 1

    kept = torch.tensor([orig_dict.index(trim_dict[i]) for i in range(len(trim_dict))])
    assert kept.tolist() == sorted(kept.tolist()) and kept[:4].tolist() == [0, 1, 2, 3]
    # every kept symbol is a real symbol of the original dictionary
    assert all(trim_dict[i] in orig_dict.indices for i in range(len(trim_dict)))

    orig_model = build_fairseq_mbart(orig_state, orig_dict)
    trim_model = build_fairseq_mbart(trim_state, trim_dict)
    sp = spm.SentencePieceProcessor(model_file=str(out / "sentence.bpe.model"))
    for sentence in subset:
        o_logits, o_target = _teacher_forced_logits(
            orig_model, orig_dict, _encode(sp, orig_dict, sentence))
        t_logits, t_target = _teacher_forced_logits(
            trim_model, trim_dict, _encode(sp, trim_dict, sentence))
        assert kept[t_target].tolist() == o_target.tolist()  # same tokens, other ids
        expected = torch.log_softmax(o_logits[:, kept].double(), dim=-1)
        got = torch.log_softmax(t_logits.double(), dim=-1)
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
        # and the renormalisation is real: the kept rows carry less than all the mass
        full = torch.log_softmax(o_logits.double(), dim=-1)
        assert (full[:, kept].exp().sum(-1) < 1 - 1e-6).any()


# (c) Hugging Face conversion -------------------------------------------------------------

HF_LANGS = ["de_DE", "en_XX"]


def save_random_hf_mbart(config, spm_model, out_dir, weights="safetensors"):
    """A random MBartForConditionalGeneration (non-trivial values everywhere, layer norms
    included; final_logits_bias 0) saved as an HF snapshot: config.json, the weights
    (``save_pretrained``'s model.safetensors, or pytorch_model.bin as facebook/mbart-large-cc25
    has them) and sentencepiece.bpe.model."""
    from transformers import MBartForConditionalGeneration

    torch.manual_seed(0)
    model = MBartForConditionalGeneration(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    out_dir = Path(out_dir)
    if weights == "bin":
        out_dir.mkdir(parents=True)
        config.save_pretrained(str(out_dir))
        torch.save(model.state_dict(), str(out_dir / "pytorch_model.bin"))
    else:
        model.save_pretrained(str(out_dir))
    (out_dir / "sentencepiece.bpe.model").write_bytes(Path(spm_model).read_bytes())
    return out_dir


@pytest.fixture(scope="module")
def hf_mbart_dir(tmp_path_factory):
    """A tiny random HF MBartForConditionalGeneration saved with its sentencepiece model."""
    import sentencepiece as spm
    from transformers import MBartConfig

    root = tmp_path_factory.mktemp("hf_mbart")
    text = root / "text.txt"
    text.write_text("\n".join(german_sentences(100, seed=3)) + "\n", encoding="utf-8")
    train_sentencepiece(str(text), str(root / "spm"), 50, model_type="unigram", id_layout="mbart")
    sp = spm.SentencePieceProcessor(model_file=str(root / "spm.model"))
    # HF MBart ids: <s> <pad> </s> <unk>, pieces 3.. (id = piece + 1), language codes, <mask>
    vocab = sp.get_piece_size() + 1 + len(HF_LANGS) + 1
    config = MBartConfig(
        vocab_size=vocab, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=32, dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, scale_embedding=True, bos_token_id=0, pad_token_id=1,
        eos_token_id=2, decoder_start_token_id=2,
    )
    hf_dir = save_random_hf_mbart(config, root / "spm.model", root / "hf")
    return SimpleNamespace(dir=hf_dir, sp=sp, vocab=vocab, config=config)


def test_convert_hf_mbart_same_logits(hf_mbart_dir, tmp_path):
    from transformers import MBartForConditionalGeneration

    out = tmp_path / "fairseq"
    res = convert_hf_mbart(str(hf_mbart_dir.dir), str(out), langs=",".join(HF_LANGS))
    assert res["vocab_size"] == hf_mbart_dir.vocab
    assert sorted(os.listdir(tmp_path)) == ["fairseq"]  # no temporary directory left behind

    state = safe_torch_load(str(out / "model.pt"))
    args = state["args"]
    assert args.arch == "mbart_large" and args.task == "multilingual_denoising"
    assert (args.encoder_layers, args.encoder_embed_dim, args.encoder_ffn_embed_dim) == (1, 16, 32)
    assert args.no_scale_embedding is False  # config.scale_embedding=True
    assert args.encoder_normalize_before and args.decoder_normalize_before  # pre-norm
    # a complete training namespace: fairseq's own loader turns it into a full config
    loaded_cfg = checkpoint_utils.load_checkpoint_to_cpu(str(out / "model.pt"))["cfg"]
    assert loaded_cfg.model.arch == "mbart_large" and loaded_cfg.model.encoder_embed_dim == 16
    assert loaded_cfg.task._name == "multilingual_denoising"
    assert args.langs == "de_DE,en_XX" and args.add_lang_token
    assert set(state) == {"args", "model", "optimizer_history", "extra_state"}  # no cfg
    mbart_large_architecture(args)
    # the release's dict.txt: no tags, no <mask>; the task appends them (as for mbart.cc25)
    symbols = [line.split(" ")[0] for line in (out / "dict.txt").read_text("utf-8").splitlines()]
    assert "<mask>" not in symbols and not any(s.startswith("[") for s in symbols)
    dictionary = Dictionary.load(str(out / "dict.txt"))
    assert len(dictionary) + len(HF_LANGS) + 1 == hf_mbart_dir.vocab
    for lang in HF_LANGS:
        dictionary.add_symbol(f"[{lang}]")
    dictionary.add_symbol("<mask>")
    sp = hf_mbart_dir.sp
    n = sp.get_piece_size()
    for piece_id in (3, 10, n - 1):  # fairseq id == HF id == sentencepiece id + 1
        assert dictionary.index(sp.id_to_piece(piece_id)) == piece_id + 1
    assert dictionary.index("[de_DE]") == n + 1 and dictionary.index("[en_XX]") == n + 2
    assert dictionary.index("<mask>") == n + 3
    assert (out / "sentence.bpe.model").is_file()

    fs_model = build_fairseq_mbart(state, dictionary)
    hf_model = MBartForConditionalGeneration.from_pretrained(
        str(hf_mbart_dir.dir), local_files_only=True).eval()

    de = dictionary.index("[de_DE]")
    pieces = [dictionary.index(p) for p in sp.encode("Der Wind weht im Norden.", out_type=str)]
    src = torch.tensor([pieces + [2, de], list(reversed(pieces)) + [2, de]])
    prev = torch.tensor([[de] + pieces + [2], [de] + pieces[:3] + [5] * (len(pieces) - 3) + [2]])
    with torch.no_grad():
        fs_logits, _ = fs_model(src, torch.tensor([src.shape[1]] * 2), prev)
        hf_logits = hf_model(input_ids=src, decoder_input_ids=prev).logits
    assert fs_logits.shape == hf_logits.shape == (2, prev.shape[1], hf_mbart_dir.vocab)
    assert hf_logits.abs().max() > 0.1  # not a degenerate comparison
    assert torch.allclose(fs_logits, hf_logits, atol=1e-4), (fs_logits - hf_logits).abs().max()


def test_convert_then_trim_keeps_hf_log_probs(hf_mbart_dir, tmp_path):
    """The documented HF route: convert -> trim_mbart.py (one input format) -> renormalised HF."""
    from transformers import MBartForConditionalGeneration

    converted, trimmed = tmp_path / "converted", tmp_path / "trimmed"
    convert_hf_mbart(str(hf_mbart_dir.dir), str(converted), langs=",".join(HF_LANGS))
    sentences = german_sentences(4, seed=3)
    text = tmp_path / "train.de"
    text.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    run([sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", converted, "--train-text", text,
         "--out-dir", trimmed, "--langs", ",".join(HF_LANGS)])

    trim_state = safe_torch_load(str(trimmed / "model.pt"))
    trim_dict = Dictionary.load(str(trimmed / "dict.txt"))
    assert (trimmed / "dict.txt").read_text("utf-8").splitlines()[-3:] == [
        "[de_DE] 1", "[en_XX] 1", "<mask> 1"]
    assert len(trim_dict) < hf_mbart_dir.vocab
    trim_model = build_fairseq_mbart(trim_state, trim_dict)
    hf_model = MBartForConditionalGeneration.from_pretrained(
        str(hf_mbart_dir.dir), local_files_only=True).eval()
    sp = hf_mbart_dir.sp
    # HF id == fairseq id of the untrimmed vocabulary == sentencepiece id + 1 (pieces),
    # then the language codes and <mask>
    n = sp.get_piece_size()
    hf_ids = {sp.id_to_piece(i): i + 1 for i in range(3, n)}
    hf_ids.update({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "[de_DE]": n + 1,
                   "[en_XX]": n + 2, "<mask>": n + 3})
    kept = torch.tensor([hf_ids[trim_dict[i]] for i in range(len(trim_dict))])
    de = trim_dict.index("[de_DE]")
    pieces = [trim_dict.index(p) for p in sp.encode(sentences[0], out_type=str)]
    assert trim_dict.unk() not in pieces
    src = torch.tensor([pieces + [2, de]])
    prev = torch.tensor([[de] + pieces + [2]])
    with torch.no_grad():
        got, _ = trim_model(src, torch.tensor([src.shape[1]]), prev)
        hf_logits = hf_model(input_ids=kept[src], decoder_input_ids=kept[prev]).logits
    expected = torch.log_softmax(hf_logits[..., kept].double(), dim=-1)
    got = torch.log_softmax(got.double(), dim=-1)
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()


def test_convert_hf_mbart_refuses_bias_and_wrong_langs(hf_mbart_dir, tmp_path):
    from transformers import MBartForConditionalGeneration

    # the vocabulary leaves 2 language ids, no tokenizer files name them, 2 != 25
    with pytest.raises(ConversionError, match="--langs"):
        convert_hf_mbart(str(hf_mbart_dir.dir), str(tmp_path / "a"))
    with pytest.raises(ConversionError, match="3 language codes"):
        convert_hf_mbart(str(hf_mbart_dir.dir), str(tmp_path / "b"), langs="de_DE,en_XX,fr_XX")

    model = MBartForConditionalGeneration.from_pretrained(
        str(hf_mbart_dir.dir), local_files_only=True)
    with torch.no_grad():
        model.final_logits_bias[0, 5] = 1.0
    biased = tmp_path / "biased"
    model.save_pretrained(str(biased))
    (biased / "sentencepiece.bpe.model").write_bytes(
        (hf_mbart_dir.dir / "sentencepiece.bpe.model").read_bytes())
    with pytest.raises(ConversionError, match="final_logits_bias"):
        convert_hf_mbart(str(biased), str(tmp_path / "c"), langs=",".join(HF_LANGS))


# (d) bad input ---------------------------------------------------------------------------

def test_trim_wrong_langs_count(tiny_mbart, tmp_path):
    # default --langs: the 25 mbart.cc25 languages, but the tiny model has 1
    proc = run([sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", tiny_mbart.dir, "--train-text",
                tiny_mbart.text, "--out-dir", tmp_path / "out"], check=False)
    assert proc.returncode != 0
    assert "--langs" in proc.stderr and str(tiny_mbart.dir / "model.pt") in proc.stderr
    assert "implies 1 language code" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "model.pt").exists()


def test_trim_non_utf8_text_names_file_and_line(tiny_mbart, tmp_path):
    bad = tmp_path / "bad.de"
    bad.write_bytes("Der Hund läuft.\n".encode("utf-8") + b"Die Katze \xe4\xfc schl\xe4ft.\n")
    proc = run([sys.executable, "preprocess/trim_mbart.py", "--mbart-dir", tiny_mbart.dir, "--train-text", bad,
                "--out-dir", tmp_path / "out", "--langs", "de_DE"], check=False)
    assert proc.returncode != 0
    assert f"{bad}: line 2" in proc.stderr and "UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_trim_empty_text_and_missing_files(tiny_mbart, tmp_path):
    empty = tmp_path / "empty.de"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(TrimError, match=f"{empty}: training text is empty"):
        trim_mbart(str(tiny_mbart.dir), str(empty), str(tmp_path / "o"), "de_DE")
    missing = tmp_path / "no_such_dir"
    with pytest.raises(TrimError, match="model.pt: mBART checkpoint not found"):
        trim_mbart(str(missing), str(tiny_mbart.text), str(tmp_path / "o"), "de_DE")
    with pytest.raises(ValueError, match="line 1 is not valid UTF-8"):
        bad = tmp_path / "bad.txt"
        bad.write_bytes(b"\xff\n")
        pretrain_tiny_mbart(str(bad), str(tmp_path / "p"))
    assert not os.path.exists(tmp_path / "o" / "model.pt")


def test_pretrain_never_deletes_a_work_folder_it_did_not_write(tmp_path):
    text = tmp_path / "text.de"
    text.write_text("es regnet\n", encoding="utf-8")
    work = tmp_path / "p" / "work"
    work.mkdir(parents=True)
    (work / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=f"{work}: exists and was not written by pretrain_tiny_mbart.py"):
        pretrain_tiny_mbart(str(text), str(tmp_path / "p"))
    assert os.listdir(work) == ["notes.txt"]
