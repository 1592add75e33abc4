#!/usr/bin/env python3
"""Weakly supervised pre-training of the ResNet-18 on a data directory's own training videos and their
sentences: which words a video's sentence contains, in any order (Sign2GPT's pseudo-glosses), as a
separate stage before stage 1.

Sign2GPT (ICLR 2024) pre-trains its sign encoder on pseudo-glosses: the words of the target sentence
stand in for the glosses a gloss-free corpus lacks, and the encoder is asked which of them the video
contains, order-free. GFSLT-VLP and SCL-SLT likewise pre-train the visual side in a separate stage
before translation. Here that stage trains the ResNet itself, end to end, with a small head that is
thrown away: the ResNet's 512-d feature of every sampled frame → two 1-D convolutions over time
(width ``--hidden``, kernel 5, ReLU) → one logit per word of the vocabulary, a word's video score is its
best frame's (max over time: multiple-instance learning), and a binary cross-entropy (summed over the
vocabulary, mean over videos) compares it with whether the sentence has the word. The vocabulary is the
lower-cased whitespace words of the training sentences found in at least ``--min-count`` of them; the
head's bias starts at each word's log-odds in the training sentences, so frequent words are a prior the
ResNet need not learn. With ``--loss ctc`` the head has one more class, a blank, and a CTC loss over the sampled
frames asks for the vocabulary words in their order: for targets in the order of the signs (a gloss data
directory's sign sequences, ``--target-column orth``: the recognition control's ResNet, docs/grounding.md), not
sentences. Stage 1 then starts from the written file, frozen
(``flallm-extract-features --visual-backbone-weights FILE --level frame``) or fine-tuned::

    python examples/pretrain_backbone_pseudo_gloss.py DATA --init signcl-resnet18.pth --out pg-resnet18.pth
    python examples/pretrain_backbone_pseudo_gloss.py DATA --init pg-resnet18.pth --out ... --epochs 6 --seed 2

From a random ResNet (``--init none``) the loss collapses to the words' prior (docs/grounding.md): start from
a ResNet that already sees something, e.g. SignCL's (``pretrain_backbone_signcl.py``) or ImageNet's.

The videos are sampled as the data config says (``sampling_rate``, or ``--sampling-rate``), through its
transform (resize, crop; ``--augment`` for its augmentation). Reported per epoch (JSON lines on stderr,
a summary on stdout): the loss and ``recall`` (%: of each video's distinct vocabulary words, the share
among its K best-scoring words, K their number) on the training videos and on ``--valid-subset``'s,
beside ``prior_recall``, the recall of the word frequencies alone (what a ResNet that sees nothing
gets). It writes the ResNet's ``state_dict()`` (torchvision's keys, no ``fc``), which
``--visual-backbone-weights FILE`` loads as ``resnet18-f37072fd.pth``.
"""
import collections
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import backbone_pretraining
from flallm_plugin.models.visual_encoder import lengths_to_mask


def words(text: str) -> List[str]:
    return text.lower().split()


def build_vocab(texts: Sequence[str], min_count: int) -> Dict[str, int]:
    """Words found in at least ``min_count`` of ``texts``, most frequent first (ties alphabetical)."""
    df = collections.Counter(w for t in texts for w in set(words(t)))
    kept = sorted((w for w, n in df.items() if n >= min_count), key=lambda w: (-df[w], w))
    return {w: i for i, w in enumerate(kept)}


def bag_of_words(texts: Sequence[str], vocab: Dict[str, int]) -> torch.Tensor:
    """len(texts) x len(vocab) 0/1 targets."""
    out = torch.zeros(len(texts), len(vocab))
    for i, t in enumerate(texts):
        for w in words(t):
            if w in vocab:
                out[i, vocab[w]] = 1.0
    return out


def word_sequences(texts: Sequence[str], vocab: Dict[str, int]) -> List[List[int]]:
    """Each text's vocabulary words in order (the others left out): the targets of ``--loss ctc``."""
    return [[vocab[w] for w in words(t) if w in vocab] for t in texts]


class PseudoGlossHead(nn.Module):
    """B x T x 512 frame features -> B x V word logits (max over the valid frames); with ``blank`` one more class,
    CTC's blank, and ``frame_logits`` gives every frame's B x T x (V + 1) logits."""

    def __init__(self, in_dim: int, hidden: int, prior: torch.Tensor, blank: bool = False):
        super().__init__()
        self.conv1 = nn.Conv1d(in_dim, hidden, 5, padding=2)
        self.conv2 = nn.Conv1d(hidden, hidden, 5, padding=2)
        self.out = nn.Linear(hidden, prior.numel() + int(blank))
        if not blank:
            with torch.no_grad():
                self.out.bias.copy_(torch.logit(prior.clamp(1e-4, 1 - 1e-4)))

    def frame_logits(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        keep = lengths_to_mask(lengths, feats.size(1))[:, None, :]  # B x 1 x T
        x = feats.transpose(1, 2).masked_fill(~keep, 0)
        x = F.relu(self.conv1(x)).masked_fill(~keep, 0)  # padding stays zero for the next convolution
        x = F.relu(self.conv2(x)).transpose(1, 2)
        return self.out(x)  # B x T x classes

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = lengths_to_mask(lengths, feats.size(1))
        logits = self.frame_logits(feats, lengths)
        return logits.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)


def pseudo_gloss_loss(logits: torch.Tensor, bags: torch.Tensor):
    """(BCE summed over the vocabulary, mean over videos; recall hits; distinct target words)."""
    loss = F.binary_cross_entropy_with_logits(logits, bags, reduction="sum") / logits.size(0)
    return (loss,) + recall_counts(logits, bags)


def ctc_pseudo_gloss_loss(frame_logits: torch.Tensor, lengths: torch.Tensor, sequences: List[List[int]],
                          bags: torch.Tensor):
    """B x T x (V + 1) frame logits (blank last) -> (CTC of the words in order, mean over videos; recall hits;
    distinct target words). A word's video score for recall is its best frame's log-probability. A video with
    fewer sampled frames than CTC needs adds zero (``zero_infinity``)."""
    lprobs = F.log_softmax(frame_logits, dim=-1)
    targets = torch.tensor([w for seq in sequences for w in seq], dtype=torch.long)
    loss = F.ctc_loss(lprobs.transpose(0, 1), targets, lengths, torch.tensor([len(q) for q in sequences]),
                      blank=lprobs.size(-1) - 1, reduction="sum", zero_infinity=True) / lprobs.size(0)
    mask = lengths_to_mask(lengths, lprobs.size(1))
    scores = lprobs[..., :-1].masked_fill(~mask[..., None], float("-inf")).amax(dim=1)
    return (loss,) + recall_counts(scores, bags)


def recall_counts(scores: torch.Tensor, bags: torch.Tensor):
    """(of each row's target words, how many are among its K best-scoring words, K their number; summed), and
    the number of target words."""
    k = bags.sum(dim=1).long()
    ranked = scores.argsort(dim=1, descending=True)
    top = torch.arange(scores.size(1))[None, :] < k[:, None]  # the first K ranks of each row
    hits = bags.gather(1, ranked)[top].sum()
    return hits, k.sum()


def run_epoch(encoder, head, dataset, bags, sequences, args, rng, opt=None, sched=None) -> Dict[str, float]:
    train = opt is not None
    encoder.backbone.train(train)
    head.train(train)
    order = rng.permutation(len(dataset)) if train else np.arange(len(dataset))
    total, hits, n_words = 0.0, 0.0, 0.0
    for i in range(0, len(order), args.videos_per_batch):
        idx = order[i: i + args.videos_per_batch]
        net_input = dataset.collater([dataset[int(j)] for j in idx])["net_input"]
        with torch.set_grad_enabled(train):
            feats = encoder.forward_backbone(net_input["src_tokens"], net_input["src_lengths"])
            if args.loss == "ctc":
                lengths = net_input["src_lengths"]
                loss, h, n = ctc_pseudo_gloss_loss(head.frame_logits(feats, lengths), lengths,
                                                   [sequences[int(j)] for j in idx], bags[idx])
            else:
                loss, h, n = pseudo_gloss_loss(head(feats, net_input["src_lengths"]), bags[idx])
        if train:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        total, hits, n_words = total + loss.item() * len(idx), hits + h.item(), n_words + n.item()
    return {"loss": total / max(1, len(order)), "recall": 100 * hits / max(1, n_words)}


def get_parser():
    p = backbone_pretraining.get_parser(__doc__, "its loss and recall are reported each epoch")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--videos-per-batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3, help="Adam, one cycle")
    p.add_argument("--hidden", type=int, default=256, help="width of the head's two temporal convolutions")
    p.add_argument("--min-count", type=int, default=3, help="a word is in the vocabulary if this many sentences have it")
    p.add_argument("--sampling-rate", type=float, default=None, help="share of frames read (default: the data config's)")
    p.add_argument("--loss", choices=["bag", "ctc"], default="bag",
                   help="bag: which words, in any order (max over time, BCE); ctc: the words in their order, CTC over "
                        "the frames (for targets in the signs' order: sign sequences, not sentences)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = get_parser().parse_args(argv)
    if args.videos_per_batch < 1 or args.epochs < 1 or args.min_count < 1:
        sys.exit("--videos-per-batch, --epochs and --min-count must be >= 1")
    encoder, init, data = backbone_pretraining.setup(args, sampling_rate=args.sampling_rate)
    vocab = build_vocab(data["train"].tgt_texts, args.min_count)
    if not vocab:
        sys.exit(f"{args.data}/{args.train_subset}.tsv: no word is in {args.min_count} sentences; lower --min-count")
    bags = {role: bag_of_words(ds.tgt_texts, vocab) for role, ds in data.items()}
    sequences = {role: word_sequences(ds.tgt_texts, vocab) for role, ds in data.items()}
    prior = bags["train"].mean(dim=0)
    head = PseudoGlossHead(512, args.hidden, prior, blank=args.loss == "ctc")
    prior_recall = {role: round(100 * (lambda h, n: h.item() / max(1, n.item()))(
        *recall_counts(prior.expand_as(b), b)), 2) for role, b in bags.items()}
    params = list(encoder.backbone.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)
    steps = args.epochs * math.ceil(len(data["train"]) / args.videos_per_batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    rng = np.random.default_rng(np.random.SeedSequence([args.seed, 5]))
    t0, history = time.perf_counter(), []
    for epoch in range(1, args.epochs + 1):
        data["train"].set_epoch(epoch)
        row = {"epoch": epoch}
        row.update({f"train_{k}": round(v, 4) for k, v in
                    run_epoch(encoder, head, data["train"], bags["train"], sequences["train"], args, rng, opt,
                              sched).items()})
        if "valid" in data:
            row.update({f"valid_{k}": round(v, 4) for k, v in run_epoch(
                encoder, head, data["valid"], bags["valid"], sequences["valid"], args,
                np.random.default_rng(args.seed)).items()})
        row["seconds"] = round(time.perf_counter() - t0, 1)
        history.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    backbone_pretraining.save_backbone(encoder, args.out)
    summary = {"out": os.path.abspath(args.out), "init": init, "data": os.path.abspath(args.data),
               "train_videos": len(data["train"]), "loss": args.loss, "vocab": len(vocab), "prior_recall": prior_recall,
               "history": history, "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
