#!/usr/bin/env python3
"""Procedural synthetic sign-language dataset in the PHOENIX-2014-T release layout.

The command line of :func:`flallm_plugin.synthetic.weather.generate` (where the design
is described); it writes ``OUT/PHOENIX-2014-T`` and ``OUT/text_corpus.de.txt`` and
prints a JSON summary. Usage::

    python examples/synthetic/generate_dataset.py --out-root /tmp/synth --seed 1
"""
import argparse
import json
from typing import Dict, Iterable, Optional, Tuple

from flallm_plugin.synthetic.weather import generate, render_sign_sheet


def _frame_size(text: str) -> Tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"frame size must look like 56x70, got {text!r}")
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError("frame size must be at least 8x8")
    return w, h


def main(argv: Optional[Iterable[str]] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out-root", required=True, help="writes OUT/PHOENIX-2014-T and OUT/text_corpus.de.txt")
    p.add_argument("--n-train", type=int, default=360)
    p.add_argument("--n-dev", type=int, default=40)
    p.add_argument("--n-test", type=int, default=60)
    p.add_argument("--n-signers", type=int, default=5)
    p.add_argument("--frame-size", type=_frame_size, default=(56, 70), metavar="WxH",
                   help="frame width x height (the real release: 210x260)")
    p.add_argument("--text-corpus-size", type=int, default=20000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT/PHOENIX-2014-T even if it does not look synthetic")
    p.add_argument("--sign-sheet", metavar="PNG", help="also save a montage of every sign for every signer")
    args = p.parse_args(argv)
    summary = generate(args.out_root, n_train=args.n_train, n_dev=args.n_dev, n_test=args.n_test,
                       n_signers=args.n_signers, frame_w=args.frame_size[0], frame_h=args.frame_size[1],
                       seed=args.seed, text_corpus_size=args.text_corpus_size, overwrite=args.overwrite,
                       verbose=True)
    if args.sign_sheet:
        render_sign_sheet(args.sign_sheet, args.frame_size[0], args.frame_size[1], args.n_signers, args.seed)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
