"""Sign-video translation dataset (the fairseq speech-to-text way).

A data directory holds ``{split}.tsv`` manifests (tab separated, with a header) with at
least the columns ``id``, ``video``, ``n_frames``, ``tgt_text``, ``speaker`` and the
optional ``start`` / ``end`` (seconds, for clips cut from a longer video file:
:data:`~flallm_plugin.data.visual_input.MANIFEST_COLUMNS`, ``CLIP_COLUMNS``), plus a
``config.yaml`` (:class:`~flallm_plugin.data.data_cfg.SignDataConfig`). What the frames are
read as (stride, frame size, language tag) is the task's record of the input,
:class:`~flallm_plugin.data.visual_input.VisualInputSpec`.

``video`` is relative to ``video_root`` (or absolute) and is a frame folder, a video
file or, for cached features, a ``.npy`` array (frames x dim). Items are uint8 videos
(T x H x W x 3) or float32 features (T x C); ``size``/``num_tokens`` count sampled
frames so that ``--max-tokens`` is a frame budget.
"""
import logging
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from fairseq.data import Dictionary, FairseqDataset, data_utils

from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.device_transforms import inverse_matrices
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.text_io import read_table
from flallm_plugin.data.transforms import ClipTransform
from flallm_plugin.data.visual_input import CLIP_COLUMNS, MANIFEST_COLUMNS, VisualInputSpec, lang_tag_index
from flallm_plugin.data.video_io import (
    load_features,
    num_sampled,
    read_frames,
    sample_indices,
)

logger = logging.getLogger(__name__)

@dataclass
class SignTranslationDatasetItem(object):
    index: int
    source: torch.Tensor  # uint8 T x H x W x 3, or float T x C
    target: Optional[torch.Tensor] = None
    # augment_on_device: the clip's 2 x 3 warp (resized frame -> output pixels), source then the decoded frames
    warp: Optional[np.ndarray] = None


def new_batch_tensor(like: torch.Tensor, shape) -> torch.Tensor:
    """An uninitialised tensor of ``like``'s dtype; in a data-loader worker, in shared memory, so
    that passing the batch to the main process does not copy it there (as torch's default_collate)."""
    if torch.utils.data.get_worker_info() is None:
        return like.new_empty(shape)
    storage = like._typed_storage()._new_shared(math.prod(shape), device=like.device)
    return like.new(storage).resize_(shape)


def read_manifest(path: str) -> List[Dict[str, str]]:
    """Rows of a ``{split}.tsv`` manifest (each with ``_line``), with one clear error per bad row."""
    return read_table(path, "\t", MANIFEST_COLUMNS, what="manifest")[1]


def data_dir_inputs(data: str, splits: List[str]) -> List[Tuple[Optional[str], str]]:
    """``(path, what it is)`` of everything a run over ``splits`` of the data directory ``data`` reads: the
    directory, the video root, dictionary and sentencepiece model of its config, and the manifests' videos
    (what a tool's output directory must not be nor hold: :func:`flallm_plugin.out_dir.check_out_dir`)."""
    inputs = [(data, "the data directory")]
    config = os.path.join(data, "config.yaml")
    if not os.path.isfile(config):
        return inputs  # the run stops at reading it, with its own message
    data_cfg = SignDataConfig(config)
    inputs += [(data_cfg.video_root, "the video root"), (data_cfg.vocab_filename, "the dictionary"),
               ((data_cfg.bpe_tokenizer or {}).get("sentencepiece_model"), "the sentencepiece model")]
    for split in splits:
        manifest = os.path.join(data, f"{split}.tsv")
        if os.path.isfile(manifest):
            inputs += [(os.path.join(data_cfg.video_root, r["video"]), f"the video of {manifest}: line {r['_line']}")
                       for r in read_manifest(manifest) if r["video"]]
    return inputs


class SignTranslationDataset(FairseqDataset):
    augment_on_device = False  # set per instance by __init__

    def __init__(
        self,
        split: str,
        is_train_split: bool,
        cfg: SignDataConfig,
        video_paths: List[str],
        n_frames: List[int],
        tgt_texts: Optional[List[str]] = None,
        ids: Optional[List[str]] = None,
        speakers: Optional[List[str]] = None,
        starts: Optional[List[Optional[float]]] = None,
        ends: Optional[List[Optional[float]]] = None,
        tgt_dict: Optional[Dictionary] = None,
        bpe=None,
        visual_input: Optional[VisualInputSpec] = None,
        augment: bool = True,
        seed: int = 1,
        manifest: Optional[str] = None,
        lines: Optional[List[int]] = None,
        shuffle: bool = True,
        blank_video: bool = False,
        augment_on_device: bool = False,
    ):
        self.split, self.is_train_split = split, is_train_split
        self.cfg = cfg
        self.video_paths, self.n_frames = video_paths, np.asarray(n_frames, dtype=np.int64)
        self.n_samples = len(video_paths)
        self.tgt_texts = tgt_texts
        self.ids = ids if ids is not None else [str(i) for i in range(self.n_samples)]
        self.speakers = speakers
        self.starts = starts or [None] * self.n_samples
        self.ends = ends or [None] * self.n_samples
        self.tgt_dict, self.bpe = tgt_dict, bpe
        self.seed, self.shuffle = seed, shuffle
        # the epoch lives in shared memory: fairseq keeps data-loader workers alive across
        # epochs, and each epoch must still draw new sampling phases and augmentations
        self._epoch = torch.ones(1, dtype=torch.long).share_memory_()
        self.manifest = manifest or split
        self.lines = lines or list(range(2, self.n_samples + 2))
        # the task's record of the input; without one, the data config's own facts
        self.visual_input = spec = visual_input if visual_input is not None else VisualInputSpec.from_data_cfg(cfg)
        self.features = spec.features
        self.blank_video = blank_video
        if augment_on_device and self.features:
            raise SignDataError(f"{cfg.path}: --augment-on-device needs video input, these are cached features")
        self.augment_on_device = augment_on_device
        self.stride = spec.stride
        self.transform = ClipTransform(
            spec.resize, spec.crop, train=is_train_split, augmentation=dict(cfg.augmentation, enabled=augment and cfg.augmentation["enabled"])
        )
        self.tgt_lang_tag_idx = None
        if tgt_dict is not None:
            self.tgt_lang_tag_idx = lang_tag_index(tgt_dict, spec.tgt_lang_tag, "the dictionary")
        self.src_sizes = np.array([num_sampled(int(n), self.stride) for n in self.n_frames], dtype=np.int64)
        self.tgt_tokens: Optional[List[torch.Tensor]] = None
        self.tgt_sizes = np.zeros(self.n_samples, dtype=np.int64)
        if tgt_texts is not None and tgt_dict is not None:
            self.tgt_tokens = [self._encode_target(i) for i in range(self.n_samples)]
            self.tgt_sizes = np.array([len(t) for t in self.tgt_tokens], dtype=np.int64)
        logger.info(repr(self))

    def __repr__(self):
        return (
            f"{self.__class__.__name__}(split={self.split!r}, n_samples={self.n_samples:_}, "
            f"input={'features' if self.features else 'video'}, stride={self.stride}, "
            f"train={self.is_train_split}, augment={self.transform.augment}, "
            f"on_device={self.augment_on_device}, "
            f"tgt_lang_tag={self.tgt_lang_tag_idx})"
        )

    def where(self, index: int) -> str:
        return f"{self.manifest}: line {self.lines[index]} (id {self.ids[index]})"

    def _encode_target(self, index: int) -> torch.Tensor:
        text = self.tgt_texts[index]
        if self.bpe is not None:
            text = self.bpe.encode(text)
        tokens = self.tgt_dict.encode_line(text, add_if_not_exist=False, append_eos=True).long()
        if self.tgt_lang_tag_idx is not None:
            tokens = torch.cat([tokens, tokens.new_tensor([self.tgt_lang_tag_idx])])
        return tokens

    # ------------------------------------------------------------------ items
    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch):
        self._epoch[0] = epoch

    def _load_source(self, index: int):
        """The item's source tensor, and (with ``augment_on_device``) its clip's warp matrix."""
        path = self.video_paths[index]
        try:
            if self.features:
                feats = load_features(path)
                if feats.shape[0] != self.n_frames[index]:
                    raise SignDataError(
                        f"{path}: {feats.shape[0]} feature frames but the manifest says {self.n_frames[index]}"
                    )
            with data_utils.numpy_seed(self.seed, self.epoch, index):
                rng = np.random.RandomState(np.random.randint(0, 2**31 - 1))
            phase = rng.randint(0, self.stride) if self.is_train_split else 0
            idx = sample_indices(int(self.n_frames[index]), self.stride, phase)
            if self.features:  # every frame's features (stride 1), or sampled as video is
                clip = np.ascontiguousarray(feats[idx], dtype=np.float32)
                if self.blank_video:  # the "text only" input on features: zeros (the clip's length only)
                    clip = np.zeros_like(clip)
                return torch.from_numpy(clip), None
            frames = read_frames(path, idx, self.starts[index], self.ends[index], n_frames=int(self.n_frames[index]))
            if self.augment_on_device:  # decoded frames + the parameters the transform would draw
                warp = self.transform.matrix(self.transform.draw(rng))
                shapes = {f.shape for f in frames}
                if len(shapes) > 1:
                    raise SignDataError(f"{path}: frames of several sizes {sorted(shapes)}; --augment-on-device "
                                        "needs one frame size per video (resize the frames when preparing the data)")
                clip = np.stack(frames)
            else:
                warp, clip = None, self.transform(frames, rng)
            if self.blank_video:  # the diagnostic "text only" input: black frames of the clip's shape
                clip = np.zeros_like(clip)
            return torch.from_numpy(clip), warp
        except SignDataError as e:
            raise SignDataError(f"{self.where(index)}: {e}") from e

    def __getitem__(self, index: int) -> SignTranslationDatasetItem:
        source, warp = self._load_source(index)
        target = self.tgt_tokens[index] if self.tgt_tokens is not None else None
        return SignTranslationDatasetItem(index=index, source=source, target=target, warp=warp)

    def __len__(self):
        return self.n_samples

    # ---------------------------------------------------------------- batches
    def collater(self, samples: List[SignTranslationDatasetItem], return_order: bool = False) -> Dict:
        if len(samples) == 0:
            return {}
        indices = torch.tensor([x.index for x in samples], dtype=torch.long)
        lengths = torch.tensor([x.source.size(0) for x in samples], dtype=torch.long)
        first = samples[0].source
        sizes = {tuple(x.source.shape[1:]) for x in samples}
        if self.augment_on_device and len(sizes) > 1:  # transformed frames are all crop x crop; decoded ones may differ
            ids = ", ".join(f"{self.ids[x.index]} {tuple(x.source.shape[1:3])}" for x in samples)
            raise SignDataError(f"{self.manifest}: --augment-on-device batches frames as decoded, and these videos' "
                                f"frame sizes differ: {ids}; prepare the frames to one size (or drop the option)")
        src = new_batch_tensor(first, (len(samples), int(lengths.max())) + tuple(first.shape[1:]))
        for i, x in enumerate(samples):
            n = x.source.size(0)
            src[i, :n] = x.source
            src[i, n:] = 0  # padding: each element is written once
        net_input = {"src_tokens": src, "src_lengths": lengths}
        if self.augment_on_device:
            net_input["src_warp"] = inverse_matrices([x.warp for x in samples])
        target, ntokens = None, 0
        if self.tgt_tokens is not None:
            pad, eos = self.tgt_dict.pad(), self.tgt_dict.eos()
            target = data_utils.collate_tokens([x.target for x in samples], pad, eos, left_pad=False)
            # decoder input: the last token (</s>, or the language tag) moved to the front
            net_input["prev_output_tokens"] = data_utils.collate_tokens(
                [x.target for x in samples], pad, None, left_pad=False, move_eos_to_beginning=True
            )
            ntokens = sum(x.target.size(0) for x in samples)
        return {
            "id": indices,
            "net_input": net_input,
            "target": target,
            "target_lengths": torch.tensor([x.target.size(0) for x in samples]) if target is not None else None,
            # the original reference texts, for scoring (ids cannot hold pieces outside the vocabulary)
            "tgt_text": [self.tgt_texts[x.index] for x in samples] if self.tgt_texts is not None else None,
            "split": self.split,  # whose references they are (scoring/references.py)
            "ntokens": ntokens,
            "nsentences": len(samples),
        }

    def num_tokens(self, index):
        return int(self.src_sizes[index])

    def size(self, index):
        return int(self.src_sizes[index]), int(self.tgt_sizes[index])

    @property
    def sizes(self):
        return self.src_sizes

    @property
    def can_reuse_epoch_itr_across_epochs(self):
        # the iterator (and its data-loader workers) is kept across epochs; the task's
        # rebuild_batches (default) makes it build each epoch's batches anew from (seed, epoch),
        # so that a run resumed mid-epoch sees exactly the batches of the uninterrupted run
        return True

    def ordered_indices(self):
        """Shuffled (under fairseq's ``numpy_seed(seed + epoch)``), then sorted longest first."""
        if self.shuffle:
            order = [np.random.permutation(len(self))]
        else:
            order = [np.arange(len(self))]
        # sort by number of sampled frames, longest first (as SpeechToTextDataset does)
        order.append([-n for n in self.src_sizes])
        return np.lexsort(order)

    def prefetch(self, indices):
        raise NotImplementedError


class SignTranslationDatasetCreator(object):
    """Builds a :class:`SignTranslationDataset` from a ``{split}.tsv`` manifest."""

    @classmethod
    def from_tsv(
        cls,
        root: str,
        cfg: SignDataConfig,
        split: str,
        tgt_dict: Optional[Dictionary],
        bpe,
        is_train_split: bool,
        visual_input: Optional[VisualInputSpec],
        augment: bool,
        seed: int,
        check_files: bool = True,
        blank_video: bool = False,
        augment_on_device: bool = False,
    ) -> SignTranslationDataset:
        manifest = os.path.join(root, f"{split}.tsv")
        rows = read_manifest(manifest)
        if not rows:
            raise SignDataError(f"{manifest}: manifest has a header but no samples")
        video_root = cfg.video_root
        ids, paths, n_frames, texts, speakers, starts, ends, lines = [], [], [], [], [], [], [], []
        seen = set()
        for r in rows:
            where = f"{manifest}: line {r['_line']}"
            if r["id"] in seen:
                raise SignDataError(f"{where}: duplicate id {r['id']!r}")
            seen.add(r["id"])
            if not r["video"]:
                raise SignDataError(f"{where}: empty video path")
            if not os.path.isabs(r["video"]) and os.path.normpath(r["video"]).split(os.sep)[0] == os.pardir:
                raise SignDataError(
                    f"{where}: video {r['video']!r} leads out of the video root {video_root} (video_root of "
                    f"{cfg.path}): give a path under it, or an absolute path"
                )
            path = r["video"] if os.path.isabs(r["video"]) else os.path.join(video_root, r["video"])
            if check_files and not os.path.exists(path):
                raise SignDataError(f"{where}: {path}: no such frame folder or file")
            try:
                n = int(r["n_frames"])
            except ValueError:
                raise SignDataError(f"{where}: n_frames {r['n_frames']!r} is not an integer") from None
            if n <= 0:
                raise SignDataError(f"{where}: {path}: video has no frames (n_frames={n})")
            if not r["tgt_text"].strip():
                raise SignDataError(f"{where}: empty target text")
            se = []
            for col in CLIP_COLUMNS:
                v = r.get(col, "")
                try:
                    se.append(float(v) if v not in ("", None) else None)
                except ValueError:
                    raise SignDataError(f"{where}: {col} {v!r} is not a number of seconds") from None
            ids.append(r["id"])
            paths.append(path)
            n_frames.append(n)
            texts.append(r["tgt_text"])
            speakers.append(r["speaker"])
            starts.append(se[0])
            ends.append(se[1])
            lines.append(r["_line"])
        try:
            return SignTranslationDataset(
                split,
                is_train_split,
                cfg,
                paths,
                n_frames,
                tgt_texts=texts,
                ids=ids,
                speakers=speakers,
                starts=starts,
                ends=ends,
                tgt_dict=tgt_dict,
                bpe=bpe,
                visual_input=visual_input,
                augment=augment,
                seed=seed,
                manifest=manifest,
                lines=lines,
                shuffle=is_train_split,
                blank_video=blank_video,
                augment_on_device=augment_on_device,
            )
        except SignDataError as e:
            raise SignDataError(f"{manifest}: {e}") from e
