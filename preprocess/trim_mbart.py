#!/usr/bin/env python3
"""Trim an mBART checkpoint's vocabulary to the pieces a training text uses.

mbart.cc25 has 250,027 embedding rows; a sign-language corpus in one language uses a few
thousand of them. Trimming keeps the 4 specials (``<s> <pad> </s> <unk>``), every
dictionary symbol the sentencepiece model produces on the training text, all language
tags and ``<mask>``, in their original order, and slices the embedding matrices
(``encoder.embed_tokens.weight``, ``decoder.embed_tokens.weight`` and
``decoder.output_projection.weight``) accordingly. The trimmed model computes exactly the
same logits on the kept rows, i.e. its probabilities are the original ones renormalised
over the kept vocabulary.

Input (the official release layout, e.g. ``mbart.cc25.v2.tar.gz`` unpacked, or the output
of ``preprocess/convert_hf_mbart.py``)::

    DIR/model.pt            fairseq checkpoint; embedding rows = len(dict) + len(langs) + 1
    DIR/dict.txt            plain fairseq dictionary (no language tags, no <mask>)
    DIR/sentence.bpe.model  sentencepiece model

The checkpoint is read with fairseq's own loader (its ``args`` become a ``cfg``) and its
state dict goes through fairseq's own upgrade: the model is built from the checkpoint's
configuration with the dictionary the ``multilingual_denoising`` task would use, and its
``upgrade_state_dict`` turns the release's fused ``in_proj_weight``/``in_proj_bias``
attention into ``q/k/v_proj`` and adds ``decoder.output_projection.weight`` (tied to
``decoder.embed_tokens.weight``). Every key and shape is then checked against that model.
(For mbart.cc25 building it takes about 15 s and as much memory again as the weights, 2.4 GB.)

Output: ``OUT/model.pt``: the upgraded weights (today's fairseq key layout; tied embeddings
stay one tensor) with the input's configuration entry as it was (``args`` for the release,
which fairseq's loaders turn into a ``cfg`` as for the release itself, else ``cfg``); the
optimizer state, whose moments have the old vocabulary's shape, is dropped as with
fairseq's ``--no-save-optimizer-state``. ``OUT/dict.txt``: kept symbols with their counts,
then ``[xx_XX] 1`` tag lines and ``<mask> 1``, so ``Dictionary.load(OUT/dict.txt)`` has
exactly the embedding's row count and nothing must be appended (stage 2's
``sign_translation`` task reads it as it is). ``OUT/sentence.bpe.model``: copied. The files
are written to a temporary directory and moved into ``OUT`` at the end.

Example::

    python preprocess/trim_mbart.py --mbart-dir mbart.cc25 --train-text train.de \\
        --out-dir mbart.cc25.trimmed
"""
import argparse
import copy
import os
import shutil
import sys
from types import SimpleNamespace

from flallm_plugin.data.atomic_file import staged_output_dir
from flallm_plugin.data.mbart_vocab import MBART_CC25_LANGS, parse_lang_codes, release_dictionary
from flallm_plugin.data.text_io import read_utf8_lines

EMBEDDING_KEYS = (
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.output_projection.weight",
)
VOCAB_SIZE_FIELDS = ("vocab_size", "num_embeddings", "n_vocab")
NUM_SPECIALS = 4  # <s> <pad> </s> <unk>


class TrimError(ValueError):
    """Bad input to the trimming tool (the message names the offending file)."""


def _require_file(path, what):
    if not os.path.exists(path) or os.path.isdir(path):
        raise TrimError(f"{path}: {what} not found")
    return path


def read_dict_lines(path):
    """Lines of a fairseq ``dict.txt`` as ``(symbol, raw_line)`` pairs."""
    entries = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                raise TrimError(f"{path}: line {lineno} is not valid UTF-8 ({e.reason})") from e
            if not line.strip():
                continue
            fields = line.rstrip().split(" ")
            if line.rstrip().endswith("#fairseq:overwrite"):
                fields = fields[:-1]
            if len(fields) < 2:
                raise TrimError(f"{path}: line {lineno}: expected '<symbol> <count>', got {line!r}")
            entries.append((" ".join(fields[:-1]), line))
    return entries


def read_train_text(path):
    """Non-empty lines of a UTF-8 text file; errors name the file (and the line)."""
    _require_file(path, "training text")
    try:
        lines = [line.strip() for line in read_utf8_lines(path, "training text")]
    except ValueError as e:
        raise TrimError(str(e)) from e
    lines = [line for line in lines if line]
    if not lines:
        raise TrimError(f"{path}: training text is empty (no non-blank line)")
    return lines


def _parse_langs(langs):
    if langs is None:
        return list(MBART_CC25_LANGS)
    langs = parse_lang_codes(langs)
    if not langs:
        raise TrimError("--langs: no language code given")
    return langs


def _update_vocab_fields(obj, old, new):
    """Set vocabulary-size fields (``vocab_size`` ...) equal to ``old`` to ``new``, recursively."""
    n = 0
    if isinstance(obj, argparse.Namespace):
        obj = vars(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in VOCAB_SIZE_FIELDS and value == old:
                obj[key] = new
                n += 1
            elif isinstance(value, (dict, argparse.Namespace)):
                n += _update_vocab_fields(value, old, new)
    return n


def select_kept_indices(dict_symbols, spm_model, lines, num_tags):
    """Indices (fairseq ids) to keep: specials, used pieces, tags and ``<mask>``.

    Args:
        dict_symbols (list[str]): the dict.txt symbols (fairseq ids 4..).
        spm_model (str): sentencepiece model file.
        lines (list[str]): the training text.
        num_tags (int): number of language tags appended after the dictionary.

    Returns:
        tuple: (sorted kept ids, number of pieces not in the dictionary (mapped to <unk>))
    """
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=spm_model)
    index = {sym: NUM_SPECIALS + i for i, sym in enumerate(dict_symbols)}
    kept = set(range(NUM_SPECIALS))
    unknown = 0
    for line in lines:
        for piece in sp.encode(line, out_type=str):
            idx = index.get(piece)
            if idx is None:
                unknown += 1
            else:
                kept.add(idx)
    first_tag = NUM_SPECIALS + len(dict_symbols)
    kept.update(range(first_tag, first_tag + num_tags + 1))  # tags and <mask>
    return sorted(kept), unknown


def upgrade_mbart_state_dict(state, dictionary, path):
    """Upgrade ``state['model']`` in place with fairseq's own code and check it.

    The model is built by ``fairseq.models.build_model`` from the checkpoint's
    ``cfg.model`` (as fairseq's loaders do) with ``dictionary``; its ``upgrade_state_dict``
    runs every module's ``upgrade_state_dict_named`` (BART, transformer encoder/decoder,
    multi-head attention). The upgraded keys and shapes must be exactly the model's.

    Args:
        state (dict): a checkpoint loaded by ``checkpoint_utils.load_checkpoint_to_cpu``.
        dictionary (fairseq.data.Dictionary): the dictionary the checkpoint was trained with
            (for the release: dict.txt + language tags + ``<mask>``).
        path (str): the checkpoint file (for error messages).
    """
    from fairseq import models
    from fairseq.models.bart import BARTModel

    cfg = state.get("cfg")
    model_cfg = cfg.get("model") if cfg is not None else None
    if model_cfg is None:
        raise TrimError(f"{path}: checkpoint has no model configuration (args or cfg.model)")
    arch = getattr(model_cfg, "arch", None) or getattr(model_cfg, "_name", None)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    model = models.build_model(copy.deepcopy(model_cfg), task)
    if not isinstance(model, BARTModel):
        raise TrimError(f"{path}: architecture {arch!r} is not an mBART/BART model")
    model.upgrade_state_dict(state["model"])
    expected = {k: v.shape for k, v in model.state_dict().items()}
    del model
    got = state["model"]
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    shapes = sorted(k for k in set(expected) & set(got) if tuple(expected[k]) != tuple(got[k].shape))
    if missing or unexpected or shapes:
        raise TrimError(
            f"{path}: the weights do not match the checkpoint's own configuration (arch {arch!r}) "
            f"even after fairseq's state-dict upgrade: missing {missing[:8]}, unexpected "
            f"{unexpected[:8]}, shape mismatches {shapes[:8]}"
        )


def _plain_config(state):
    """The checkpoint's configuration entry as the input file had it.

    fairseq's loader turns a release's ``args`` into an OmegaConf ``cfg``; the release form
    (``args`` only) is kept, and a ``cfg`` is saved as fairseq's trainer saves it (a plain
    container).
    """
    from omegaconf import OmegaConf

    if state.get("args") is not None:
        state.pop("cfg", None)
    elif OmegaConf.is_config(state.get("cfg")):
        state["cfg"] = OmegaConf.to_container(state["cfg"], resolve=True, enum_to_str=True)


def trim_mbart(mbart_dir, train_text, out_dir, langs=None):
    """Trim ``mbart_dir``'s checkpoint to the vocabulary of ``train_text`` into ``out_dir``.

    Args:
        mbart_dir (str): directory with ``model.pt``, ``dict.txt``, ``sentence.bpe.model``.
        train_text (str): UTF-8 training text (raw sentences, one per line).
        out_dir (str): output directory (created).
        langs (str or Sequence[str], optional): the checkpoint's language codes in tag
            order; default: the 25 mbart.cc25 languages.

    Returns:
        dict: ``old_vocab``, ``new_vocab`` (embedding rows), ``kept_ids`` (original ids of
        the kept rows, in order), ``unknown_pieces`` and the output paths ``model``,
        ``dict``, ``spm``.
    """
    import torch

    from flallm_plugin.checkpoint_safety import load_fairseq_checkpoint

    langs = _parse_langs(langs)
    model_path = _require_file(os.path.join(mbart_dir, "model.pt"), "mBART checkpoint")
    dict_path = _require_file(os.path.join(mbart_dir, "dict.txt"), "mBART dictionary")
    spm_path = _require_file(os.path.join(mbart_dir, "sentence.bpe.model"), "sentencepiece model")
    lines = read_train_text(train_text)
    entries = read_dict_lines(dict_path)
    symbols = [sym for sym, _ in entries]
    if symbols and symbols[-1] == "<mask>":
        raise TrimError(
            f"{dict_path}: already ends with the language tags and <mask>; expected the plain "
            "release dict.txt (was this directory trimmed already? trim the original release)"
        )

    # fairseq's loader: weights_only unpickling, the release's ``args`` upgraded to a ``cfg``;
    # its errors name the file
    state = load_fairseq_checkpoint(model_path)
    model_state = state["model"]
    if "encoder.embed_tokens.weight" not in model_state:
        raise TrimError(f"{model_path}: no encoder.embed_tokens.weight (not an mBART checkpoint?)")
    old_rows = model_state["encoder.embed_tokens.weight"].shape[0]
    expected = NUM_SPECIALS + len(symbols) + len(langs) + 1
    if old_rows != expected:
        implied = old_rows - NUM_SPECIALS - len(symbols) - 1
        raise TrimError(
            f"{model_path}: embedding has {old_rows} rows but {dict_path} gives "
            f"{NUM_SPECIALS} specials + {len(symbols)} symbols, so {len(langs)} language tags "
            f"(--langs) + <mask> would make {expected}; the checkpoint implies {implied} "
            "language code(s): pass the right --langs (comma-separated, in tag order)"
        )

    dictionary = release_dictionary(dict_path, langs)
    if len(dictionary) != old_rows:
        raise TrimError(
            f"{dict_path}: {len(dictionary)} entries once the language tags and <mask> are "
            f"appended, but {model_path} has {old_rows} embedding rows (does dict.txt already "
            "contain a language tag?)"
        )
    upgrade_mbart_state_dict(state, dictionary, model_path)

    kept, unknown = select_kept_indices(symbols, spm_path, lines, len(langs))
    kept_t = torch.tensor(kept, dtype=torch.long)
    sliced = {}  # data_ptr -> sliced tensor: tied embeddings stay tied (saved once)
    for key in EMBEDDING_KEYS:
        weight = model_state[key]  # all present: the upgraded keys are exactly the model's
        if weight.shape[0] != old_rows:
            raise TrimError(
                f"{model_path}: {key} has {weight.shape[0]} rows, expected {old_rows}"
            )
        ptr = weight.data_ptr()
        if ptr not in sliced:
            sliced[ptr] = weight.index_select(0, kept_t).clone()
        model_state[key] = sliced[ptr]
    new_rows = len(kept)
    _plain_config(state)
    for key in ("args", "cfg"):
        if state.get(key) is not None:
            _update_vocab_fields(state[key], old_rows, new_rows)
    # Adam moments have the old vocabulary's shape: drop them (fairseq-compatible, as if
    # saved with --no-save-optimizer-state); fine-tuning resets the optimizer anyway.
    state.pop("last_optimizer_state", None)
    for hist in state.get("optimizer_history") or []:
        if isinstance(hist, dict):
            hist.pop("optimizer", None)

    with staged_output_dir(out_dir) as tmp:
        torch.save(state, os.path.join(tmp, "model.pt"))
        with open(os.path.join(tmp, "dict.txt"), "w", encoding="utf-8") as f:
            for idx in kept:
                if NUM_SPECIALS <= idx < NUM_SPECIALS + len(symbols):
                    f.write(entries[idx - NUM_SPECIALS][1] + "\n")
            for lang in langs:
                f.write(f"[{lang}] 1\n")
            f.write("<mask> 1\n")
        shutil.copyfile(spm_path, os.path.join(tmp, "sentence.bpe.model"))
    out_model = os.path.join(out_dir, "model.pt")
    out_dict = os.path.join(out_dir, "dict.txt")
    out_spm = os.path.join(out_dir, "sentence.bpe.model")
    return {
        "old_vocab": old_rows,
        "new_vocab": new_rows,
        "kept_ids": kept,
        "unknown_pieces": unknown,
        "model": out_model,
        "dict": out_dict,
        "spm": out_spm,
    }


def get_parser():
    parser = argparse.ArgumentParser(
        description="Trim an mBART checkpoint (model.pt, dict.txt, sentence.bpe.model) to "
        "the vocabulary a training text uses."
    )
    parser.add_argument(
        "--mbart-dir", required=True,
        help="directory with model.pt, dict.txt and sentence.bpe.model (e.g. mbart.cc25)",
    )
    parser.add_argument(
        "--train-text", required=True, help="raw UTF-8 training text, one sentence per line"
    )
    parser.add_argument("--out-dir", required=True, help="output directory")
    parser.add_argument(
        "--langs", default=",".join(MBART_CC25_LANGS),
        help="the checkpoint's language codes in tag order, comma-separated "
        "(default: the 25 mbart.cc25 languages)",
    )
    return parser


def cli_main(argv=None):
    args = get_parser().parse_args(argv)
    try:
        res = trim_mbart(args.mbart_dir, args.train_text, args.out_dir, args.langs)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"vocabulary: {res['old_vocab']} -> {res['new_vocab']} embedding rows")
    if res["unknown_pieces"]:
        print(f"note: {res['unknown_pieces']} pieces of the text are not in dict.txt (<unk>)")
    print(f"wrote {res['model']}, {res['dict']}, {res['spm']}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
