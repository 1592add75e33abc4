#!/usr/bin/env python
"""flallm-translate: translate sign-language videos with a model directory (flallm-export).

    flallm-translate MODEL_DIR clip.mp4 frames_dir/ feats.npy
    flallm-translate MODEL_DIR --list videos.txt --batch-size 8 --json > out.jsonl
    find clips -name '*.mp4' | flallm-translate MODEL_DIR -
    flallm-translate MODEL_DIR long.mp4 --start 12.5 --end 19

An INPUT is a video file (mp4/avi/mkv/mov/webm), a frame folder (png/jpg, sorted naturally), or a
``.npy`` array of the features the model's adapter reads (flallm-extract-features output with the
model's stage-1 visual encoder); ``-`` reads inputs from stdin, one per line, ``--list FILE`` from a
file. The model is loaded once; inputs are read as fairseq-generate reads a data split (sampling
phase 0, centre crop) and decoded with fairseq's SequenceGenerator (beam 5), so the output is
fairseq-generate's ``D-`` line for the same video.

Prints ``INPUT<TAB>translation`` per input (``INPUT<TAB>score<TAB>translation`` per hypothesis with
``--nbest`` > 1), or with ``--json`` one JSON object per line: translation, n-best with scores
(fairseq's length-normalised log-probability, natural log), frames read, seconds. Results stream:
the inputs are translated in chunks of ``--batch-size``, in the order given, and each chunk's results
are printed (and flushed) as soon as it is done, with a progress line ``[k/N] INPUT`` per input on
stderr. The inputs of a chunk are checked before it is translated: a bad one (unreadable, no frames,
wrong feature width) stops with one line naming it (the results of the chunks before it are printed),
unless ``--skip-bad`` (reported on stderr, the rest translated).
"""
import argparse
import json
import logging
import sys

logger = logging.getLogger("flallm.translate")


def get_parser():
    p = argparse.ArgumentParser(prog="flallm-translate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", metavar="MODEL_DIR", help="model directory written by flallm-export")
    p.add_argument("inputs", metavar="INPUT", nargs="*", help="video file, frame folder or .npy features; - = stdin")
    p.add_argument("--list", metavar="FILE", help="file of inputs, one per line")
    p.add_argument("--batch-size", type=int, default=8, help="inputs per forward pass")
    p.add_argument("--beam", type=int, default=5, help="beam size")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses printed per input")
    p.add_argument("--lenpen", type=float, default=1.0, help="length penalty (> 1 favours longer output)")
    p.add_argument("--max-len-a", type=float, default=0, help="max output length = a * source length + b")
    p.add_argument("--max-len-b", type=int, default=200, help="max output length = a * source length + b")
    p.add_argument("--start", type=float, default=None, help="clip start in seconds (video files)")
    p.add_argument("--end", type=float, default=None, help="clip end in seconds (video files)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is available")
    p.add_argument("--fp16", action="store_true", help="half precision (GPU)")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    p.add_argument("--skip-bad", action="store_true", help="report bad inputs on stderr and translate the rest")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress lines ([k/N] INPUT on stderr as each input is done, for more than one input)")
    return p


def read_inputs(args) -> list:
    inputs = []
    for x in args.inputs:
        if x == "-":
            inputs += [line.strip() for line in sys.stdin if line.strip()]
        else:
            inputs.append(x)
    if args.list:
        with open(args.list, encoding="utf-8") as f:
            inputs += [line.strip() for line in f if line.strip()]
    return inputs


def translate(args, out=sys.stdout) -> int:
    from flallm_plugin.hub import SignTranslator, check_clip_bounds

    check_clip_bounds(args.start, args.end, prefix="--")  # before the model is loaded
    if args.batch_size < 1:
        raise ValueError(f"--batch-size {args.batch_size}: expected at least 1")
    inputs = read_inputs(args)
    if not inputs:
        raise ValueError("no input: give video files, frame folders or .npy files, '-' (stdin) or --list FILE")
    translator = SignTranslator.from_pretrained(args.model_dir, cpu=args.cpu, fp16=args.fp16)
    progress = not args.no_progress and len(inputs) > 1
    skipped = done = 0
    for first in range(0, len(inputs), args.batch_size):  # a chunk at a time: results as they come
        results = translator.translate_full(
            inputs[first : first + args.batch_size], beam=args.beam, nbest=args.nbest, start=args.start,
            end=args.end, batch_size=args.batch_size, skip_bad=args.skip_bad, lenpen=args.lenpen,
            max_len_a=args.max_len_a, max_len_b=args.max_len_b,
        )
        for r in results:
            done += 1
            if r.error is not None:
                skipped += 1
                print(f"flallm-translate: skipped: {r.error}", file=sys.stderr)
            if args.json:
                print(json.dumps(r.to_json(), ensure_ascii=False), file=out)
            elif r.error is None and args.nbest == 1:
                print(f"{r.input}\t{r.translation}", file=out)
            elif r.error is None:
                for text, score in r.nbest:
                    print(f"{r.input}\t{score:.4f}\t{text}", file=out)
            out.flush()
            if progress:
                print(f"[{done}/{len(inputs)}] {r.input}", file=sys.stderr, flush=True)
    if skipped:
        print(f"flallm-translate: {skipped} of {len(inputs)} inputs skipped", file=sys.stderr)
    return 0


def cli_main(argv=None):
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.WARNING,
                        stream=sys.stderr, force=True)  # stdout is for translations only
    args = get_parser().parse_args(argv)
    from flallm_plugin.checkpoint_safety import UnsafeCheckpointError
    from flallm_plugin.data.errors import SignDataError

    try:
        sys.exit(translate(args))
    except (SignDataError, FileNotFoundError, ValueError, UnsafeCheckpointError) as e:
        for line in str(e).splitlines():
            print(f"flallm-translate: error: {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli_main()
