#!/usr/bin/env python3
"""Convert a Hugging Face ``MBartForConditionalGeneration`` to a fairseq mBART checkpoint.

For users who have mBART in the Hugging Face format (e.g. a local copy of
``facebook/mbart-large-cc25``) instead of the fairseq release. ``transformers`` is an
optional extra (``pip install .[hf]``); nothing is downloaded (``local_files_only=True``).

Weights: HF MBart and fairseq's mBART use the same module names below ``model.``
(``encoder.layers.N.self_attn.q_proj``, ``..._layer_norm``, ``fc1``, ``layernorm_embedding``,
the final ``layer_norm`` ...); ``model.shared`` / the embeddings become
``encoder.embed_tokens``, ``decoder.embed_tokens`` and ``decoder.output_projection``
(``lm_head``). Both position tables carry the same 2 offset rows (HF: ``position + 2``;
fairseq: ``padding_idx + 1 + position``), so they are copied as they are. HF mBART is
pre-norm (fairseq ``--encoder/decoder-normalize-before``) and scales embeddings only when
``config.scale_embedding`` (fairseq: unless ``no_scale_embedding``).

Vocabulary: HF id ``i >= 4`` is sentencepiece piece ``i - 1``, followed by the language
codes and ``<mask>``. ``OUT/dict.txt`` is the release's plain dictionary: pieces 3.. (line k
= piece k + 3), WITHOUT language tags and ``<mask>``; as for mbart.cc25, the embedding has
``len(Dictionary.load(OUT/dict.txt)) + len(langs) + 1`` rows, the ``[xx_XX]`` tag rows and
the ``<mask>`` row that fairseq's ``multilingual_denoising`` task appends.

Output: the mbart.cc25 release layout, i.e. exactly what ``preprocess/trim_mbart.py``
reads: ``OUT/model.pt`` (``{"args": Namespace(arch="mbart_large",
task="multilingual_denoising", langs=..., add_lang_token=True, ...), "model": state_dict,
"optimizer_history": ..., "extra_state": ...}``, no ``cfg``, as the release; the weights use
today's key names, which fairseq's state-dict upgrade leaves as they are),
``OUT/dict.txt`` and ``OUT/sentence.bpe.model``, written to a temporary directory and moved
into ``OUT`` at the end.

Example (a local snapshot of ``facebook/mbart-large-cc25``)::

    python preprocess/convert_hf_mbart.py --hf-dir mbart-large-cc25 --out-dir mbart.cc25
    python preprocess/trim_mbart.py --mbart-dir mbart.cc25 --train-text train.de \
        --out-dir mbart.cc25.trimmed
"""
import argparse
import json
import os
import re
import shutil
import sys

from flallm_plugin.data.atomic_file import staged_output_dir
from flallm_plugin.data.mbart_vocab import MBART_CC25_LANGS, parse_lang_codes

SPM_NAMES = ("sentencepiece.bpe.model", "sentence.bpe.model")
# HF activation name -> fairseq activation name
ACTIVATIONS = {
    "gelu": "gelu",
    "relu": "relu",
    "gelu_new": "gelu_accurate",
    "gelu_pytorch_tanh": "gelu_accurate",
    "tanh": "tanh",
    "linear": "linear",
}
# module names below ``model.encoder.`` / ``model.decoder.`` copied as they are
_LAYER_RE = re.compile(
    r"^(encoder|decoder)\.layers\.\d+\."
    r"(self_attn|encoder_attn)\.(k_proj|v_proj|q_proj|out_proj)\.(weight|bias)$"
    r"|^(encoder|decoder)\.layers\.\d+\."
    r"(self_attn_layer_norm|encoder_attn_layer_norm|final_layer_norm|fc1|fc2)\.(weight|bias)$"
    r"|^(encoder|decoder)\.(layernorm_embedding|layer_norm)\.(weight|bias)$"
)


class ConversionError(ValueError):
    """The Hugging Face model cannot be converted (the message says why)."""


def _import_transformers():
    try:
        import transformers  # noqa: F401
        from transformers import MBartForConditionalGeneration
    except ImportError as e:
        raise ConversionError(
            "convert_hf_mbart needs the optional dependency 'transformers' "
            "(pip install -r requirements-extra.txt, or pip install .[hf])"
        ) from e
    return MBartForConditionalGeneration


def find_spm_model(hf_dir):
    """The sentencepiece model of an HF MBart directory."""
    for name in SPM_NAMES:
        path = os.path.join(hf_dir, name)
        if os.path.isfile(path):
            return path
    raise ConversionError(
        f"{hf_dir}: no sentencepiece model ({' or '.join(SPM_NAMES)}) in the HF directory"
    )


def _tokenizer_added_tokens(hf_dir):
    """``{id: token}`` of the added tokens listed in the HF tokenizer files (if any)."""
    tokens = {}
    path = os.path.join(hf_dir, "tokenizer.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for tok in json.load(f).get("added_tokens") or []:
                tokens[int(tok["id"])] = tok["content"]
    path = os.path.join(hf_dir, "tokenizer_config.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for idx, tok in (json.load(f).get("added_tokens_decoder") or {}).items():
                tokens.setdefault(int(idx), tok["content"] if isinstance(tok, dict) else tok)
    return tokens


def resolve_langs(hf_dir, first_lang_id, num_langs, langs=None):
    """The ``num_langs`` language codes at ids ``first_lang_id..``, in id order.

    From ``langs`` if given, else from the HF tokenizer files, else the 25 mbart.cc25
    codes when the vocabulary has room for exactly 25.
    """
    if langs is not None:
        langs = parse_lang_codes(langs)
        source = "--langs"
    else:
        added = _tokenizer_added_tokens(hf_dir)
        ids = range(first_lang_id, first_lang_id + num_langs)
        if added and all(i in added for i in ids):
            langs = [added[i] for i in ids]
            source = f"{hf_dir}/tokenizer files"
        elif num_langs == len(MBART_CC25_LANGS):
            langs = list(MBART_CC25_LANGS)
            source = "the mbart.cc25 defaults"
        else:
            raise ConversionError(
                f"{hf_dir}: the vocabulary leaves {num_langs} language-code ids "
                f"({first_lang_id}..{first_lang_id + num_langs - 1}) and the tokenizer files "
                "do not name them: pass --langs (comma-separated, in id order)"
            )
    if len(langs) != num_langs:
        raise ConversionError(
            f"{hf_dir}: {source} gives {len(langs)} language codes but the vocabulary has "
            f"{num_langs} language-code ids between the sentencepiece pieces and <mask>"
        )
    return [lang.strip("[]") for lang in langs]


def build_fairseq_args(config, share_all, share_out, langs):
    """A complete fairseq ``args`` namespace (arch ``mbart_large``) for an HF MBart config.

    It is parsed by fairseq's own training parser (as the namespace of a real training
    run, like mbart.cc25's), so that fairseq's ``checkpoint_utils.load_checkpoint_to_cpu``
    can turn it into a full config; the data path is a placeholder.
    """
    from fairseq import options
    from fairseq.models.bart.model import mbart_large_architecture

    act = config.activation_function
    if act not in ACTIVATIONS:
        raise ConversionError(
            f"config.activation_function={act!r} has no fairseq equivalent "
            f"(supported: {', '.join(sorted(ACTIVATIONS))})"
        )
    d_model, max_pos = config.d_model, config.max_position_embeddings
    values = {
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "encoder_embed_dim": d_model,
        "decoder_embed_dim": d_model,
        "encoder_ffn_embed_dim": config.encoder_ffn_dim,
        "decoder_ffn_embed_dim": config.decoder_ffn_dim,
        "encoder_attention_heads": config.encoder_attention_heads,
        "decoder_attention_heads": config.decoder_attention_heads,
        "max_source_positions": max_pos,
        "max_target_positions": max_pos,
        "tokens_per_sample": max_pos,
        "activation_fn": ACTIVATIONS[act],
        "dropout": config.dropout,
        "attention_dropout": config.attention_dropout,
        "activation_dropout": config.activation_dropout,
        "encoder_layerdrop": config.encoder_layerdrop,
        "decoder_layerdrop": config.decoder_layerdrop,
    }
    cli = [
        "mbart-data-placeholder", "--task", "multilingual_denoising", "--arch", "mbart_large",
        "--langs", ",".join(langs), "--add-lang-token",
    ]
    for key, value in values.items():
        cli += ["--" + key.replace("_", "-"), str(value)]
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=cli)
    # store_true flags whose architecture default may differ: set them explicitly
    args.encoder_normalize_before = True  # HF MBart layers are pre-norm
    args.decoder_normalize_before = True
    args.layernorm_embedding = True
    args.encoder_learned_pos = True
    args.decoder_learned_pos = True
    args.no_scale_embedding = not bool(config.scale_embedding)
    args.share_all_embeddings = share_all
    args.share_decoder_input_output_embed = share_out
    mbart_large_architecture(args)
    for key, value in values.items():  # sanity: nothing overridden by the architecture
        if getattr(args, key) != value:
            raise ConversionError(f"internal: args.{key}={getattr(args, key)!r}, expected {value!r}")
    return args


def map_state_dict(hf_model):
    """fairseq mBART state dict of an HF ``MBartForConditionalGeneration``.

    Returns:
        tuple: (state dict, share_all_embeddings, share_decoder_input_output_embed)
    """
    import torch

    core = hf_model.model
    enc_emb = core.encoder.embed_tokens.weight.detach()
    dec_emb = core.decoder.embed_tokens.weight.detach()
    out_proj = hf_model.lm_head.weight.detach()
    bias = hf_model.final_logits_bias.detach()
    if torch.count_nonzero(bias).item() != 0:
        raise ConversionError(
            "final_logits_bias is not all zeros: fairseq mBART's output projection has no "
            "bias, the converted model would compute different logits"
        )
    share_all = enc_emb.data_ptr() == dec_emb.data_ptr() or torch.equal(enc_emb, dec_emb)
    share_out = dec_emb.data_ptr() == out_proj.data_ptr() or torch.equal(dec_emb, out_proj)

    state = {}
    emb = enc_emb.clone()
    state["encoder.embed_tokens.weight"] = emb
    state["decoder.embed_tokens.weight"] = emb if share_all else dec_emb.clone()
    state["decoder.output_projection.weight"] = (
        state["decoder.embed_tokens.weight"] if share_out else out_proj.clone()
    )
    max_pos = hf_model.config.max_position_embeddings
    for side in ("encoder", "decoder"):
        pos = getattr(core, side).embed_positions.weight.detach()
        if pos.shape[0] != max_pos + 2:
            raise ConversionError(
                f"model.{side}.embed_positions has {pos.shape[0]} rows, expected "
                f"max_position_embeddings + 2 = {max_pos + 2} (HF MBart's offset of 2, the "
                "same as fairseq's padding_idx + 1)"
            )
        state[f"{side}.embed_positions.weight"] = pos.clone()
        state[f"{side}.version"] = torch.Tensor([3])

    handled = {
        "shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight",
        "encoder.embed_positions.weight", "decoder.embed_positions.weight",
    }
    for name, tensor in core.state_dict().items():
        if name in handled:
            continue
        if not _LAYER_RE.match(name):
            raise ConversionError(f"unexpected HF MBart weight model.{name}: no fairseq equivalent")
        state[name] = tensor.detach().clone()
    return state, share_all, share_out


def write_dict(sp, path):
    """The release's plain fairseq dict.txt: pieces 3.. (line k = piece k + 3), no tags, no ``<mask>``."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(3, sp.get_piece_size()):
            f.write(f"{sp.id_to_piece(i)} 1\n")


def convert_hf_mbart(hf_dir, out_dir, langs=None):
    """Convert the HF MBart in ``hf_dir`` into ``out_dir`` (fairseq format).

    Args:
        hf_dir (str): ``save_pretrained`` directory with a ``sentencepiece.bpe.model``.
        out_dir (str): output directory (created).
        langs (str or Sequence[str], optional): language codes in id order (default:
            from the tokenizer files, else the 25 mbart.cc25 codes).

    Returns:
        dict: ``vocab_size``, ``langs``, ``args`` and the output paths ``model``,
        ``dict``, ``spm``.
    """
    import sentencepiece as spm
    import torch

    if not os.path.isdir(hf_dir):
        raise ConversionError(f"{hf_dir}: HF model directory not found")
    MBartForConditionalGeneration = _import_transformers()
    spm_path = find_spm_model(hf_dir)
    try:
        hf_model = MBartForConditionalGeneration.from_pretrained(hf_dir, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ConversionError(f"{hf_dir}: cannot load an MBartForConditionalGeneration: {e}") from e
    hf_model.eval()
    config = hf_model.config
    if (config.bos_token_id, config.pad_token_id, config.eos_token_id) != (0, 1, 2):
        raise ConversionError(
            f"{hf_dir}: expected bos/pad/eos ids 0/1/2 (fairseq's <s> <pad> </s>), got "
            f"{config.bos_token_id}/{config.pad_token_id}/{config.eos_token_id}"
        )

    sp = spm.SentencePieceProcessor(model_file=spm_path)
    n_pieces = sp.get_piece_size()
    rows = hf_model.model.shared.weight.shape[0]
    num_langs = rows - (n_pieces + 1) - 1  # HF ids: specials + pieces 3.. = n_pieces + 1
    if num_langs < 0 or rows != config.vocab_size:
        raise ConversionError(
            f"{hf_dir}: vocabulary of {rows} rows (config.vocab_size={config.vocab_size}) does "
            f"not fit {spm_path} ({n_pieces} pieces -> {n_pieces + 1} ids + language codes + "
            "<mask>)"
        )
    langs = resolve_langs(hf_dir, n_pieces + 1, num_langs, langs)

    state, share_all, share_out = map_state_dict(hf_model)
    args = build_fairseq_args(config, share_all, share_out, langs)
    dict_rows = 4 + (n_pieces - 3) + len(langs) + 1  # dict.txt + tags + <mask>
    if dict_rows != rows:
        raise ConversionError(f"internal: dict.txt would give {dict_rows} rows, model has {rows}")

    checkpoint = {
        "args": args,
        "model": state,
        "optimizer_history": [
            {
                "criterion_name": "CrossEntropyCriterion",
                "optimizer_name": "FairseqAdam",
                "lr_scheduler_state": {"best": None},
                "num_updates": 0,
            }
        ],
        "extra_state": {},
    }
    with staged_output_dir(out_dir) as tmp:
        torch.save(checkpoint, os.path.join(tmp, "model.pt"))
        write_dict(sp, os.path.join(tmp, "dict.txt"))
        shutil.copyfile(spm_path, os.path.join(tmp, "sentence.bpe.model"))
    out_model = os.path.join(out_dir, "model.pt")
    out_dict = os.path.join(out_dir, "dict.txt")
    out_spm = os.path.join(out_dir, "sentence.bpe.model")
    return {
        "vocab_size": rows,
        "langs": langs,
        "args": args,
        "model": out_model,
        "dict": out_dict,
        "spm": out_spm,
    }


def get_parser():
    parser = argparse.ArgumentParser(
        description="Convert a Hugging Face MBartForConditionalGeneration directory to a "
        "fairseq mBART checkpoint (model.pt, dict.txt, sentence.bpe.model)."
    )
    parser.add_argument(
        "--hf-dir", required=True,
        help="local HF model directory (config.json, weights, sentencepiece.bpe.model)",
    )
    parser.add_argument("--out-dir", required=True, help="output directory")
    parser.add_argument(
        "--langs", default=None,
        help="language codes in id order, comma-separated (default: from the tokenizer "
        "files, else the 25 mbart.cc25 codes)",
    )
    return parser


def cli_main(argv=None):
    args = get_parser().parse_args(argv)
    try:
        res = convert_hf_mbart(args.hf_dir, args.out_dir, args.langs)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    a = res["args"]
    print(
        f"converted: {a.encoder_layers}+{a.decoder_layers} layers, dim {a.encoder_embed_dim}, "
        f"vocabulary {res['vocab_size']} ({len(res['langs'])} languages + <mask>)"
    )
    print(f"wrote {res['model']}, {res['dict']}, {res['spm']}")
    print(f"next: python preprocess/trim_mbart.py --mbart-dir {os.path.dirname(res['model'])} "
          f"--langs {','.join(res['langs'])} --train-text TRAIN_TEXT --out-dir TRIMMED_DIR")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
