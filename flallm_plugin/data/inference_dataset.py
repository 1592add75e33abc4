"""The inputs of one translation call, as a dataset: what the task's ``build_dataset_for_inference``
returns (fairseq's hub convention; ``speech_to_text`` builds a dataset of audio paths the same way).

Video files and frame folders are read exactly as a manifest's rows are for ``fairseq-generate``
(:class:`~flallm_plugin.data.sign_translation_dataset.SignTranslationDataset` in evaluation mode:
sampling phase 0, centre crop); ``T x H x W x 3`` uint8 RGB arrays get the same sampling and
transform. With ``feature_level`` the inputs are cached features (``T x C`` float arrays or ``.npy``
files, one row a frame, not sampled again), and each batch tells the encoder their level
(``net_input["src_level"]``). With ``skip_bad`` an input that cannot be read is left out of its
batch and reported in the batch's ``unreadable`` list, ``(index, the reader's one-line message)``.
"""
import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.errors import SignDataError
from flallm_plugin.data.sign_translation_dataset import SignTranslationDataset, SignTranslationDatasetItem
from flallm_plugin.data.video_io import sample_indices
from flallm_plugin.data.visual_input import VisualInputSpec

InferenceInput = Union[str, os.PathLike, np.ndarray, torch.Tensor]


@dataclass
class UnreadableInput(object):
    index: int
    error: str  # the reader's message, naming the input


class SignInferenceDataset(SignTranslationDataset):
    """Inputs to translate (see the module docstring); items have no target."""

    def __init__(
        self,
        cfg: SignDataConfig,
        inputs: Sequence[InferenceInput],
        n_frames: Sequence[int],
        visual_input: Optional[VisualInputSpec] = None,
        starts: Optional[List[Optional[float]]] = None,
        ends: Optional[List[Optional[float]]] = None,
        names: Optional[List[str]] = None,
        feature_level: Optional[str] = None,
        skip_bad: bool = False,
    ):
        arrays = [x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x for x in inputs]
        self.arrays = [x if isinstance(x, np.ndarray) else None for x in arrays]
        paths = [os.fspath(x) if a is None else "" for x, a in zip(inputs, self.arrays)]
        if names is None:
            names = [p if a is None else f"array #{i}" for i, (p, a) in enumerate(zip(paths, self.arrays))]
        super().__init__(
            "translate",
            is_train_split=False,
            cfg=cfg,
            video_paths=paths,
            n_frames=list(n_frames),
            ids=list(names),
            starts=starts,
            ends=ends,
            visual_input=visual_input,
            augment=False,
            shuffle=False,
        )
        self.feature_level, self.skip_bad = feature_level, skip_bad
        if feature_level is not None:  # cached features: loaded as they are, one row a frame
            self.features, self.stride = True, 1
            self.src_sizes = np.asarray(n_frames, dtype=np.int64)

    def where(self, index: int) -> str:
        return self.ids[index]

    def _load_source(self, index: int):
        x = self.arrays[index]
        if x is None:  # a path, read as a manifest row
            return super()._load_source(index)
        if self.features:  # as the dataset loads cached features
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), None
        idx = sample_indices(int(self.n_frames[index]), self.stride, 0)  # phase 0 and the eval transform
        return torch.from_numpy(self.transform([x[i] for i in idx])), None

    def __getitem__(self, index: int) -> Union[SignTranslationDatasetItem, UnreadableInput]:
        try:
            return super().__getitem__(index)
        except SignDataError as e:
            message = str(e.__cause__ or e)  # the reader's own line names the input
            if not self.skip_bad:
                raise SignDataError(message) from e
            return UnreadableInput(index, message)

    def collater(self, samples, return_order: bool = False):
        readable = [x for x in samples if not isinstance(x, UnreadableInput)]
        batch = super().collater(readable)
        if batch and self.feature_level is not None:  # the encoder is told the level per batch
            batch["net_input"]["src_level"] = self.feature_level
        unreadable = [(x.index, x.error) for x in samples if isinstance(x, UnreadableInput)]
        if unreadable:
            batch["unreadable"] = unreadable
        return batch
