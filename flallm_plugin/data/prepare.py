"""What every dataset preprocessor (preprocess/prep_*.py) shares: validation, tokenizer, dictionary, manifests.

A preprocessor parses its dataset's release layout into :class:`Sample` rows per split,
then :func:`write_data_dir` validates every sample (the frame folder or video exists
and decodes, frames are counted, targets are non-empty one-line UTF-8 text), trains or
reuses the sentencepiece model, builds the fairseq dictionary and writes the data
directory read by the ``sign_translation`` task::

    OUT/{split}.tsv      id  video  n_frames  tgt_text  speaker  [start  end]
    OUT/config.yaml      see flallm_plugin/data/data_cfg.py
    OUT/spm.model        (or the reused sentencepiece model)
    OUT/dict.txt         fairseq dictionary

Everything is checked before anything is written; the files are written into a new temporary
directory next to OUT and moved into OUT at the end, replacing only the files of those names, so a
failed or interrupted run leaves an earlier OUT as it was.
"""
import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional

from tqdm import tqdm

from flallm_plugin.data.atomic_file import atomic_write_text
from flallm_plugin.data.data_cfg import DEFAULT_AUGMENTATION, sampling_stride
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.manifest import write_data_config, write_manifest
from flallm_plugin.data.sentencepiece_trainer import train_sentencepiece
from flallm_plugin.data.text_io import read_table
from flallm_plugin.data.visual_input import CLIP_COLUMNS, IMAGENET_MEAN, IMAGENET_STD, MANIFEST_COLUMNS, lang_tag_index
from flallm_plugin.data.video_io import (
    IMAGE_EXTENSIONS,
    count_frames,
    list_frame_files,
    read_image,
    video_kind,
)
from flallm_plugin.out_dir import make_temp_dir, publish_files, remove_orphan_temp_dirs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC
JPEG_END = b"\xff\xd9"  # end-of-image marker
PREPARE_TOOL = "flallm-prepare"  # names the marker of the temporary directory (out_dir.py)


@dataclass
class Sample(object):
    id: str
    video: str  # relative to the video root (or absolute)
    tgt_text: str
    speaker: str
    where: str  # "FILE: line N" of the release annotation, for error messages
    start: Optional[float] = None
    end: Optional[float] = None
    n_frames: int = 0


def add_common_args(parser: argparse.ArgumentParser):
    parser.add_argument("--data-root", required=True, help="directory holding the dataset's original release")
    parser.add_argument("--out-dir", help="data directory to write (manifests, config, vocabulary); required unless --export-train-text")
    parser.add_argument("--spm-model", help="reuse this sentencepiece model (e.g. mBART's sentence.bpe.model)")
    parser.add_argument("--dict", help="reuse this fairseq dictionary (e.g. a trimmed mBART dict.txt)")
    parser.add_argument("--vocab-size", type=int, default=2000, help="sentencepiece vocabulary size (upper bound)")
    parser.add_argument(
        "--spm-type", default="unigram", choices=["unigram", "bpe", "char", "word"], help="sentencepiece model type"
    )
    parser.add_argument("--resize", type=int, default=256, help="frames are resized to RESIZE x RESIZE")
    parser.add_argument("--crop", type=int, default=224, help="then cropped to CROP x CROP")
    parser.add_argument("--sampling-rate", type=float, default=0.25, help="temporal sampling rate (paper: 0.25)")
    parser.add_argument("--tgt-lang-tag", default=None, help="language tag for mBART targets, e.g. [de_DE]")
    parser.add_argument(
        "--target-column", default=None,
        help="annotation column the targets come from (default: the spoken-language sentence); e.g. 'orth' "
        "(PHOENIX-2014-T) or 'label_gloss' (CSL-Daily) for gloss sequences: the recognition control",
    )
    parser.add_argument(
        "--verify-frames", action="store_true",
        help="decode every frame image (default: check every file's signature and decode the first and last)",
    )
    parser.add_argument("--workers", type=int, default=4, help="threads for counting/verifying frames")
    parser.add_argument(
        "--export-train-text", metavar="FILE",
        help="only write the training targets, one per line, to FILE and stop (input of trim_mbart.py)",
    )


def check_target_column(column: str, allowed: Dict[str, str], path: str) -> str:
    """``column`` if it is one of ``allowed`` (column -> what it holds), else one line naming the file."""
    if column not in allowed:
        what = "; ".join(f"{c} ({d})" for c, d in allowed.items())
        raise SignDataError(f"{path}: no target column {column!r}: --target-column takes {what}")
    return column


def check_text(text: str, where: str) -> str:
    text = text.strip()
    if not text:
        raise SignDataError(f"{where}: empty target text")
    if "\t" in text or "\n" in text or "\r" in text:
        raise SignDataError(f"{where}: target text contains a tab or line break")
    return text


def read_delimited(path: str, delimiter: str, header: List[str]) -> List[Dict[str, str]]:
    """Rows of a delimited annotation file with ``header``; errors name the file and the line."""
    rows = read_table(path, delimiter, header, strip=True)[1]
    for row in rows:
        row["_where"] = f"{path}: line {row.pop('_line')}"
    return rows


def check_image_complete(path: str):
    """A PNG/JPEG signature at the start and the end-of-image marker at the end (OpenCV decodes a
    truncated JPEG with grey fill and only a warning, so decoding alone does not catch it)."""
    with open(path, "rb") as f:
        head = f.read(8)
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64))
        tail = f.read().rstrip(b"\x00")  # some writers pad after the end marker
    if head.startswith(PNG_MAGIC):
        end, what = PNG_END, "PNG IEND chunk"
    elif head.startswith(JPEG_MAGIC):
        end, what = JPEG_END, "JPEG end marker FFD9"
    else:
        raise SignDataError(f"{path}: not a PNG/JPEG image (corrupt or wrong file)")
    if not tail.endswith(end):
        raise SignDataError(f"{path}: truncated image (no {what} at the end): copy the file again from the release")


def _check_image_file(path: str, decode: bool):
    check_image_complete(path)
    if decode:
        read_image(path)


def probe_sample(s: Sample, video_root: str, verify_frames: bool) -> int:
    """Check a sample's source and return its frame count; errors name the annotation row."""
    path = s.video if os.path.isabs(s.video) else os.path.join(video_root, s.video)
    try:
        kind = video_kind(path)
        if kind == "frames":
            files = list_frame_files(path)
            for i, f in enumerate(files):
                _check_image_file(f, decode=verify_frames or i in (0, len(files) - 1))
            return len(files)
        n = count_frames(path, s.start, s.end)
        if n == 0:
            raise SignDataError(f"{path}: video has no frames (empty, corrupt, or start/end outside the video)")
        return n
    except SignDataError as e:
        raise SignDataError(f"{s.where}: {e}") from e


def probe_all(splits: Dict[str, List[Sample]], video_root: str, verify_frames: bool, workers: int):
    for split, samples in splits.items():
        if not samples:
            raise SignDataError(f"split {split!r} has no samples")
        with ThreadPoolExecutor(max(1, workers)) as pool:
            counts = list(
                tqdm(
                    pool.map(lambda s: probe_sample(s, video_root, verify_frames), samples),
                    total=len(samples),
                    desc=f"checking {split} videos",
                    unit="video",
                )
            )
        for s, n in zip(samples, counts):
            s.n_frames = n


def write_data_dir(
    splits: Dict[str, List[Sample]],
    video_root: str,
    args: argparse.Namespace,
    bleu_tokenizer: str = "13a",
    train_split: str = "train",
) -> Dict:
    """Validate every split, then write the data directory (see the module docstring)."""
    t0 = time.time()
    if getattr(args, "export_train_text", None):
        if train_split not in splits:
            raise SignDataError(f"no {train_split!r} split found")
        texts = [check_text(s.tgt_text, s.where) for s in splits[train_split]]
        atomic_write_text(args.export_train_text, lambda f: f.write("\n".join(texts) + "\n"))
        print(f"wrote {len(texts):,} training targets to {args.export_train_text}")
        return {"train_text": args.export_train_text, "rows": len(texts)}
    if not args.out_dir:
        raise ValueError("--out-dir is required (unless --export-train-text)")
    video_root = os.path.abspath(video_root)
    try:
        sampling_stride(args.sampling_rate)
    except ValueError as e:
        raise ValueError(f"--sampling-rate {args.sampling_rate}: {e}") from e
    if args.crop > args.resize:
        raise ValueError(f"--crop {args.crop} exceeds --resize {args.resize} (frames are resized, then cropped): "
                         "pass --crop <= --resize, e.g. --resize 256 --crop 224")
    for split, samples in splits.items():
        seen = set()
        for s in samples:
            s.tgt_text = check_text(s.tgt_text, s.where)
            if s.id in seen:
                raise SignDataError(f"{s.where}: duplicate sample name {s.id!r} in split {split}")
            seen.add(s.id)
    if train_split not in splits:
        raise SignDataError(f"no {train_split!r} split found")
    probe_all(splits, video_root, args.verify_frames, args.workers)

    if os.path.lexists(args.out_dir) and not os.path.isdir(args.out_dir):
        raise ValueError(f"--out-dir {args.out_dir}: exists and is not a directory")
    # every file is written into a new temporary directory next to --out-dir and moved into place at
    # the end: a run that fails or is killed leaves an earlier output as it was (out_dir.py)
    remove_orphan_temp_dirs(args.out_dir, PREPARE_TOOL)
    out = make_temp_dir(args.out_dir, PREPARE_TOOL)
    try:
        tgt_dict, spm_name, unk_rate = _write_files(out, splits, video_root, args, bleu_tokenizer, train_split)
        publish_files(out, args.out_dir, PREPARE_TOOL)
    except BaseException:
        if os.path.isdir(out):
            shutil.rmtree(out)
        raise
    summary = {
        "out_dir": args.out_dir,
        "splits": {
            k: {"rows": len(v), "frames": int(sum(s.n_frames for s in v))} for k, v in splits.items()
        },
        "vocab_size": len(tgt_dict),
        "train_unk_rate": unk_rate[train_split],
        "unk_rate": unk_rate,
        "seconds": round(time.time() - t0, 1),
    }
    print_summary(summary)
    return summary


def _write_files(out: str, splits: Dict[str, List[Sample]], video_root: str, args: argparse.Namespace,
                 bleu_tokenizer: str, train_split: str):
    """The data directory's files, written into ``out``: (dictionary, sentencepiece model's name, unk rates)."""
    import sentencepiece as spm
    from fairseq.data import Dictionary

    train_texts = [s.tgt_text for s in splits[train_split]]
    with tempfile.TemporaryDirectory() as tmp:
        if args.spm_model:
            if not os.path.isfile(args.spm_model):
                raise FileNotFoundError(f"{args.spm_model}: sentencepiece model not found (--spm-model)")
            spm_src = args.spm_model
            spm_name = os.path.basename(args.spm_model)
        else:
            text_path = os.path.join(tmp, "train.txt")
            with open(text_path, "w", encoding="utf-8") as f:
                f.write("\n".join(train_texts) + "\n")
            spm_src = train_sentencepiece(text_path, os.path.join(tmp, "spm"), args.vocab_size, args.spm_type)
            spm_name = "spm.model"
        sp = spm.SentencePieceProcessor(model_file=spm_src)
        if args.dict:
            if not os.path.isfile(args.dict):
                raise FileNotFoundError(f"{args.dict}: dictionary not found (--dict)")
            tgt_dict = Dictionary.load(args.dict)
        else:
            tgt_dict = Dictionary()
            for i in range(sp.get_piece_size()):
                if not (sp.is_control(i) or sp.is_unknown(i)):
                    tgt_dict.add_symbol(sp.id_to_piece(i), n=1)
        lang_tag_index(tgt_dict, args.tgt_lang_tag,
                       f"{args.dict or 'the dictionary of the sentencepiece model'} (--tgt-lang-tag)")
        # pieces outside the dictionary (dev/test words never seen in training, or any with a reused
        # dictionary) are reported, not hidden: ids turn them into <unk>, scores use the original text
        unk_rate = {split: unk_piece_rate([s.tgt_text for s in samples], sp, tgt_dict)
                    for split, samples in splits.items()}
        shutil.copyfile(spm_src, os.path.join(out, spm_name))
        dict_path = os.path.join(out, "dict.txt")
        atomic_write_text(dict_path, lambda f: tgt_dict.save(f))

    for split, samples in splits.items():
        has_clip = any(s.start is not None or s.end is not None for s in samples)
        cols = list(MANIFEST_COLUMNS) + (list(CLIP_COLUMNS) if has_clip else [])

        rows = ([getattr(s, col) for col in cols] for s in samples)  # a Sample's fields are the columns
        name = f"{split}.tsv"  # errors name the file it becomes
        write_manifest(os.path.join(out, name), rows, cols, name=os.path.join(args.out_dir, name))

    config = {
        "vocab_filename": "dict.txt",
        "bpe_tokenizer": {"bpe": "sentencepiece", "sentencepiece_model": spm_name},
        "video_root": video_root,
        "input_type": "video",
        "resize": args.resize,
        "crop": args.crop,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "sampling_rate": args.sampling_rate,
        # GFSLT-VLP translates by +-10 px at 224 px: scale it with the crop size
        "augmentation": dict(DEFAULT_AUGMENTATION, translate=round(DEFAULT_AUGMENTATION["translate"] * args.crop / 224, 2)),
        "bleu_tokenizer": bleu_tokenizer,
        "tgt_lang_tag": args.tgt_lang_tag,
    }
    write_data_config(os.path.join(out, "config.yaml"), config)
    return tgt_dict, spm_name, unk_rate


def unk_piece_rate(texts: List[str], sp, tgt_dict) -> float:
    """Fraction of the texts' sentencepiece pieces that are not in the dictionary."""
    n_tok = n_unk = 0
    for text in texts:
        for piece in sp.encode(text, out_type=str):
            n_tok += 1
            n_unk += tgt_dict.index(piece) == tgt_dict.unk()
    return n_unk / max(n_tok, 1)


def print_summary(summary: Dict):
    print(f"wrote {summary['out_dir']}")
    for split, v in summary["splits"].items():
        mean = v["frames"] / max(v["rows"], 1)
        print(f"  {split:<8} {v['rows']:>7,} rows  {v['frames']:>10,} frames  ({mean:.1f} per video)  "
              f"pieces outside the dictionary: {summary['unk_rate'][split]:.2%}")
    print(f"  vocabulary: {summary['vocab_size']:,} types (train <unk> rate {summary['train_unk_rate']:.2%})")
    print(f"  took {summary['seconds']} s")


__all__ = ["Sample", "add_common_args", "read_delimited", "write_data_dir", "IMAGE_EXTENSIONS"]
