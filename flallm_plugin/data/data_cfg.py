"""Reader for a sign-translation data directory's ``config.yaml``.

Mirrors :class:`fairseq.data.audio.data_cfg.S2TDataConfig`: a thin wrapper whose
properties give every field a documented default. Example::

    vocab_filename: dict.txt
    bpe_tokenizer: {bpe: sentencepiece, sentencepiece_model: spm.model}
    video_root: /data/PHOENIX-2014-T      # base of relative `video` paths
    input_type: video                     # video | features
    resize: 256                           # frames are resized to resize x resize ...
    crop: 224                             # ... then cropped (random in training)
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
    sampling_rate: 0.25                   # temporal downsampling (1, 1/2, 1/4, 1/8)
    augmentation: {enabled: true, p: 0.5, rotate: 30, scale: 0.2, translate: 10}
    bleu_tokenizer: 13a                   # sacrebleu tokenizer: 13a, char, zh, ...
    tgt_lang_tag: null                    # e.g. "[de_DE]" for the mBART stage
"""
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
DEFAULT_AUGMENTATION = {"enabled": True, "p": 0.5, "rotate": 30.0, "scale": 0.2, "translate": 10.0}
VALID_SAMPLING_RATES = (1.0, 0.5, 0.25, 0.125)


def sampling_stride(rate: float) -> int:
    """Temporal stride for a sampling rate (1 -> 1, 0.5 -> 2, 0.25 -> 4, 0.125 -> 8)."""
    if rate is None or rate <= 0 or rate > 1:
        raise ValueError(f"sampling rate must be in (0, 1], got {rate}")
    stride = round(1.0 / rate)
    if abs(1.0 / stride - rate) > 1e-6:
        raise ValueError(
            f"sampling rate {rate} is not 1/k for an integer k (use one of {VALID_SAMPLING_RATES})"
        )
    return stride


class SignDataConfig(object):
    """Wrapper of a data directory's config.yaml."""

    def __init__(self, yaml_path):
        self.path = Path(yaml_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: data config not found")
        try:
            with open(self.path, encoding="utf-8") as f:
                config = yaml.safe_load(f)
        except (UnicodeDecodeError, yaml.YAMLError) as e:
            raise ValueError(f"{self.path}: cannot parse data config: {e}") from e
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ValueError(f"{self.path}: data config must be a mapping, got {type(config).__name__}")
        self.config: Dict[str, Any] = config
        self.root = self.path.parent

    def _abs(self, x: Optional[str]) -> Optional[str]:
        """Resolve a path relative to the data directory (as S2TDataConfig does)."""
        if x is None:
            return None
        p = Path(x)
        if not p.is_absolute():
            p = self.root / p
        return p.as_posix()

    @property
    def vocab_filename(self) -> str:
        """fairseq dictionary file (relative to the data directory)"""
        return self._abs(self.config.get("vocab_filename", "dict.txt"))

    @property
    def bpe_tokenizer(self) -> Optional[Dict[str, Any]]:
        """subword model: ``{bpe: sentencepiece, sentencepiece_model: PATH}``"""
        bpe = self.config.get("bpe_tokenizer")
        if bpe is None:
            return None
        bpe = dict(bpe)
        if "sentencepiece_model" in bpe:
            bpe["sentencepiece_model"] = self._abs(bpe["sentencepiece_model"])
        return bpe

    @property
    def video_root(self) -> str:
        """base directory of relative ``video`` paths in the manifests"""
        return self._abs(self.config.get("video_root", "."))

    @property
    def input_type(self) -> str:
        """``video`` (frames / video files) or ``features`` (cached .npy features)"""
        t = self.config.get("input_type", "video")
        if t not in ("video", "features"):
            raise ValueError(f"{self.path}: input_type must be 'video' or 'features', got {t!r}")
        return t

    @property
    def feature_level(self) -> Optional[str]:
        """for cached features: the level they were taken at (sign, frame, light_t)"""
        return self.config.get("feature_level")

    @property
    def feature_dim(self) -> Optional[int]:
        return self.config.get("feature_dim")

    @property
    def resize(self) -> int:
        return int(self.config.get("resize", 256))

    @property
    def crop(self) -> int:
        return int(self.config.get("crop", 224))

    @property
    def mean(self) -> List[float]:
        return [float(v) for v in self.config.get("mean", IMAGENET_MEAN)]

    @property
    def std(self) -> List[float]:
        return [float(v) for v in self.config.get("std", IMAGENET_STD)]

    @property
    def sampling_rate(self) -> float:
        """temporal sampling rate of video input (1/k); see :meth:`sampling_stride`"""
        return float(self.config.get("sampling_rate", 0.25))

    def sampling_stride(self, rate: Optional[float] = None) -> int:
        """The temporal stride for this data: the one place that validates a sampling rate.

        Args:
            rate: overrides the config's ``sampling_rate`` (e.g. the task's
                ``--sampling-rate``); ``None`` uses the config's.

        Cached features were sampled at extraction: their stride is 1, and a rate
        other than 1 is an error.
        """
        if self.input_type == "features":
            if rate not in (None, 1.0):
                raise ValueError(
                    f"{self.path}: cached features were sampled at extraction; --sampling-rate "
                    f"{rate} cannot be applied to them"
                )
            return 1
        if rate is not None:
            return sampling_stride(rate)
        try:
            return sampling_stride(self.sampling_rate)
        except ValueError as e:
            raise ValueError(f"{self.path}: sampling_rate: {e}") from e

    @property
    def augmentation(self) -> Dict[str, Any]:
        aug = dict(DEFAULT_AUGMENTATION)
        aug.update(self.config.get("augmentation") or {})
        return aug

    @property
    def bleu_tokenizer(self) -> str:
        """sacrebleu tokenizer for validation BLEU and reports (``13a``, ``char``, ``zh``...)"""
        return self.config.get("bleu_tokenizer", "13a")

    @property
    def tgt_lang_tag(self) -> Optional[str]:
        """language tag appended to targets (``X </s> [de_DE]``) for mBART-style decoders"""
        return self.config.get("tgt_lang_tag")
