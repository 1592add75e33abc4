"""What the separate ResNet-18 pre-training stages on a data directory's own training videos share
(``pretrain_backbone_signcl.py``, ``pretrain_backbone_pseudo_gloss.py``): their common options, the
encoder and datasets they train on, and the torchvision-format file they write."""
import argparse
import os
import sys
from typing import Dict, Optional, Tuple

import torch

from flallm_plugin.data.atomic_file import atomic_path
from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.sign_translation_dataset import SignTranslationDataset, SignTranslationDatasetCreator
from flallm_plugin.data.visual_input import VisualInputSpec
from flallm_plugin.models.visual_encoder import VisualEncoder


def get_parser(doc: str, valid_help: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("data", help="a sign_translation data directory of video input (config.yaml, {split}.tsv)")
    p.add_argument("--out", required=True, help="the ResNet-18 state dict to write (.pth)")
    p.add_argument("--init", default="none",
                   help="start from these ResNet-18 weights (a torchvision state dict file) or 'none' (random)")
    p.add_argument("--train-subset", default="train")
    p.add_argument("--valid-subset", default="dev", help=valid_help + " ('' for none)")
    p.add_argument("--augment", action="store_true", help="the data config's augmentation (default: resize + crop)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    return p


def setup(args, sampling_rate: Optional[float]) -> Tuple[VisualEncoder, Optional[str], Dict[str, SignTranslationDataset]]:
    """(the visual encoder holding ``--init``'s ResNet, the file it loaded or None, {"train": ..., "valid": ...}
    datasets of the data directory read at ``sampling_rate`` (None: the data config's)); bad input exits with
    one line."""
    if not args.out.endswith((".pth", ".pt")):
        sys.exit(f"--out {args.out}: give a .pth (or .pt) file name")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = SignDataConfig(os.path.join(args.data, "config.yaml"))
    spec = VisualInputSpec.from_data_cfg(cfg, sampling_rate=sampling_rate)
    if spec.features:
        sys.exit(f"{cfg.path}: input_type is {spec.input_type!r}; the ResNet trains on video input")
    encoder = VisualEncoder(mean=cfg.mean, std=cfg.std)
    try:
        init = encoder.load_backbone_weights(args.init)
    except (ValueError, FileNotFoundError) as e:  # one line naming the file and the format expected
        sys.exit(f"--init: {e}")
    data = {}
    for role, split in (("train", args.train_subset), ("valid", args.valid_subset)):
        if split:
            data[role] = SignTranslationDatasetCreator.from_tsv(
                args.data, cfg, split, None, None, is_train_split=role == "train", visual_input=spec,
                augment=args.augment and role == "train", seed=args.seed)
    return encoder, init, data


def save_backbone(encoder: VisualEncoder, out: str):
    """The ResNet's ``state_dict()`` without ``fc`` (torchvision's keys: ``--visual-backbone-weights`` loads it as
    ``resnet18-f37072fd.pth``), through a temporary name next to ``out`` renamed at the end."""
    with atomic_path(out) as tmp:
        torch.save({k: v for k, v in encoder.backbone.state_dict().items() if not k.startswith("fc.")}, tmp)
