#!/usr/bin/env python
"""Seconds per stage-2 update: cached features vs raw video, side by side in one run.

Stage 2 freezes the visual encoder, so its features can be cached once
(``flallm-extract-features``). This builds one ``sign_mbart`` model (random weights;
same code path as training: fairseq's label-smoothed criterion, Adam on the trainable
parameters) and times updates on the same synthetic batch given either as uint8 videos
(ResNet-18 + temporal module run every step, without gradients) or as the cached
sign-wise features, and prints the ratio.

    python benchmarks/stage2_speed.py                       # CPU-friendly defaults
    python benchmarks/stage2_speed.py --device cuda --arch sign_mbart_large --size 224 --batch-size 16
"""
import argparse
import os
import tempfile
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_data_dir(root, vocab, input_type="video"):
    """A minimal data directory (dictionary + config) so the task can be set up."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "dict.txt"), "w", encoding="utf-8") as f:
        for i in range(vocab - 4):
            f.write(f"w{i} 1\n")
    with open(os.path.join(root, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(f"vocab_filename: dict.txt\ninput_type: {input_type}\nfeature_level: sign\n")
    return root


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--arch", default="sign_mbart_tiny", help="sign_mbart_tiny or sign_mbart_large")
    p.add_argument("--size", type=int, default=112, help="frame size (px)")
    p.add_argument("--frames", type=int, default=116, help="raw frames per video (PHOENIX average ~116)")
    p.add_argument("--sampling-rate", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--target-len", type=int, default=24)
    p.add_argument("--vocab", type=int, default=2400)
    p.add_argument("--updates", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    args = p.parse_args()

    import flallm_plugin  # noqa: F401
    from fairseq import options, tasks

    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()

    def build(input_type):
        data = make_data_dir(os.path.join(tmp, input_type), args.vocab, input_type)
        margs = options.parse_args_and_arch(options.get_training_parser(), [
            data, "--user-dir", os.path.join(REPO, "flallm_plugin"), "--task", "sign_translation", "--arch",
            args.arch, "--pretrained-mbart", "none", "--load-visual-encoder-from", "none",
            "--visual-backbone-weights", "none", "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2",
        ] + (["--cpu"] if args.device == "cpu" else []))
        task = tasks.setup_task(margs)
        return task.build_model(margs).to(args.device), task.build_criterion(margs).to(args.device)

    # the same weights, one model reading videos and one reading cached sign-wise features
    model, criterion = build("video")
    feat_model, _ = build("features")
    feat_model.load_state_dict(model.state_dict())

    n = int(np.ceil(args.frames * args.sampling_rate))
    B, T = args.batch_size, args.target_len
    gen = torch.Generator().manual_seed(0)
    videos = torch.randint(0, 256, (B, n, args.size, args.size, 3), dtype=torch.uint8, generator=gen)
    lengths = torch.full((B,), n, dtype=torch.long)
    tgt = torch.randint(4, args.vocab, (B, T), generator=gen)
    tgt[:, -1] = 2
    prev = torch.cat([tgt[:, -1:], tgt[:, :-1]], dim=1)
    model.eval()
    with torch.no_grad():
        feats, _ = model.encoder.visual(videos.to(args.device), lengths.to(args.device), level="sign")
    samples = {}
    for name, src in (("raw video", videos), ("cached features", feats.cpu())):
        samples[name] = {
            "net_input": {"src_tokens": src, "src_lengths": lengths, "prev_output_tokens": prev},
            "target": tgt, "ntokens": B * T, "nsentences": B,
        }

    optimizers = {m: torch.optim.Adam([q for q in m.parameters() if q.requires_grad], lr=1e-5)
                  for m in (model, feat_model)}

    def step(m, sample):
        m.train()
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.amp and args.device == "cuda"):
            loss, _, _ = criterion(m, sample)
        optimizers[m].zero_grad(set_to_none=True)
        loss.backward()
        optimizers[m].step()

    rows = []
    for (name, sample), m in zip(samples.items(), (model, feat_model)):
        # what a training step moves to the device: uint8 frames or float features
        moved = {k: v for k, v in sample.items()}
        dev_sample = {
            "net_input": {k: v.to(args.device) for k, v in sample["net_input"].items()},
            "target": sample["target"].to(args.device), "ntokens": sample["ntokens"], "nsentences": B,
        }
        for _ in range(args.warmup):
            step(m, dev_sample)
        times = []
        for _ in range(args.updates):
            if args.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(m, dev_sample)
            if args.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        mb = moved["net_input"]["src_tokens"].numel() * moved["net_input"]["src_tokens"].element_size() / 2**20
        rows.append((name, float(np.mean(times)), float(np.min(times)), mb))

    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    print(f"{args.arch}: {trainable / 1e6:.2f}M trainable parameters (visual encoder frozen); device {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"batch {B} videos x {n} sampled frames ({args.frames} raw at {args.sampling_rate:.0%}) at {args.size}px, "
          f"targets {T} tokens")
    print(f"{'input':<18}{'s/update':>10}{'min':>9}{'input MB/batch':>16}")
    for name, mean, mn, mb in rows:
        print(f"{name:<18}{mean:>10.3f}{mn:>9.3f}{mb:>16.2f}")
    print(f"speed-up raw video -> cached features: {rows[0][1] / rows[1][1]:.2f}x per update")


if __name__ == "__main__":
    main()
