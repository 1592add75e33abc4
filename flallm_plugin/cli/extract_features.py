#!/usr/bin/env python
"""flallm-extract-features: cache the frozen visual encoder's features once.

Stage 2 freezes the stage-1 visual encoder, so its features are the same every epoch.
This runs it once over a data directory (eval mode, no augmentation, the stage-1
temporal sampling) and writes a new data directory whose manifests point at ``.npy``
features; ``sign_translation`` trains on it like on videos::

    flallm-extract-features --data DATA --checkpoint stage1/checkpoint_best.pt --out-dir DATA_FEATS
    fairseq-train DATA_FEATS --task sign_translation --arch sign_mbart_large ...

OUT holds ``{split}.tsv``, ``config.yaml`` (``input_type: features``, ``feature_level`` and
``visual_fingerprint``, the sha256 of the stage-1 weights that made the features, checked by
stage 2), the dictionary, the sentencepiece model and ``features/{split}/{id}.npy`` (N x C
float arrays). Everything is written to a temporary directory next to OUT and renamed at the
end: all splits or nothing. OUT must not be or hold anything the run reads (data directory, video
root, videos, checkpoint), and an OUT that is not empty is refused unless ``--overwrite``; then it is
replaced whole, and only if an earlier flallm-extract-features wrote it (its
``.flallm-extract-features`` marker file: see :mod:`flallm_plugin.out_dir`).
"""
import argparse
import logging
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from flallm_plugin.data.manifest import copy_text_assets, write_data_config, write_manifest
from flallm_plugin.data.visual_input import FEATURE_LEVELS, MANIFEST_COLUMNS
from flallm_plugin.out_dir import check_out_dir, staged_dir

logger = logging.getLogger("flallm.extract_features")


def get_parser():
    p = argparse.ArgumentParser(prog="flallm-extract-features", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data directory with video manifests (as for training)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="stage-1 (light_t) checkpoint")
    src.add_argument("--visual-backbone-weights", metavar="FILE",
                     help="with --level frame, instead of --checkpoint: the ResNet-18 features of a torchvision "
                          "state dict (resnet18-f37072fd.pth, 'imagenet' = torchvision's cache), for a stage 1 "
                          "that trains on them with its ResNet frozen (fairseq-train FEATS --arch light_t ...)")
    p.add_argument("--out-dir", required=True, help="feature data directory to write (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out-dir written by flallm-extract-features (whole, at the end)")
    p.add_argument("--splits", default="train,dev,test", help="comma-separated splits (missing ones are skipped)")
    p.add_argument("--level", default=FEATURE_LEVELS[0], choices=FEATURE_LEVELS,
                   help="sign = temporal-module output (paper default), frame = ResNet output, "
                        "light_t = the Light-T encoder's hidden states")
    p.add_argument("--batch-size", type=int, default=8, help="videos per forward pass")
    p.add_argument("--num-workers", type=int, default=2, help="data-loader workers decoding videos")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--fp16", action="store_true", help="run the encoder in half precision (features saved as float32)")
    p.add_argument("--tgt-lang-tag", default=None,
                   help="write this target language tag into the new config.yaml (e.g. [de_DE] for stage 2)")
    return p


TOOL = "flallm-extract-features"


def inputs_of(args) -> list:
    """Everything this run reads: the checkpoint or ResNet weights, and the data directory's files and videos."""
    from flallm_plugin.data.sign_translation_dataset import data_dir_inputs

    return [(args.checkpoint, "the checkpoint"), (args.visual_backbone_weights, "the ResNet-18 weights")] + \
        data_dir_inputs(args.data, [s for s in args.splits.split(",") if s])


def check_source(args):
    """ResNet weights alone make frame-level features only; everything above the ResNet is stage 1's."""
    if args.visual_backbone_weights is not None and args.level != "frame":
        raise ValueError(f"--visual-backbone-weights gives frame-level (ResNet) features; --level {args.level} "
                         "needs the stage-1 model: pass --checkpoint, or --level frame")


def load_stage1(args, overrides: dict):
    """(model, cfg, task): the stage-1 checkpoint, or with ``--visual-backbone-weights`` an untrained
    ``light_t_tiny`` set up by the task on ``--data`` whose ResNet holds those weights (only its
    frame-level features are used), reading every frame."""
    from fairseq import checkpoint_utils, options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    from flallm_plugin.checkpoint_safety import load_fairseq_checkpoint

    if args.checkpoint is not None:
        state = load_fairseq_checkpoint(args.checkpoint, overrides)  # errors name the file (truncated, unsafe, ...)
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [args.checkpoint], arg_overrides=overrides, state=state
        )
        return models[0], cfg, task
    parser = options.get_training_parser(default_task="sign_translation")
    train_args = options.parse_args_and_arch(parser, [
        overrides["data"], "--task", "sign_translation", "--arch", "light_t_tiny",
        "--visual-backbone-weights", args.visual_backbone_weights, "--sampling-rate", "1",
    ])
    cfg = convert_namespace_to_omegaconf(train_args)
    task = tasks.setup_task(cfg.task)
    return task.build_model(cfg.model), cfg, task


def extracted_from(args) -> str:
    """The features' source for their config.yaml: the checkpoint, or the ResNet-18 weights file."""
    from flallm_plugin.models.visual_encoder import resolve_backbone_weights

    if args.checkpoint is not None:
        return os.path.abspath(args.checkpoint)
    path = resolve_backbone_weights(args.visual_backbone_weights)
    return os.path.abspath(path) if path else "a randomly initialised ResNet-18 (--visual-backbone-weights none)"


def extract(args) -> dict:
    """Check ``--out-dir``, extract into a temporary directory next to it, then rename it into place."""
    check_source(args)
    check_out_dir(args.out_dir, inputs_of(args), TOOL, "--out-dir", args.overwrite)
    with staged_dir(args.out_dir, TOOL) as tmp:  # renamed into place at the end, removed on failure
        summary = extract_to(args, tmp)
    for split, v in summary["splits"].items():
        print(f"{split}: {v['rows']} videos -> {args.out_dir}/features/{split} ({v['seconds']} s)")
    print(f"feature level {args.level}, dim {summary['feature_dim']}; config: {os.path.join(args.out_dir, 'config.yaml')}")
    return summary["splits"]


def extract_to(args, out_dir: str) -> dict:
    """Extract every split into ``out_dir`` (a fresh directory) and write its config last."""
    from fairseq import utils

    from flallm_plugin import models, tasks  # noqa: F401  (the task and architectures the checkpoint names)
    from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator
    from flallm_plugin.models.fingerprint import feature_fingerprint
    from flallm_plugin.models.stage1_features import LightTFeatures, feature_width, stage1_features

    use_cuda = torch.cuda.is_available() and not args.cpu
    overrides = {"data": os.path.abspath(args.data)}
    model, cfg, task = load_stage1(args, overrides)
    stage1 = LightTFeatures(model.encoder)
    fingerprint = feature_fingerprint(stage1, args.level)
    feat_dim = feature_width(stage1, args.level)
    if args.fp16:
        model.half()
    if use_cuda:
        model.cuda()
    model.eval()
    encoder = model.encoder
    data_cfg, spec = task.data_cfg, task.visual_input
    if spec.features:
        raise ValueError(f"{data_cfg.path}: input_type is {spec.input_type!r}; features need video input")
    os.makedirs(os.path.join(out_dir, "features"), exist_ok=True)
    summary = {}
    for split in [s for s in args.splits.split(",") if s]:
        if not os.path.isfile(os.path.join(args.data, f"{split}.tsv")):
            logger.warning(f"{split}.tsv not found in {args.data}: split skipped")
            continue
        dataset = SignTranslationDatasetCreator.from_tsv(
            args.data, data_cfg, split, task.target_dictionary, task.bpe, is_train_split=False,
            visual_input=spec, augment=False, seed=cfg.common.seed,
        )
        os.makedirs(os.path.join(out_dir, "features", split))
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=args.batch_size, shuffle=False, collate_fn=dataset.collater,
            num_workers=args.num_workers,
        )
        rows, t0 = [], time.time()
        with torch.no_grad():
            for sample in tqdm(loader, desc=f"extracting {split}", unit="batch"):
                sample = utils.move_to_cuda(sample) if use_cuda else sample
                src, lengths = sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"]
                feats, n = stage1_features(encoder, src, lengths, args.level)
                feats = feats.float().cpu().numpy()
                for b, idx in enumerate(sample["id"].tolist()):
                    sid = dataset.ids[idx]
                    if "/" in sid or sid.startswith("."):
                        raise ValueError(f"{dataset.where(idx)}: id {sid!r} cannot be used as a file name")
                    arr = np.ascontiguousarray(feats[b, : int(n[b])])
                    rel = os.path.join("features", split, sid + ".npy")
                    np.save(os.path.join(out_dir, rel), arr)
                    rows.append((idx, [sid, rel, arr.shape[0], dataset.tgt_texts[idx], dataset.speakers[idx]]))
        rows.sort()
        write_manifest(
            os.path.join(out_dir, f"{split}.tsv"), [r for _, r in rows],
            MANIFEST_COLUMNS,
        )
        summary[split] = {"rows": len(rows), "seconds": round(time.time() - t0, 1)}

    # vocabulary and subword model travel with the features; the config says what they are
    config = copy_text_assets(data_cfg, out_dir)
    config.update({
        "video_root": ".",
        "input_type": "features",
        "feature_level": args.level,
        "feature_dim": feat_dim,
        # a checkpoint's features are sampled as its stage 1 was; ResNet features keep every frame,
        # and training samples them at the video data's rate (a new phase each epoch)
        "sampling_rate": 1.0 if args.checkpoint is not None else data_cfg.sampling_rate,
        "source_sampling_rate": spec.sampling_rate,
        "extracted_from": extracted_from(args),
        "visual_fingerprint": fingerprint,
    })
    if args.tgt_lang_tag is not None:
        config["tgt_lang_tag"] = args.tgt_lang_tag
    write_data_config(os.path.join(out_dir, "config.yaml"), config)
    return {"splits": summary, "feature_dim": feat_dim}


def cli_main(argv=None):
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO,
                        stream=sys.stdout, force=True)  # importing fairseq ran its modules' basicConfig
    args = get_parser().parse_args(argv)
    extract(args)


if __name__ == "__main__":
    cli_main()
