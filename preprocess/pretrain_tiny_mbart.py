#!/usr/bin/env python3
"""Pre-train a tiny mBART with fairseq's own code, in the mbart.cc25 release format.

The tests and the synthetic demo need a real "LLM" to fine-tune, but the 610M-parameter
mbart.cc25 checkpoint is far too large (and nothing here may download weights). This
tool trains a tiny model with exactly the same recipe and file layout:

1. a sentencepiece model is trained on the text (or an existing one is reused);
2. the text is sentencepiece-encoded and binarised with ``fairseq-preprocess
   --only-source`` into the ``multilingual_denoising`` layout
   (``DATA/dict.txt``, ``DATA/<lang>/{train,valid}.{bin,idx}``);
3. ``fairseq-train DATA --task multilingual_denoising --add-lang-token --arch mbart_base``
   with tiny sizes, pre-norm layers (as mbart.cc25) and the mBART span-masking noise.

``out_dir`` then holds what the official release (``mbart.cc25.v2.tar.gz``) ships, in
its format::

    model.pt            the trained weights saved as the release's checkpoint is (see
                        :func:`to_release_form`): the pre-2020 fairseq key layout (fused
                        ``in_proj_weight``/``in_proj_bias`` attention, no
                        ``decoder.output_projection.weight``, which is tied to
                        ``decoder.embed_tokens.weight``), an ``args`` namespace
                        (``arch='mbart_large'``, ``task='multilingual_denoising'``) and no
                        ``cfg``. Its embeddings have len(Dictionary.load(dict.txt)) +
                        len(langs) + 1 rows: the ``[xx_XX]`` language tags and ``<mask>``
                        are appended by the task when it loads the dictionary.
    dict.txt            the plain fairseq dictionary, WITHOUT language tags / <mask>;
                        line k is sentencepiece piece k + 3 (ids 0..2 are unk, <s>, </s>)
    sentence.bpe.model  the sentencepiece model

plus ``work/`` (encoded text, binarised data, fairseq-train logs, and
``work/fairseq_model.pt``, the checkpoint exactly as today's fairseq-train wrote it).

Example::

    python preprocess/pretrain_tiny_mbart.py --text sentences.de --out-dir tiny_mbart \\
        --langs de_DE --max-update 300
"""
import argparse
import collections
import os
import shutil
import subprocess
import sys
import time

from flallm_plugin.data.atomic_file import atomic_path
from flallm_plugin.data.sentencepiece_trainer import train_sentencepiece
from flallm_plugin.data.text_io import read_utf8_lines

# sentencepiece ids 0..2 (unk, <s>, </s>) are fairseq's specials; its regular pieces start
# at 3 and fairseq id = sentencepiece id + 1 (fairseq also has <pad> at 1).
SPM_FIRST_REGULAR_ID = 3
WORK_MARKER = ".flallm-pretrain-tiny-mbart"  # in OUT/work: a later run may delete and re-create it


def _fairseq_script(name):
    """Path of a fairseq console script installed next to the running interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path}: fairseq script not found next to {sys.executable}; "
            "install ve-fairseq into this environment (see the Makefile)"
        )
    return path


def _run(cmd, log_path, what, done_marker=None):
    """Run ``cmd``; write its output to ``log_path``; raise with the stderr tail on failure.

    A run killed by a signal *after* printing ``done_marker`` (an abort while the
    interpreter shuts down, once all outputs are written) is accepted; the caller then
    checks the outputs.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny model: 1 thread is fastest
    env.setdefault("MKL_NUM_THREADS", "1")
    env["PYTHONWARNINGS"] = "ignore"
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    with open(log_path, "w", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.write(proc.stdout)
        f.write(proc.stderr)
    if proc.returncode < 0 and done_marker and done_marker in proc.stdout + proc.stderr:
        print(
            f"warning: {what} was killed by signal {-proc.returncode} after finishing "
            f"(see {log_path}); using its outputs",
            file=sys.stderr,
        )
        return proc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-25:])
        raise RuntimeError(
            f"{what} failed with exit code {proc.returncode} (full log: {log_path}):\n{tail}"
        )
    return proc


def read_text_lines(path):
    """Non-empty, stripped lines of a UTF-8 text file (clear errors naming the file)."""
    lines = [line.strip() for line in read_utf8_lines(path, "text file")]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{path}: the text file is empty (no non-blank line)")
    return lines


def write_fairseq_dict(sp, encoded_lines, path):
    """Write the plain fairseq ``dict.txt`` of a sentencepiece model (no tags, no <mask>).

    Line k is piece ``k + 3`` (mbart.cc25 convention, so that fairseq id = spm id + 1);
    the count is the piece's frequency in the encoded text.
    """
    counts = collections.Counter(p for line in encoded_lines for p in line.split())
    with open(path, "w", encoding="utf-8") as f:
        for i in range(SPM_FIRST_REGULAR_ID, sp.get_piece_size()):
            piece = sp.id_to_piece(i)
            f.write(f"{piece} {counts.get(piece, 0)}\n")
    return sp.get_piece_size() - SPM_FIRST_REGULAR_ID


def to_release_form(state):
    """A fairseq-train checkpoint re-saved as mbart.cc25's ``model.pt`` is.

    The release predates fairseq's split attention projections and its
    ``decoder.output_projection`` module, and pickles the training ``args`` (no ``cfg``):

    - ``<prefix>.{q,k,v}_proj.{weight,bias}`` become ``<prefix>.in_proj_{weight,bias}``,
      q, k and v concatenated in that order (the inverse of fairseq's
      ``MultiheadAttention.upgrade_state_dict_named``);
    - ``decoder.output_projection.weight`` is dropped: it must be the tied
      ``decoder.embed_tokens.weight``, which fairseq's ``TransformerDecoder`` upgrade
      puts back;
    - the top-level keys are ``args`` (the model namespace of ``cfg``, which holds every
      training argument, with ``arch='mbart_large'`` as the release's and without the
      hydra-era ``_name``), ``model``, ``optimizer_history``,
      ``extra_state`` and ``last_optimizer_state``.

    Args:
        state (dict): a checkpoint saved by fairseq-train (``cfg`` with a legacy
            ``cfg['model']`` namespace) of an mBART architecture.

    Returns:
        dict: the release-form checkpoint (weights shared, not copied, where possible).
    """
    import copy

    import torch

    model = state["model"]
    out_proj = model.get("decoder.output_projection.weight")
    if out_proj is not None and not torch.equal(out_proj, model["decoder.embed_tokens.weight"]):
        raise ValueError(
            "decoder.output_projection.weight differs from decoder.embed_tokens.weight: the "
            "release form has no separate output projection (train with tied embeddings)"
        )
    fused = {}
    for key, value in model.items():
        if key == "decoder.output_projection.weight":
            continue
        prefix, sep, leaf = key.rpartition(".")
        module = prefix.rpartition(".")[2]
        if module not in ("q_proj", "k_proj", "v_proj"):
            fused[key] = value
            continue
        attn = prefix.rpartition(".")[0]
        parts = [model[f"{attn}.{p}.{leaf}"] for p in ("q_proj", "k_proj", "v_proj")]
        fused.setdefault(f"{attn}.in_proj_{leaf}", torch.cat(parts, dim=0))
    cfg = state.get("cfg")
    if not cfg or not isinstance(cfg.get("model"), argparse.Namespace):
        raise ValueError("expected a fairseq-train checkpoint with a legacy cfg['model'] namespace")
    args = copy.deepcopy(cfg["model"])
    args.arch = "mbart_large"
    if hasattr(args, "_name"):  # added by fairseq's hydra-era config conversion, not in the release
        del args._name
    return {
        "args": args,
        "model": fused,
        "optimizer_history": state["optimizer_history"],
        "extra_state": state["extra_state"],
        "last_optimizer_state": state.get("last_optimizer_state"),
    }


def _check_spm_layout(sp, path):
    """The dictionary convention needs unk/<s>/</s> at sentencepiece ids 0/1/2 and no pad."""
    if (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) != (0, 1, 2, -1):
        raise ValueError(
            f"{path}: sentencepiece model must have unk=0, <s>=1, </s>=2 and no pad piece "
            f"(as mbart.cc25's sentence.bpe.model); got unk={sp.unk_id()} "
            f"bos={sp.bos_id()} eos={sp.eos_id()} pad={sp.pad_id()}"
        )


def pretrain_tiny_mbart(
    text_file,
    out_dir,
    langs=("de_DE",),
    spm_model=None,
    spm_vocab_size=300,
    layers=1,
    dim=64,
    ffn=128,
    heads=2,
    max_update=300,
    seed=1,
    extra_args=(),
    tokens_per_sample=128,
    batch_size=32,
    lr=3e-3,
):
    """Pre-train a tiny mBART (denoising) on ``text_file`` into ``out_dir``.

    Args:
        text_file (str): UTF-8 text, one sentence per line (raw, not tokenised).
        out_dir (str): output directory (created).
        langs (Sequence[str]): mBART language codes, e.g. ``("de_DE",)``; the same text is
            used as the monolingual data of every language.
        spm_model (str, optional): an existing sentencepiece model to reuse (copied);
            otherwise one is trained on the text.
        spm_vocab_size (int): requested sentencepiece vocabulary size (upper bound).
        layers, dim, ffn, heads (int): encoder = decoder layers, embedding dim, FFN dim,
            attention heads.
        max_update (int): number of training updates.
        seed (int): random seed (fairseq ``--seed``).
        extra_args (Sequence[str]): more ``fairseq-train`` arguments (they come last and
            so override the defaults above).
        tokens_per_sample (int): ``--tokens-per-sample`` (longest training block).
        batch_size (int): sentences per batch.
        lr (float): peak Adam learning rate.

    Returns:
        dict: ``model``, ``dict``, ``spm`` (the three release files), ``fairseq_model``
        (the checkpoint as fairseq-train wrote it), ``data_dir``, ``work_dir``, ``vocab_size`` (embedding rows), ``num_params`` and ``seconds``.
    """
    import sentencepiece as spm
    import torch

    from flallm_plugin.checkpoint_safety import safe_torch_load

    start = time.time()
    if isinstance(langs, str):
        langs = [lang for lang in langs.split(",") if lang]
    langs = list(langs)
    if not langs:
        raise ValueError("langs: at least one language code (e.g. de_DE) is needed")
    lines = read_text_lines(text_file)

    out_dir = os.path.abspath(out_dir)
    work_dir = os.path.join(out_dir, "work")
    if os.path.lexists(work_dir):
        if not os.path.isfile(os.path.join(work_dir, WORK_MARKER)):  # never delete what this script did not write
            raise FileExistsError(
                f"{work_dir}: exists and was not written by pretrain_tiny_mbart.py (no {WORK_MARKER} in it), so it "
                "is not deleted: choose another output directory, or remove it yourself"
            )
        shutil.rmtree(work_dir)
    os.makedirs(work_dir)
    with open(os.path.join(work_dir, WORK_MARKER), "w", encoding="utf-8") as f:
        f.write("written by preprocess/pretrain_tiny_mbart.py; its next run into the same directory replaces it\n")
    data_dir = os.path.join(work_dir, "data")
    os.makedirs(data_dir)

    # 1. sentencepiece
    clean_text = os.path.join(work_dir, "text.txt")
    with open(clean_text, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    spm_out = os.path.join(out_dir, "sentence.bpe.model")
    if spm_model is not None:
        if not os.path.isfile(spm_model):
            raise FileNotFoundError(f"{spm_model}: sentencepiece model not found")
        if os.path.abspath(spm_model) != spm_out:
            shutil.copyfile(spm_model, spm_out)
    else:
        trained = train_sentencepiece(
            clean_text, os.path.join(work_dir, "sentence.bpe"), spm_vocab_size,
            model_type="unigram", id_layout="mbart", num_threads=2,
        )
        shutil.copyfile(trained, spm_out)
    sp = spm.SentencePieceProcessor(model_file=spm_out)
    _check_spm_layout(sp, spm_out)

    # 2. encode, dictionary, binarise (multilingual_denoising layout)
    encoded = [" ".join(sp.encode(line, out_type=str)) for line in lines]
    train_spm = os.path.join(work_dir, "train.spm")
    valid_spm = os.path.join(work_dir, "valid.spm")
    valid = encoded[:: max(1, len(encoded) // 20)][:20]  # a few (seen) lines: a sanity check
    # one "document" per sentence (blank line between): with --sample-break-mode
    # complete_doc every training block is exactly one sentence
    for path, sents in ((train_spm, encoded), (valid_spm, valid)):
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(sents) + "\n")
    dict_out = os.path.join(out_dir, "dict.txt")
    n_regular = write_fairseq_dict(sp, encoded, dict_out)
    shutil.copyfile(dict_out, os.path.join(data_dir, "dict.txt"))

    preprocess = _fairseq_script("fairseq-preprocess")
    for lang in langs:
        _run(
            [
                preprocess, "--only-source",
                "--trainpref", os.path.join(work_dir, "train.spm"),
                "--validpref", os.path.join(work_dir, "valid.spm"),
                "--srcdict", dict_out,
                "--destdir", os.path.join(data_dir, lang),
                "--workers", "1",
            ],
            os.path.join(work_dir, f"preprocess.{lang}.log"),
            f"fairseq-preprocess ({lang})",
        )

    # 3. denoising pre-training with fairseq's multilingual_denoising task
    save_dir = os.path.join(work_dir, "checkpoints")
    cmd = [
        _fairseq_script("fairseq-train"), data_dir,
        "--task", "multilingual_denoising", "--langs", ",".join(langs), "--add-lang-token",
        "--arch", "mbart_base",
        "--encoder-layers", str(layers), "--decoder-layers", str(layers),
        "--encoder-embed-dim", str(dim), "--decoder-embed-dim", str(dim),
        "--encoder-ffn-embed-dim", str(ffn), "--decoder-ffn-embed-dim", str(ffn),
        "--encoder-attention-heads", str(heads), "--decoder-attention-heads", str(heads),
        "--encoder-normalize-before", "--decoder-normalize-before",  # as mbart.cc25
        "--dropout", "0.1", "--attention-dropout", "0.0",
        "--tokens-per-sample", str(tokens_per_sample), "--sample-break-mode", "complete_doc",
        "--mask", "0.3", "--mask-random", "0.1", "--mask-length", "span-poisson",
        "--poisson-lambda", "3.5", "--replace-length", "1", "--rotate", "0.0",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--adam-eps", "1e-6",
        "--lr", str(lr), "--lr-scheduler", "inverse_sqrt",
        "--warmup-updates", str(max(1, min(50, max_update // 5))),
        "--clip-norm", "1.0",
        "--batch-size", str(batch_size), "--max-update", str(max_update),
        "--save-dir", save_dir, "--no-epoch-checkpoints", "--save-interval", "1000000",
        "--validate-interval", "1000000",
        "--seed", str(seed), "--cpu", "--num-workers", "0",
        # no background prefetch thread: a daemon thread still collating when the
        # interpreter exits can abort it ("terminate called without an active exception")
        "--data-buffer-size", "0",
        "--log-format", "simple", "--log-interval", str(max(1, max_update // 5)),
    ] + list(extra_args)
    _run(cmd, os.path.join(work_dir, "train.log"), "fairseq-train", done_marker="done training")

    ckpt = os.path.join(save_dir, "checkpoint_last.pt")
    if not os.path.isfile(ckpt):
        raise RuntimeError(f"fairseq-train wrote no {ckpt} (see {work_dir}/train.log)")
    fairseq_model = os.path.join(work_dir, "fairseq_model.pt")
    shutil.copyfile(ckpt, fairseq_model)

    # sanity check of the release convention: rows = len(dict) + tags + <mask>
    state = safe_torch_load(fairseq_model)
    rows = state["model"]["encoder.embed_tokens.weight"].shape[0]
    expected = 4 + n_regular + len(langs) + 1
    if rows != expected:
        raise RuntimeError(
            f"{fairseq_model}: embedding has {rows} rows, expected {expected} "
            f"(4 specials + {n_regular} dict.txt lines + {len(langs)} tags + <mask>)"
        )
    model_out = os.path.join(out_dir, "model.pt")
    with atomic_path(model_out) as tmp_out:
        torch.save(to_release_form(state), tmp_out)
    seen = set()
    num_params = 0
    for t in state["model"].values():
        if torch.is_tensor(t) and t.data_ptr() not in seen:
            seen.add(t.data_ptr())
            num_params += t.numel()
    shutil.rmtree(save_dir)  # fairseq_model.pt is a copy; keep work/ small
    return {
        "model": model_out,
        "dict": dict_out,
        "spm": spm_out,
        "fairseq_model": fairseq_model,
        "data_dir": data_dir,
        "work_dir": work_dir,
        "vocab_size": rows,
        "num_params": num_params,
        "seconds": time.time() - start,
    }


def get_parser():
    parser = argparse.ArgumentParser(
        description="Pre-train a tiny mBART with fairseq (mbart.cc25 release format: "
        "model.pt, dict.txt, sentence.bpe.model)."
    )
    parser.add_argument("--text", required=True, help="UTF-8 text, one sentence per line")
    parser.add_argument("--out-dir", required=True, help="output directory")
    parser.add_argument(
        "--langs", default="de_DE", help="comma-separated mBART language codes (default: de_DE)"
    )
    parser.add_argument(
        "--spm-model", default=None,
        help="reuse this sentencepiece model instead of training one on --text",
    )
    parser.add_argument(
        "--spm-vocab-size", type=int, default=300,
        help="sentencepiece vocabulary size when training one (upper bound; default: 300)",
    )
    parser.add_argument("--layers", type=int, default=1, help="encoder and decoder layers")
    parser.add_argument("--dim", type=int, default=64, help="embedding dimension")
    parser.add_argument("--ffn", type=int, default=128, help="feed-forward dimension")
    parser.add_argument("--heads", type=int, default=2, help="attention heads")
    parser.add_argument("--max-update", type=int, default=300, help="training updates")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per batch")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "extra_args", nargs=argparse.REMAINDER,
        help="after '--': more fairseq-train arguments (override the defaults)",
    )
    return parser


def cli_main(argv=None):
    args = get_parser().parse_args(argv)
    extra = list(args.extra_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    try:
        res = pretrain_tiny_mbart(
            args.text, args.out_dir, langs=args.langs, spm_model=args.spm_model,
            spm_vocab_size=args.spm_vocab_size, layers=args.layers, dim=args.dim,
            ffn=args.ffn, heads=args.heads, max_update=args.max_update, seed=args.seed,
            extra_args=extra, batch_size=args.batch_size, lr=args.lr,
        )
    except (OSError, ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for key in ("model", "dict", "spm"):
        print(f"{key:6s} {res[key]}  ({os.path.getsize(res[key]) / 1024:.1f} KiB)")
    print(
        f"vocabulary: {res['vocab_size']} embedding rows, {res['num_params']} parameters, "
        f"{res['seconds']:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
