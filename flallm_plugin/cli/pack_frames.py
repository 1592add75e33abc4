#!/usr/bin/env python
"""flallm-pack-frames: rewrite a video data directory's frames as frame packs (one file per video).

A data-loader worker reading PNG frame folders spends most of its time decoding PNG; a frame pack
(:mod:`flallm_plugin.data.frame_pack`) holds the same RGB pixels, losslessly compressed with
Zstandard frame by frame, and decodes several times faster. This writes a new data directory whose
manifests point at the packs; ``sign_translation`` trains on it as on the original, to the same
pixels::

    flallm-pack-frames --data DATA --out-dir DATA_PACKED
    fairseq-train DATA_PACKED --task sign_translation ...

OUT holds ``{split}.tsv`` (the same rows, ``video`` = ``packed/{split}/{id}.flpack``; a clip of a
video file, its ``start``/``end``, becomes a pack of the clip's frames), ``config.yaml`` (the same
settings, ``video_root: .``), the dictionary, the sentencepiece model and the packs. Every frame is
decoded once, as training would decode it (frame folders and video files alike). Everything is
written to a temporary directory next to OUT and renamed at the end: all splits or nothing. OUT must
not be or hold anything the run reads, and an OUT that is not empty is refused unless
``--overwrite``; then it is replaced whole, and only if an earlier flallm-pack-frames wrote it.
"""
import argparse
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm import tqdm

from flallm_plugin.data.frame_pack import DEFAULT_LEVEL, PACK_EXTENSION, write_frame_pack
from flallm_plugin.data.manifest import copy_text_assets, write_data_config, write_manifest
from flallm_plugin.data.visual_input import MANIFEST_COLUMNS
from flallm_plugin.out_dir import check_out_dir, staged_dir

logger = logging.getLogger("flallm.pack_frames")
TOOL = "flallm-pack-frames"


def get_parser():
    p = argparse.ArgumentParser(prog=TOOL, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data directory with video manifests (frame folders or video files)")
    p.add_argument("--out-dir", required=True, help="packed data directory to write (new or empty)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out-dir written by flallm-pack-frames (whole, at the end)")
    p.add_argument("--splits", default="train,dev,test", help="comma-separated splits (missing ones are skipped)")
    p.add_argument("--level", type=int, default=DEFAULT_LEVEL, help="Zstandard compression level (1-19)")
    p.add_argument("--workers", type=int, default=2, help="videos decoded and compressed at once (threads)")
    return p


def splits_of(args):
    return [s for s in args.splits.split(",") if s]


def pack(args) -> dict:
    """Check ``--out-dir``, pack into a temporary directory next to it, then rename it into place."""
    from flallm_plugin.data.sign_translation_dataset import data_dir_inputs

    if not 1 <= args.level <= 19 or args.workers < 1:
        raise ValueError(f"--level {args.level} must be 1-19 and --workers {args.workers} >= 1")
    check_out_dir(args.out_dir, data_dir_inputs(args.data, splits_of(args)), TOOL, "--out-dir", args.overwrite)
    with staged_dir(args.out_dir, TOOL) as tmp:  # renamed into place at the end, removed on failure
        summary = pack_to(args, tmp)
    for split, v in summary.items():
        print(f"{split}: {v['rows']} videos, {v['frames']} frames -> {args.out_dir}/packed/{split} "
              f"({v['mb']} MB, {v['seconds']} s)")
    return summary


def pack_to(args, out_dir: str) -> dict:
    """Pack every split into ``out_dir`` (a fresh directory) and write its config last."""
    from flallm_plugin.data.data_cfg import SignDataConfig
    from flallm_plugin.data.errors import SignDataError
    from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator
    from flallm_plugin.data.video_io import read_frames
    from flallm_plugin.data.visual_input import VisualInputSpec

    data_cfg = SignDataConfig(os.path.join(args.data, "config.yaml"))
    spec = VisualInputSpec.from_data_cfg(data_cfg, sampling_rate=1.0)
    if spec.features:
        raise ValueError(f"{data_cfg.path}: input_type is {spec.input_type!r}; flallm-pack-frames packs video input")
    summary = {}
    for split in splits_of(args):
        if not os.path.isfile(os.path.join(args.data, f"{split}.tsv")):
            logger.warning(f"{split}.tsv not found in {args.data}: split skipped")
            continue
        ds = SignTranslationDatasetCreator.from_tsv(args.data, data_cfg, split, None, None, is_train_split=False,
                                                    visual_input=spec, augment=False, seed=1)
        os.makedirs(os.path.join(out_dir, "packed", split))

        def pack_one(i):
            sid = ds.ids[i]
            if "/" in sid or sid.startswith("."):
                raise SignDataError(f"{ds.where(i)}: id {sid!r} cannot be used as a file name")
            rel = os.path.join("packed", split, sid + PACK_EXTENSION)
            try:
                frames = read_frames(ds.video_paths[i], range(int(ds.n_frames[i])), ds.starts[i], ds.ends[i],
                                     n_frames=int(ds.n_frames[i]))
                n = write_frame_pack(os.path.join(out_dir, rel), frames, args.level)
            except (SignDataError, ValueError) as e:
                raise SignDataError(f"{ds.where(i)}: {e}") from e
            return [sid, rel, n, ds.tgt_texts[i], ds.speakers[i]]

        t0 = time.time()
        with ThreadPoolExecutor(args.workers) as pool:
            rows = list(tqdm(pool.map(pack_one, range(len(ds))), total=len(ds), desc=f"packing {split}", unit="video"))
        write_manifest(os.path.join(out_dir, f"{split}.tsv"), rows, MANIFEST_COLUMNS)
        size = sum(os.path.getsize(os.path.join(out_dir, r[1])) for r in rows)
        summary[split] = {"rows": len(rows), "frames": sum(r[2] for r in rows), "mb": round(size / 1e6, 1),
                          "seconds": round(time.time() - t0, 1)}
    config = copy_text_assets(data_cfg, out_dir)
    config["video_root"] = "."
    write_data_config(os.path.join(out_dir, "config.yaml"), config)
    return summary


def cli_main(argv=None):
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO,
                        stream=sys.stdout, force=True)
    args = get_parser().parse_args(argv)
    pack(args)


if __name__ == "__main__":
    cli_main()
