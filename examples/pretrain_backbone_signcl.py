#!/usr/bin/env python3
"""Self-supervised pre-training of the ResNet-18 on a data directory's own training videos (no labels,
no text model): SignCL's temporal contrastive loss, as a separate stage before stage 1.

A stage 1 started from a random ResNet-18 on a small corpus becomes a language model of its targets
(docs/grounding.md): the cross-entropy reaches the CNN too weakly to teach it hand forms. SignCL
(NeurIPS 2024) adds to the visual features a contrastive loss that needs no annotation: within one
video, frames next to each other are pulled together and frames far apart (farther than a margin
from the sentence's length, i.e. most likely other signs) are pushed at least ``--max-distance``
apart; the only thing that tells far frames of one video apart is the signer's hands and body, so
the CNN has to see them. SignCL adds it to the training loss; here it trains the ResNet alone, as a
separate stage (SCL-SLT and GFSLT-VLP pre-train separately), so that stage 1 can then start from its
file, frozen (``flallm-extract-features --visual-backbone-weights FILE --level frame``) or fine-tuned::

    python examples/pretrain_backbone_signcl.py DATA --out signcl-resnet18.pth            # from a random ResNet
    python examples/pretrain_backbone_signcl.py DATA --init resnet18-f37072fd.pth --out ...  # from ImageNet's

Each epoch reads one window of ``--window`` consecutive frames (every frame, not the sampled ones:
neighbours are then frames of one sign) from every training video, through the data directory's
own transform (resize, crop; ``--augment`` for its augmentation), ``--videos-per-batch`` windows a
step. Loss per window of frames f_1..f_W (the ResNet's 512-d outputs): the mean over neighbour pairs
(|i - j| = 1) of ||f_i - f_j||², plus the mean over far pairs (|i - j| > margin) of
max(0, max_distance - ||f_i - f_j||)²; margin = ``--margin-factor`` x the video's frames per target
word. It writes the ResNet's ``state_dict()`` (torchvision's keys, no ``fc``), which
``--visual-backbone-weights FILE`` loads as ``resnet18-f37072fd.pth``, and prints a JSON summary
(loss per epoch on the training windows and on ``--valid-subset``'s, the time).
"""
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

import backbone_pretraining


def signcl_loss(feats: torch.Tensor, lengths: torch.Tensor, margins: torch.Tensor, max_distance: float):
    """SignCL's temporal contrastive loss on B x W x D frame features of consecutive frames.

    ``lengths`` (B): valid frames of each window; ``margins`` (B): frames apart beyond which two
    frames of a window count as different signs. Returns (loss, positive term, negative term)."""
    B, W, _ = feats.shape
    dist = torch.cdist(feats, feats)  # B x W x W (Euclidean)
    pos_i = torch.arange(W, device=feats.device)
    gap = (pos_i[None, :] - pos_i[:, None]).abs()  # W x W
    valid = (pos_i[None, :] < lengths[:, None])  # B x W
    pair = valid[:, :, None] & valid[:, None, :]
    pos = pair & (gap == 1)[None]
    neg = pair & (gap[None] > margins[:, None, None])
    pos_term = (dist.pow(2) * pos).sum() / pos.sum().clamp_min(1)
    neg_term = ((max_distance - dist).clamp_min(0).pow(2) * neg).sum() / neg.sum().clamp_min(1)
    return pos_term + neg_term, pos_term, neg_term


def windows(dataset, indices: Sequence[int], window: int, rng: np.random.Generator):
    """uint8 B x W x H x W x 3 windows of consecutive frames (one per video, at a random start) and their
    lengths, padded by the dataset's own collater."""
    items = []
    for i in indices:
        item = dataset[int(i)]  # every frame, transformed
        start = int(rng.integers(0, max(1, item.source.size(0) - window + 1)))
        item.source = item.source[start: start + window]
        items.append(item)
    net_input = dataset.collater(items)["net_input"]
    return net_input["src_tokens"], net_input["src_lengths"]


def frames_per_word(dataset) -> List[float]:
    """Each video's frames per word of its target sentence (the manifest's ``n_frames`` and ``tgt_text``)."""
    return [int(n) / max(1, len(text.split())) for n, text in zip(dataset.n_frames, dataset.tgt_texts)]


def run_epoch(encoder, dataset, margins_of, args, rng, opt=None, sched=None) -> float:
    train = opt is not None
    encoder.backbone.train(train)
    order = rng.permutation(len(dataset)) if train else np.arange(len(dataset))
    total, n = 0.0, 0
    for i in range(0, len(order), args.videos_per_batch):
        idx = order[i: i + args.videos_per_batch]
        src, lengths = windows(dataset, idx, args.window, rng)
        margins = torch.tensor([max(1, math.ceil(args.margin_factor * margins_of[j])) for j in idx])
        with torch.set_grad_enabled(train):
            feats = encoder.forward_backbone(src, lengths)
            loss, _, _ = signcl_loss(feats, lengths, margins, args.max_distance)
        if train:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        total, n = total + loss.item() * len(idx), n + len(idx)
    return total / max(1, n)


def get_parser():
    p = backbone_pretraining.get_parser(__doc__, "its windows' loss is reported each epoch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--window", type=int, default=24, help="consecutive frames a video gives per epoch")
    p.add_argument("--videos-per-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam, one cycle")
    p.add_argument("--margin-factor", type=float, default=1.0,
                   help="frames farther apart than this x the video's frames per target word are negatives")
    p.add_argument("--max-distance", type=float, default=32.0, help="negatives are pushed this far apart")
    return p


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    if args.window < 2 or args.videos_per_batch < 1 or args.epochs < 1:
        sys.exit("--window must be >= 2, --videos-per-batch and --epochs >= 1")
    # every frame: neighbours are one sign's
    encoder, init, datasets = backbone_pretraining.setup(args, sampling_rate=1.0)
    data = {role: (dataset, frames_per_word(dataset)) for role, dataset in datasets.items()}
    params = list(encoder.backbone.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    steps = args.epochs * math.ceil(len(data["train"][0]) / args.videos_per_batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 3]))
    t0, history = time.perf_counter(), []
    for epoch in range(1, args.epochs + 1):
        data["train"][0].set_epoch(epoch)
        row = {"epoch": epoch, "train_loss": round(run_epoch(encoder, *data["train"], args, rng, opt, sched), 4)}
        if "valid" in data:
            row["valid_loss"] = round(run_epoch(encoder, *data["valid"], args, np.random.default_rng(args.seed)), 4)
        history.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    backbone_pretraining.save_backbone(encoder, args.out)
    summary = {"out": os.path.abspath(args.out), "init": init, "data": os.path.abspath(args.data),
               "train_videos": len(data["train"][0]), "history": history,
               "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
