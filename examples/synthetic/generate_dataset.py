#!/usr/bin/env python3
"""Procedural synthetic sign-language dataset in the PHOENIX-2014-T release layout.

The command line of :func:`flallm_tools.synthetic.weather.generate` (``--preset weather``,
the demo's data) and :func:`flallm_tools.synthetic.hard.generate_hard` (``--preset hard``:
321 signs, 5-12 signs a sentence, thousands of German word types, 9 co-articulating
signers; ``--layout how2sign`` writes it as How2Sign mp4 clips), where the designs are
described; it writes ``OUT/PHOENIX-2014-T`` (or the How2Sign files) and
``OUT/text_corpus.de.txt`` and prints a JSON summary. Usage::

    python examples/synthetic/generate_dataset.py --out-root /tmp/synth --seed 1
    python examples/synthetic/generate_dataset.py --preset hard --out-root /tmp/hard --seed 1
"""
import argparse
import json
from typing import Dict, Iterable, Optional, Tuple

from flallm_tools.synthetic.hard import LAYOUTS, generate_hard
from flallm_tools.synthetic.weather import generate, render_sign_sheet

# sizes of each preset (None in the parser: the preset decides)
DEFAULTS = {
    "weather": {"n_train": 360, "n_dev": 40, "n_test": 60, "n_signers": 5, "text_corpus_size": 20000},
    "hard": {"n_train": 2000, "n_dev": 200, "n_test": 200, "text_corpus_size": 50000},
}


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
    p.add_argument("--preset", choices=sorted(DEFAULTS), default="weather",
                   help="weather: the demo's 18-sign weather forecasts; hard: 321 signs, long sentences, "
                   "a rich German vocabulary, co-articulation, 9 signers")
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="release layout of --preset hard (default phoenix; how2sign: mp4 clips)")
    p.add_argument("--n-train", type=int, help="weather: 360, hard: 2000")
    p.add_argument("--n-dev", type=int, help="weather: 40, hard: 200")
    p.add_argument("--n-test", type=int, help="weather: 60, hard: 200")
    p.add_argument("--n-signers", type=int, help="weather only (default 5); hard has 9 signers")
    p.add_argument("--frame-size", type=_frame_size, default=(56, 70), metavar="WxH",
                   help="frame width x height (the real release: 210x260)")
    p.add_argument("--text-corpus-size", type=int, help="weather: 20000, hard: 50000")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--overwrite", action="store_true",
                   help="replace an output that is not a complete synthetic release (never one whose corpus "
                        "names videos this generator did not write: real data)")
    p.add_argument("--sign-sheet", metavar="PNG", help="weather only: also save a montage of every sign for "
                   "every signer")
    args = p.parse_args(argv)
    if args.preset == "hard":
        for option, value in (("--n-signers", args.n_signers), ("--sign-sheet", args.sign_sheet)):
            if value is not None:
                p.error(f"{option} applies to --preset weather only (the hard preset has 9 signers, no sign sheet)")
    elif args.layout is not None:
        p.error("--layout applies to --preset hard only (the weather preset writes PHOENIX-2014-T)")
    sizes = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in DEFAULTS[args.preset].items()}
    w, h = args.frame_size
    if args.preset == "hard":
        summary = generate_hard(args.out_root, frame_w=w, frame_h=h, seed=args.seed, layout=args.layout or "phoenix",
                                overwrite=args.overwrite, verbose=True, **sizes)
    else:
        summary = generate(args.out_root, frame_w=w, frame_h=h, seed=args.seed, overwrite=args.overwrite,
                           verbose=True, **sizes)
    if args.sign_sheet:
        render_sign_sheet(args.sign_sheet, w, h, sizes["n_signers"], args.seed)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


if __name__ == "__main__":
    main()
