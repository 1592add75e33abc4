#!/usr/bin/env python
"""Sampled frames per second that one data-loader worker delivers (the real code path).

The ``sign_translation`` task's ``load_dataset`` and fairseq's epoch iterator (``torch``
DataLoader with ``--num-workers`` workers, the task's collater) read PHOENIX-2014-T-sized
frame folders: 210 x 260 px PNG frames, ~116 frames per video (the coloured-block release of
``flallm_tools.synthetic.make_phoenix``, noisy enough that PNG does not compress them away),
prepared by ``preprocess/prep_phoenix14t.py`` (resize 256, crop 224). Training split: random
sampling phase, random crop and the affine augmentation (rotation / scale / translation).

A GPU consumes frames at ``CNN frames/s`` of ``benchmarks/stage1_speed.py``; with the usual
8-16 workers, each must deliver that divided by 8-16.

    python benchmarks/loader_speed.py                        # workers 0 and 1, sampling rate 1
    python benchmarks/loader_speed.py --workers 0,1,2 --sampling-rate 0.25
    python benchmarks/loader_speed.py --workers 1 --sampling-rate 0.25 --augment-on-device both   # interleaved
    python benchmarks/loader_speed.py --workers 1 --sampling-rate 0.25 --augment-on-device yes --store both

:func:`loader_frames_per_second` is the importable measurement (``benchmarks/run_all.py``);
:func:`make_phoenix_sized_data` writes the data it reads; ``--store packed`` (or ``both``, interleaved)
reads the same frames as frame packs (``flallm-pack-frames``: :func:`make_packed`). :func:`decode_only_rate` bounds what a
loader that only decodes (augmentation on the device) would gain: the same videos' sampled frames
decoded, and decoded + transformed, interleaved in this process (``--decode-only``).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import flallm_plugin  # noqa: E402,F401  (registers the task)
from fairseq import options, tasks  # noqa: E402

PLUGIN = os.path.join(REPO, "flallm_plugin")
PHOENIX_W, PHOENIX_H = 210, 260


def make_phoenix_sized_data(root: str, videos: int = 16, frames: int = 116, resize: int = 256, crop: int = 224,
                            sampling_rate: float = 1.0) -> str:
    """A PHOENIX-2014-T release of ``videos`` training videos of ``frames`` 210 x 260 frames (plus one
    dev and one test video) under ``root``/release, prepared into ``root``/data; returns the data dir."""
    from flallm_tools.synthetic import WORDS, make_phoenix
    from preprocess import prep_phoenix14t

    words_per_video = 4
    if frames % words_per_video:
        raise ValueError(f"frames ({frames}) must be a multiple of {words_per_video}")
    sentences = [" ".join(WORDS[(i + k) % len(WORDS)] for k in range(words_per_video)) for i in range(videos)]
    release = make_phoenix(os.path.join(root, "release"), {"train": sentences, "dev": sentences[:1],
                                                            "test": sentences[:1]},
                           w=PHOENIX_W, h=PHOENIX_H, per_word=frames // words_per_video)
    data = os.path.join(root, "data")
    prep_phoenix14t.main(["--data-root", release, "--out-dir", data, "--resize", str(resize), "--crop", str(crop),
                          "--sampling-rate", str(sampling_rate), "--vocab-size", "40"])
    return data


def make_packed(data_dir: str, out_dir: str) -> str:
    """``data_dir``'s frames as frame packs (``flallm-pack-frames``) in ``out_dir``; returns ``out_dir``."""
    from flallm_plugin.cli import pack_frames

    pack_frames.pack(pack_frames.get_parser().parse_args(["--data", data_dir, "--out-dir", out_dir]))
    return out_dir


def loader_frames_per_second(data_dir: str, split: str = "train", workers: int = 0, n_batches: int = 8,
                             batch_size: int = 2, augment: bool = True, sampling_rate: float = None,
                             seed: int = 1, augment_on_device: bool = False) -> dict:
    """Read ``n_batches`` batches of ``batch_size`` videos through the task and fairseq's iterator.

    Returns ``frames`` (sampled frames delivered after the first batch), ``seconds`` (time for
    them), ``frames_per_s``, ``frames_per_s_per_worker`` (divided by ``max(workers, 1)``),
    ``first_batch_s`` (worker start-up included) and the settings. The first batch is left out of
    the rate: it pays for starting the workers.
    """
    argv = [data_dir, "--user-dir", PLUGIN, "--task", "sign_translation", "--arch", "light_t_tiny",
            "--batch-size", str(batch_size), "--required-batch-size-multiple", "1", "--num-workers", str(workers),
            "--seed", str(seed), "--cpu"]
    if not augment:
        argv.append("--no-augment")
    if augment_on_device:  # the workers only decode (the model's device warps the batch)
        argv.append("--augment-on-device")
    if sampling_rate is not None:
        argv += ["--sampling-rate", str(sampling_rate)]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    task = tasks.setup_task(args)
    task.load_dataset(split)
    dataset = task.dataset(split)
    itr = task.get_batch_iterator(
        dataset, max_sentences=batch_size, required_batch_size_multiple=1, seed=seed, num_workers=workers,
        epoch=1, disable_iterator_cache=True,
    ).next_epoch_itr(shuffle=True)
    t0 = time.perf_counter()
    first_batch_s, frames, count, t1 = None, 0, 0, None
    while count < n_batches:
        for batch in itr:
            count += 1
            if first_batch_s is None:
                t1 = time.perf_counter()
                first_batch_s = t1 - t0
            else:
                frames += int(batch["net_input"]["src_lengths"].sum())
            if count >= n_batches:
                break
        else:  # epoch over: the next one
            itr = task.get_batch_iterator(
                dataset, max_sentences=batch_size, required_batch_size_multiple=1, seed=seed,
                num_workers=workers, epoch=1, disable_iterator_cache=True,
            ).next_epoch_itr(shuffle=True)
    seconds = time.perf_counter() - t1
    fps = frames / seconds if seconds > 0 else float("nan")
    return {"frames": frames, "seconds": seconds, "frames_per_s": fps, "frames_per_s_per_worker": fps / max(workers, 1),
            "first_batch_s": first_batch_s, "workers": workers, "batch_size": batch_size, "n_batches": n_batches,
            "augment": augment, "augment_on_device": augment_on_device, "split": split}


def decode_only_rate(data_dir: str, split: str = "train", videos: int = 4, sampling_rate: float = 0.25,
                     rounds: int = 5, seed: int = 1) -> dict:
    """Sampled frames/s of one process reading ``videos`` of the split (the dataset's frame reader and
    its ``ClipTransform``, augmentation on) with and without the transform, interleaved per video:
    ``decode`` (what a decode-only worker does), ``decode_transform`` (today's worker, less collation)."""
    import numpy as np

    from flallm_plugin.data.video_io import read_frames, sample_indices

    args = options.parse_args_and_arch(options.get_training_parser(), [
        data_dir, "--user-dir", PLUGIN, "--task", "sign_translation", "--arch", "light_t_tiny", "--cpu",
        "--sampling-rate", str(sampling_rate), "--seed", str(seed)])
    task = tasks.setup_task(args)
    task.load_dataset(split)
    ds = task.dataset(split)
    times = {"decode": [], "decode_transform": []}
    frames_done = 0
    for r in range(rounds):
        for i in range(min(videos, len(ds))):
            idx = sample_indices(int(ds.n_frames[i]), ds.stride, r % ds.stride)
            t = time.perf_counter()
            read_frames(ds.video_paths[i], idx)
            times["decode"].append((time.perf_counter() - t) / len(idx))
            t = time.perf_counter()
            ds.transform(read_frames(ds.video_paths[i], idx), np.random.RandomState(seed + r))
            times["decode_transform"].append((time.perf_counter() - t) / len(idx))
            frames_done += len(idx)
    out = {k: 1.0 / statistics.median(v) for k, v in times.items()}
    return {"decode_frames_per_s": out["decode"], "decode_transform_frames_per_s": out["decode_transform"],
            "speedup": out["decode"] / out["decode_transform"], "frames": frames_done}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="a prepared data directory (default: write PHOENIX-sized data to a temporary one)")
    p.add_argument("--workers", default="0,1", help="comma-separated --num-workers values")
    p.add_argument("--batches", type=int, default=9, help="batches per measurement (the first is not timed)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--sampling-rate", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=2, help="measurements per setting, interleaved")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--augment-on-device", choices=["no", "yes", "both"], default="no",
                   help="workers only decode (--augment-on-device); both: with and without, interleaved")
    p.add_argument("--store", choices=["png", "packed", "both"], default="png",
                   help="read the PNG frame folders, their frame packs (flallm-pack-frames), or both interleaved")
    p.add_argument("--decode-only", action="store_true",
                   help="frames/s decoding only vs decoding + transform (the bound of device-side augmentation)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or make_phoenix_sized_data(tmp)
        if args.decode_only:
            r = decode_only_rate(data, sampling_rate=args.sampling_rate, rounds=args.repeats * 3)
            print(f"decode only: {r['decode_frames_per_s']:.0f} sampled frames/s; decode + transform: "
                  f"{r['decode_transform_frames_per_s']:.0f} ({r['speedup']:.2f}x per worker without the transform; "
                  f"median per frame over {r['frames']} frames, interleaved)")
            return r
        on_device = {"no": (False,), "yes": (True,), "both": (False, True)}[args.augment_on_device]
        stores = {"png": ("png",), "packed": ("packed",), "both": ("png", "packed")}[args.store]
        dirs = {"png": data}
        if "packed" in stores:
            dirs["packed"] = make_packed(data, os.path.join(tmp, "packed"))
        results = {}
        for _ in range(args.repeats):
            for w in [int(x) for x in args.workers.split(",")]:
                for store in stores:
                    for dev in on_device:
                        r = loader_frames_per_second(dirs[store], "train", w, args.batches, args.batch_size,
                                                     augment=not args.no_augment, sampling_rate=args.sampling_rate,
                                                     augment_on_device=dev)
                        results.setdefault((w, store, dev), []).append(r)
                        print(f"workers {w}, {store}{', augment on device' if dev else ''}: {r['frames']} frames in "
                              f"{r['seconds']:.2f} s = {r['frames_per_s']:.1f} frames/s, "
                              f"{r['frames_per_s_per_worker']:.1f} per worker (first batch {r['first_batch_s']:.2f} s)",
                              flush=True)
    for (w, store, dev), rs in results.items():
        med = statistics.median(r["frames_per_s_per_worker"] for r in rs)
        print(f"workers {w}, {store}{', augment on device' if dev else ''}: median {med:.1f} sampled frames/s per worker")
    return results


if __name__ == "__main__":
    main()
