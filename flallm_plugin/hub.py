"""Translate new sign videos with an exported model directory: :class:`SignTranslator`.

A model directory is written by ``flallm-export`` (:mod:`flallm_plugin.cli.export`): ``model.pt``
(weights and args, no optimizer state), ``config.yaml`` (a *video* data config with the model's
resize/crop, mean/std, sampling rate, language tag and BLEU tokenizer), ``dict.txt``, the
sentencepiece model and a ``README.md`` model card. Loading it is fairseq's own hub loading
(:func:`fairseq.hub_utils.from_pretrained` -> ``checkpoint_utils.load_model_ensemble_and_task``,
``weights_only`` like every checkpoint here). Generation follows fairseq's hub interface
(:class:`~fairseq.hub_utils.GeneratorHubInterface`): its ``generate`` is overridden publicly,
because fairseq's takes token lists and batches them in a private method; here the inputs become
the task's ``build_dataset_for_inference`` (as ``speech_to_text``'s audio paths do), batched by
``task.get_batch_iterator`` and decoded by ``task.build_generator`` + ``task.inference_step`` (the
same ``SequenceGenerator`` and language-tag handling as ``fairseq-generate``), ``verbose`` logging
fairseq's ``S``/``H``/``P`` lines. The dataset reads a path exactly as a data split's row is read
for ``fairseq-generate`` (evaluation mode: sampling phase 0, centre crop), so a sample of a data
split translated here gives exactly ``fairseq-generate``'s hypothesis for it::

    from flallm_plugin import SignTranslator

    t = SignTranslator.from_pretrained("model_dir")   # cpu=True, fp16=True
    t.translate("clip.mp4")                          # -> str
    t.translate(frames)                              # T x H x W x 3 uint8 RGB array -> str
    t.translate(["a.mp4", "frames_dir/", "b.npy"])  # -> List[str]
    t.encode("clip.mp4")                             # sign-wise features (N x C float tensor)

Inputs: a video file (mp4/avi/mkv/mov/webm, ``start``/``end`` in seconds for a clip), a frame
folder, a ``.npy`` array of the features the model's adapter reads (``flallm-extract-features``
output with the model's stage-1 visual encoder; width :attr:`SignTranslator.feature_dim`), a
``T x H x W x 3`` uint8 RGB array, or a ``T x C`` float feature array. Every input is checked before
anything is translated; a bad one raises :class:`BadInputError` naming it, or, with
``skip_bad=True``, is reported in its :class:`Translation` and skipped.
"""
import copy
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from fairseq import hub_utils, utils
from fairseq.hub_utils import GeneratorHubInterface
from omegaconf import open_dict
from tqdm import tqdm

# torch.load's allowlist, and the task and architectures fairseq's hub loading builds
from flallm_plugin import checkpoint_safety, models, tasks  # noqa: F401
from flallm_plugin.checkpoint_safety import check_checkpoint_file
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.video_io import (
    count_frames,
    count_video_frames,
    list_frame_files,
    load_features,
    num_sampled,
    video_kind,
)
from flallm_plugin.models.stage1_features import LightTFeatures, feature_width

logger = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
InputLike = Union[str, os.PathLike, np.ndarray, torch.Tensor]


MIN_FRAMES = 2  # after temporal sampling: a single frame is a still image, not a signed sentence


def check_clip_bounds(start: Optional[float], end: Optional[float], prefix: str = ""):
    """``start`` / ``end`` (seconds) are finite, not negative, and ``end`` after ``start``; ``prefix``
    names them as options (``--``)."""
    for name, v in (("start", start), ("end", end)):
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{prefix}{name} {v}: expected a number of seconds >= 0")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"{prefix}end {end} is not after {prefix}start {start}: the clip would be empty")


class BadInputError(SignDataError):
    """One or more inputs cannot be translated; one line per input, each naming it."""


@dataclass
class Translation(object):
    """The result for one input."""

    input: str
    translation: Optional[str] = None
    nbest: List[Tuple[str, float]] = field(default_factory=list)  # (text, fairseq score: mean log-prob, ln)
    frames: int = 0  # frames read (after temporal sampling), or feature frames
    seconds: float = 0.0  # reading and translating the batch this input was in
    error: Optional[str] = None  # why it was skipped (skip_bad)
    # with keep_clips=True: the T x crop x crop x 3 uint8 RGB frames the model read (sampled, resized,
    # cropped; video, frame-folder and array inputs); never in to_json
    clip: Optional[np.ndarray] = field(default=None, repr=False)
    # fairseq's hypothesis dicts (tokens, score, positional_scores, ...), best first; never in to_json
    hypos: Optional[List[dict]] = field(default=None, repr=False)

    def to_json(self) -> dict:
        if self.error is not None:
            return {"input": self.input, "error": self.error}
        return {
            "input": self.input,
            "translation": self.translation,
            "nbest": [{"translation": t, "score": round(s, 6)} for t, s in self.nbest],
            "frames": self.frames,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class _Input(object):
    index: int
    name: str  # the path, or "array #i"
    kind: str  # video | frames | features | array | feature_array
    n_frames: int  # frames of the clip, or feature rows
    path: Optional[str] = None
    array: Optional[np.ndarray] = None

    @property
    def is_features(self) -> bool:
        return self.kind in ("features", "feature_array")


class SignTranslator(GeneratorHubInterface):
    """fairseq's hub interface for sign videos (see the module docstring)."""

    @classmethod
    def from_pretrained(
        cls, model_dir: str, checkpoint_file: str = MODEL_FILE, cpu: bool = False, fp16: bool = False, **overrides
    ) -> "SignTranslator":
        """Load a model directory written by ``flallm-export`` (GPU if available unless ``cpu``)."""
        model_dir = os.fspath(model_dir)
        if not os.path.isfile(os.path.join(model_dir, checkpoint_file)):
            raise FileNotFoundError(
                f"{model_dir}: not a model directory (no {checkpoint_file}); write one with "
                "flallm-export --checkpoint CKPT --data DATA --out MODEL_DIR"
            )
        if not os.path.isfile(os.path.join(model_dir, "config.yaml")):
            raise FileNotFoundError(f"{model_dir}: not a model directory (no config.yaml); re-export it with flallm-export")
        # fairseq's loader passes no weights_only: read with weights_only=True first (checkpoint_safety.py)
        check_checkpoint_file(os.path.join(model_dir, checkpoint_file), "model")
        x = hub_utils.from_pretrained(model_dir, checkpoint_file, ".", **overrides)
        if x["task"].visual_input.features:
            raise ValueError(f"{model_dir}/config.yaml: input_type must be video in a model directory")
        translator = cls(x["args"], x["task"], x["models"])
        if fp16:
            translator.half()
        if torch.cuda.is_available() and not cpu:
            translator.cuda()
        return translator.eval()

    def __init__(self, cfg, task, models):
        super().__init__(cfg, task, models)
        self.data_cfg = task.data_cfg
        self.visual_input = task.visual_input  # the model directory's record of the input (config.yaml)
        encoder = self.models[0].encoder
        self.feature_level = encoder.feature_level
        self.feature_dim = feature_width(encoder.visual, self.feature_level)
        max_src = self.max_positions[0] if isinstance(self.max_positions, tuple) else self.max_positions
        self.max_source_frames = int(max_src) if max_src is not None else None

    # ----------------------------------------------------------------- inputs
    def _check(self, x: InputLike, index: int, start: Optional[float], end: Optional[float],
               min_frames: int = MIN_FRAMES) -> _Input:
        """Validate one input without decoding more than a frame count; raises naming the input."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        if isinstance(x, np.ndarray):
            name = f"array #{index}"
            if start is not None or end is not None:
                raise SignDataError(f"{name}: start/end apply to video files, not to arrays (slice the array)")
            if x.ndim == 4 and x.shape[-1] == 3 and x.dtype == np.uint8:
                kind = "array"
            elif x.ndim == 2 and np.issubdtype(x.dtype, np.floating):
                kind = "feature_array"
            else:
                raise SignDataError(
                    f"{name}: expected a T x H x W x 3 uint8 RGB frame array or a T x C float feature array, "
                    f"got shape {tuple(x.shape)} {x.dtype}"
                )
            inp = _Input(index, name, kind, int(x.shape[0]), array=x)
        else:
            path = os.fspath(x)
            kind = video_kind(path)  # errors name the path: missing, unsupported extension
            if kind != "video" and (start is not None or end is not None):
                raise SignDataError(f"{path}: start/end apply to video files, not to a {kind} input")
            if kind == "frames":
                n = len(list_frame_files(path))
            elif kind == "pack":
                n = count_frames(path)
            elif kind == "video":
                n = count_video_frames(path, start, end)
                if n == 0:
                    clip = f" between {start or 0} s and {end if end is not None else 'the end'}" if (
                        start is not None or end is not None) else ""
                    raise SignDataError(f"{path}: no frames could be decoded{clip} (empty or corrupt video)")
            inp = _Input(index, path, kind, 0 if kind == "features" else n, path=path)
            if kind == "features":
                inp.array = load_features(path)
                inp.n_frames = int(inp.array.shape[0])
        if inp.n_frames == 0:
            raise SignDataError(f"{inp.name}: no frames")
        if inp.is_features:
            width = int(inp.array.shape[1])
            if width != self.feature_dim:
                raise SignDataError(
                    f"{inp.name}: features of width {width}, but this model reads {self.feature_level}-level "
                    f"features of width {self.feature_dim} (flallm-extract-features --level {self.feature_level} "
                    "with the model's stage-1 checkpoint), or give the video"
                )
        n = inp.n_frames if inp.is_features else num_sampled(inp.n_frames, self.task.stride)
        if n < min_frames:
            sampled = "" if inp.is_features else f" after temporal sampling ({inp.n_frames} read, stride {self.task.stride})"
            raise SignDataError(
                f"{inp.name}: only {n} frame{'s' if n != 1 else ''}{sampled}: too short to translate "
                "(a still image is not a signed sentence); give the whole video"
            )
        if self.max_source_frames is not None and n > self.max_source_frames:
            raise SignDataError(
                f"{inp.name}: {n} frames after temporal sampling, but the model takes at most "
                f"{self.max_source_frames}; translate shorter clips (start/end)"
            )
        return inp

    def check_inputs(
        self, inputs: Sequence[InputLike], start: Optional[float] = None, end: Optional[float] = None,
        min_frames: int = MIN_FRAMES,
    ) -> Tuple[List[_Input], List[Tuple[int, str]]]:
        """All inputs checked before anything is translated: (good inputs, [(index, error line)])."""
        check_clip_bounds(start, end)
        good, bad = [], []
        for i, x in enumerate(inputs):
            try:
                good.append(self._check(x, i, start, end, min_frames))
            except SignDataError as e:
                bad.append((i, str(e)))
        return good, bad

    def _check_all(self, inputs, start, end, batch_size, skip_bad, min_frames: int = MIN_FRAMES):
        """(the good inputs, a :class:`Translation` per input): every input checked before anything is
        read; bad ones raise together, or with ``skip_bad`` are reported in their result."""
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        good, bad = self.check_inputs(inputs, start, end, min_frames)
        if bad and not skip_bad:
            raise BadInputError("\n".join(msg for _, msg in bad))
        results = [Translation(input=self._name(x, i)) for i, x in enumerate(inputs)]
        for i, msg in bad:
            results[i].error = msg
        return good, results

    def _datasets(self, good: List[_Input], start, end, skip_bad) -> List[Tuple[List[_Input], Any]]:
        """The task's inference datasets (``build_dataset_for_inference``, fairseq's hub convention):
        one of the videos, one of the cached features (batched apart), each with its inputs."""
        out = []
        for features in (False, True):
            inputs = [inp for inp in good if inp.is_features == features]
            if not inputs:
                continue
            dataset = self.task.build_dataset_for_inference(
                [inp.path if inp.array is None else inp.array for inp in inputs],
                [inp.n_frames for inp in inputs],
                starts=[start] * len(inputs),
                ends=[end] * len(inputs),
                names=[inp.name for inp in inputs],
                feature_level=self.feature_level if features else None,
                skip_bad=skip_bad,
            )
            out.append((inputs, dataset))
        return out

    def _batches(self, datasets, batch_size: int) -> Iterator[Tuple[List[_Input], dict]]:
        """(the dataset's inputs, batch), batched by the task as fairseq's hub batches (longest first)."""
        for inputs, dataset in datasets:
            with warnings.catch_warnings():
                # fairseq's loader always asks for pinned memory, which only a GPU uses; on a machine
                # without one torch warns at every loader, on the stderr of flallm-translate's user
                warnings.filterwarnings("ignore", message=".pin_memory. argument is set as true but no accelerator")
                itr = self.task.get_batch_iterator(
                    dataset=dataset,
                    max_sentences=batch_size,
                    max_positions=self.max_positions,
                    disable_iterator_cache=True,
                ).next_epoch_itr(shuffle=False)
            for batch in itr:
                yield inputs, batch

    @staticmethod
    def _name(x, i) -> str:
        return f"array #{i}" if isinstance(x, (np.ndarray, torch.Tensor)) else os.fspath(x)

    # ------------------------------------------------------------ translate
    def generate(
        self,
        inputs: Union[InputLike, Sequence[InputLike]],
        beam: int = 5,
        verbose: bool = False,
        inference_step_args: Optional[dict] = None,
        prefix_allowed_tokens_fn=None,
        start: Optional[float] = None,
        end: Optional[float] = None,
        batch_size: int = 8,
        skip_bad: bool = False,
        progress: bool = False,
        keep_clips: bool = False,
        **kwargs,
    ) -> List[Translation]:
        """fairseq's :meth:`~fairseq.hub_utils.GeneratorHubInterface.generate` for sign inputs: the
        generator from the model's generation options updated with ``beam`` and ``kwargs``
        (``task.build_generator``), batches of the task's inference dataset (``task.get_batch_iterator``)
        and ``task.inference_step``; with ``verbose`` the ``S``/``H``/``P`` lines are logged per input as
        fairseq's hub logs them (``S``: the input). -> a :class:`Translation` per input, in input order,
        with every hypothesis of the beam (``nbest``, and fairseq's hypothesis dicts in ``hypos``).
        The other options: see :meth:`translate_full`."""
        inputs = self._as_list(inputs)
        good, results = self._check_all(inputs, start, end, batch_size, skip_bad)
        gen_args = copy.deepcopy(self.cfg.generation)
        with open_dict(gen_args):
            gen_args.beam = beam
            for k, v in kwargs.items():
                setattr(gen_args, k, v)
        generator = self.task.build_generator(self.models, gen_args, prefix_allowed_tokens_fn=prefix_allowed_tokens_fn)
        inference_step_args = inference_step_args or {}
        with tqdm(total=len(good), unit="video", disable=not progress, file=sys.stderr) as bar:
            t0 = time.perf_counter()
            for dataset_inputs, batch in self._batches(self._datasets(good, start, end, skip_bad), batch_size):
                for pos, message in batch.get("unreadable", []):
                    results[dataset_inputs[pos].index].error = message
                indices = [dataset_inputs[pos].index for pos in batch["id"].tolist()] if "id" in batch else []
                if indices:
                    net = batch["net_input"]
                    for b, i in enumerate(indices):
                        results[i].frames = n = int(net["src_lengths"][b])
                        if keep_clips and "src_level" not in net:  # the frames the model reads, before normalisation
                            results[i].clip = net["src_tokens"][b, :n].numpy().copy()
                    batch = utils.apply_to_sample(lambda t: t.to(self.device), batch)
                    hypos = self.task.inference_step(generator, self.models, batch, **inference_step_args)
                    for i, h in zip(indices, hypos):
                        results[i].hypos = h
                        results[i].nbest = [(self.decode(x["tokens"]), float(x["score"])) for x in h]
                        results[i].translation = results[i].nbest[0][0]
                seconds = time.perf_counter() - t0
                for i in indices:
                    results[i].seconds = seconds
                bar.update(len(indices) + len(batch.get("unreadable", [])))
                t0 = time.perf_counter()
        if verbose:
            self._log([r for r in results if r.hypos is not None], gen_args)
        return results

    def _log(self, translated: List[Translation], gen_args):
        """fairseq's hub ``verbose`` lines (``S``: the input, ``H``: score and text, ``P``: positional
        scores, ``A``: alignment with ``print_alignment``), one block per translated input."""
        for r in translated:
            logger.info("S\t{}".format(r.input))
            for hypo in r.hypos:
                logger.info("H\t{}\t{}".format(hypo["score"], self.decode(hypo["tokens"])))
                logger.info("P\t{}".format(" ".join("{:.4f}".format(x) for x in hypo["positional_scores"].tolist())))
                if hypo.get("alignment") is not None and getattr(gen_args, "print_alignment", False):
                    logger.info("A\t{}".format(" ".join(f"{s}-{t}" for s, t in hypo["alignment"])))

    def translate_full(
        self,
        inputs: Union[InputLike, Sequence[InputLike]],
        beam: int = 5,
        nbest: int = 1,
        start: Optional[float] = None,
        end: Optional[float] = None,
        batch_size: int = 8,
        skip_bad: bool = False,
        progress: bool = False,
        keep_clips: bool = False,
        verbose: bool = False,
        **gen_kwargs,
    ) -> List[Translation]:
        """:class:`Translation` of each input (n-best with scores, frames read, seconds).

        ``gen_kwargs`` are fairseq generation options (``lenpen``, ``max_len_a``, ``max_len_b``,
        ``min_len``, ``no_repeat_ngram_size`` ...); ``progress``: a progress bar on stderr, shown once
        every input has been checked; ``keep_clips``: each result's ``clip`` holds the frames the
        model read (the dataset item's source, before normalisation), e.g. to show them;
        ``verbose``: fairseq's hub log lines (:meth:`generate`).
        """
        if nbest < 1 or nbest > beam:
            raise ValueError(f"nbest must be between 1 and the beam size ({beam}), got {nbest}")
        results = self.generate(
            inputs, beam=beam, verbose=verbose, start=start, end=end, batch_size=batch_size, skip_bad=skip_bad,
            progress=progress, keep_clips=keep_clips, **gen_kwargs,
        )
        for r in results:
            r.nbest = r.nbest[:nbest]
        return results

    def translate(self, inputs, beam: int = 5, verbose: bool = False, **kwargs):
        """Best translation of one input (-> str) or of a list of inputs (-> list; ``None`` for an
        input skipped with ``skip_bad=True``). Options as :meth:`translate_full`."""
        results = self.translate_full(inputs, beam=beam, verbose=verbose, **kwargs)
        texts = [r.translation for r in results]
        return texts if self._is_batch(inputs) else texts[0]

    def sample(self, inputs, beam: int = 1, verbose: bool = False, **kwargs):
        return self.translate(inputs, beam=beam, verbose=verbose, **kwargs)

    def score(self, *args, **kwargs):
        raise NotImplementedError(
            "SignTranslator.score: fairseq's hub score() rescores given sentences of a language model; "
            "the scores of a video's translations are in translate_full(...)[i].nbest"
        )

    def decode(self, tokens: torch.Tensor) -> str:
        """Token ids -> text, as ``fairseq-generate``'s ``D-`` line (language tag stripped, subwords merged)."""
        return self.task.decode_tokens(tokens)

    # --------------------------------------------------------------- encode
    @torch.no_grad()
    def encode(self, inputs, start: Optional[float] = None, end: Optional[float] = None, batch_size: int = 8):
        """The visual encoder's sign-wise features (temporal-module output, as ``flallm-extract-features
        --level sign`` writes them) of one video (-> N x C float tensor) or a list (-> list)."""
        batch_in = self._as_list(inputs)
        good, _ = self._check_all(batch_in, start, end, batch_size, skip_bad=False, min_frames=1)  # features of a frame: fine
        bad = [inp.name for inp in good if inp.is_features]
        if bad:
            raise BadInputError("\n".join(f"{name}: encode() takes videos or frames, not features" for name in bad))
        visual = self.models[0].encoder.visual
        if isinstance(visual, LightTFeatures):
            visual = visual.encoder.visual
        out = [None] * len(batch_in)
        for dataset_inputs, batch in self._batches(self._datasets(good, start, end, skip_bad=False), batch_size):
            net = batch["net_input"]
            feats, n = visual(net["src_tokens"].to(self.device), net["src_lengths"].to(self.device), level="sign")
            for b, pos in enumerate(batch["id"].tolist()):
                out[dataset_inputs[pos].index] = feats[b, : int(n[b])].float().cpu()
        return out if self._is_batch(inputs) else out[0]

    @staticmethod
    def _is_batch(inputs) -> bool:
        return isinstance(inputs, (list, tuple))

    @classmethod
    def _as_list(cls, inputs) -> list:
        return list(inputs) if cls._is_batch(inputs) else [inputs]
