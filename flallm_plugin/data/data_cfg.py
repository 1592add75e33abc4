"""Reader for a sign-translation data directory's ``config.yaml``.

Mirrors :class:`fairseq.data.audio.data_cfg.S2TDataConfig`: a thin wrapper whose
properties give every field a documented default. Example::

    vocab_filename: dict.txt
    bpe_tokenizer: {bpe: sentencepiece, sentencepiece_model: spm.model}
    video_root: /data/PHOENIX-2014-T      # base of relative `video` paths
    input_type: video                     # video | features
    resize: 256                           # frames are resized to resize x resize ...
    crop: 224                             # ... then cropped (random in training)
    mean: [0.485, 0.456, 0.406]           # default: ImageNet's (visual_input.py)
    std: [0.229, 0.224, 0.225]
    sampling_rate: 0.25                   # temporal downsampling (1, 1/2, 1/4, 1/8)
    augmentation: {enabled: true, p: 0.5, rotate: 30, scale: 0.2, translate: 10}
    bleu_tokenizer: 13a                   # sacrebleu tokenizer: 13a, char, zh, ...
    tgt_lang_tag: null                    # e.g. "[de_DE]" for the mBART stage

Cached features (written by ``flallm-extract-features``) add ``feature_level``,
``feature_dim``, ``source_sampling_rate``, ``extracted_from`` and ``visual_fingerprint``.
The task turns the config into the model's record of its input once
(:class:`~flallm_plugin.data.visual_input.VisualInputSpec`).
Every key and its type are checked when the file is read: an unknown key (a misspelt
``sampling_rat``) or a value of the wrong type is an error naming the file and the key.
"""
import difflib
import math
import numbers
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml

from flallm_plugin.data.visual_input import FEATURE_LEVELS, IMAGENET_MEAN, IMAGENET_STD
DEFAULT_AUGMENTATION = {"enabled": True, "p": 0.5, "rotate": 30.0, "scale": 0.2, "translate": 10.0}
VALID_SAMPLING_RATES = (1.0, 0.5, 0.25, 0.125)


def sampling_stride(rate: float) -> int:
    """Temporal stride for a sampling rate (1 -> 1, 0.5 -> 2, 0.25 -> 4, 0.125 -> 8)."""
    if rate is None or not math.isfinite(rate) or rate <= 0 or rate > 1:  # NaN passes both comparisons
        raise ValueError(f"sampling rate must be in (0, 1], got {rate}: use one of {VALID_SAMPLING_RATES} "
                         "(the share of frames kept; the paper's is 0.25)")
    stride = round(1.0 / rate)
    if abs(1.0 / stride - rate) > 1e-6:
        raise ValueError(
            f"sampling rate {rate} is not 1/k for an integer k (use one of {VALID_SAMPLING_RATES})"
        )
    return stride


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _check_str(v):
    if not isinstance(v, str) or not v:
        return "a non-empty string"


def _check_optional_str(v):
    if v is not None and not isinstance(v, str):
        return "a string or null"


def _check_positive_int(v):
    if not _is_int(v) or v <= 0:
        return "a positive integer"


def _check_optional_positive_int(v):
    if v is not None and (not _is_int(v) or v <= 0):
        return "a positive integer or null"


def _check_rate(v):  # the value itself is checked by sampling_stride()
    if not _is_number(v):
        return "a number (1, 0.5, 0.25 or 0.125)"


def _check_choice(*choices, optional=False):
    def check(v):
        if not (optional and v is None) and v not in choices:
            return "one of " + ", ".join(choices) + (" or null" if optional else "")
    return check


def _check_rgb(positive: bool):
    def check(v):
        if not (isinstance(v, list) and len(v) == 3 and all(_is_number(x) for x in v)) or (
            positive and any(x <= 0 for x in v)
        ):
            return "a list of 3 " + ("positive numbers" if positive else "numbers") + " (R, G, B)"
    return check


def _check_bpe(v):
    if v is not None and not (isinstance(v, dict) and isinstance(v.get("bpe"), str)
                              and all(isinstance(x, str) for x in v.values())):
        return "a mapping with a 'bpe' name and string values (e.g. {bpe: sentencepiece, sentencepiece_model: spm.model}) or null"


AUGMENTATION_KEYS = {
    "enabled": lambda v: None if isinstance(v, bool) else "true or false",
    "p": lambda v: None if _is_number(v) and 0 <= v <= 1 else "a number in [0, 1]",
    "rotate": lambda v: None if _is_number(v) and v >= 0 else "a number >= 0 (degrees)",
    "scale": lambda v: None if _is_number(v) and v >= 0 else "a number >= 0",
    "translate": lambda v: None if _is_number(v) and v >= 0 else "a number >= 0 (pixels)",
}

# key -> check(value) returning None (valid) or what the value should be
CONFIG_KEYS: Dict[str, Callable[[Any], Optional[str]]] = {
    "vocab_filename": _check_str,
    "bpe_tokenizer": _check_bpe,
    "video_root": _check_str,
    "input_type": _check_choice("video", "features"),
    "resize": _check_positive_int,
    "crop": _check_positive_int,
    "mean": _check_rgb(positive=False),
    "std": _check_rgb(positive=True),
    "sampling_rate": _check_rate,
    "augmentation": lambda v: None if v is None or isinstance(v, dict) else "a mapping (keys: " + ", ".join(AUGMENTATION_KEYS) + ") or null",
    "bleu_tokenizer": _check_str,
    "tgt_lang_tag": _check_optional_str,
    # cached features (flallm-extract-features)
    "feature_level": _check_choice(*FEATURE_LEVELS, optional=True),
    "feature_dim": _check_optional_positive_int,
    "source_sampling_rate": lambda v: None if v is None else _check_rate(v),
    "extracted_from": _check_optional_str,
    "visual_fingerprint": _check_optional_str,
}


def _unknown_key(path, key, known, what="key") -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
    return f"{path}: unknown {what} {key!r}{hint}"


def validate_config(path, config: Dict[str, Any]):
    """Every key known and every value of its type; errors name the file and the key."""
    for key, value in config.items():
        if key not in CONFIG_KEYS:
            raise ValueError(_unknown_key(path, key, CONFIG_KEYS))
        expected = CONFIG_KEYS[key](value)
        if expected:
            raise ValueError(f"{path}: {key}: {value!r} is not valid; expected {expected}")
    for key, value in (config.get("augmentation") or {}).items():
        if key not in AUGMENTATION_KEYS:
            raise ValueError(_unknown_key(path, key, AUGMENTATION_KEYS, "augmentation key"))
        expected = AUGMENTATION_KEYS[key](value)
        if expected:
            raise ValueError(f"{path}: augmentation.{key}: {value!r} is not valid; expected {expected}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (PyYAML keeps the last one
    silently: a second ``sampling_rate:`` further down would win without a word)."""


def _construct_unique_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1}, again on line "
                f"{key_node.start_mark.line + 1}): keep one", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml_unique(f):
    """``yaml.safe_load`` of ``f``, except that a key given twice in a mapping is an error."""
    return yaml.load(f, Loader=_UniqueKeyLoader)


class SignDataConfig(object):
    """Wrapper of a data directory's config.yaml."""

    def __init__(self, yaml_path):
        self.path = Path(yaml_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: data config not found")
        try:
            with open(self.path, encoding="utf-8") as f:
                config = load_yaml_unique(f)
        except yaml.constructor.ConstructorError as e:
            if e.problem and e.problem.startswith("duplicate key"):
                raise ValueError(f"{self.path}: {e.problem}") from e
            raise ValueError(f"{self.path}: cannot parse data config: {' '.join(str(e).split())}") from e
        except (UnicodeDecodeError, yaml.YAMLError) as e:
            raise ValueError(f"{self.path}: cannot parse data config: {e}") from e
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ValueError(f"{self.path}: data config must be a mapping, got {type(config).__name__}")
        validate_config(self.path, config)
        self.config: Dict[str, Any] = config
        self.root = self.path.parent
        _ = self.vocab_filename, self.bpe_tokenizer  # a file outside the data directory is refused now
        if self.crop > self.resize:
            raise ValueError(f"{self.path}: crop {self.crop} exceeds resize {self.resize} (frames are resized to "
                             "resize x resize, then cropped): set crop <= resize, e.g. resize 256, crop 224")

    def _abs(self, x: Optional[str]) -> Optional[str]:
        """Resolve a path relative to the data directory (as S2TDataConfig does)."""
        if x is None:
            return None
        p = Path(x)
        if not p.is_absolute():
            p = self.root / p
        return p.as_posix()

    def _in_data_dir(self, key: str, x: str) -> str:
        """:meth:`_abs` of a file the data directory must hold (as written, symlinks not followed): one
        named outside it (``vocab_filename: /etc/passwd``, ``../../x``) is refused unread, so no error
        can quote it."""
        p = self._abs(x)
        root = os.path.normpath(os.path.abspath(self.root))
        if not os.path.normpath(os.path.abspath(p)).startswith(root + os.sep):
            raise ValueError(
                f"{self.path}: {key}: {x!r} is outside the data directory {root}; copy the file into it and "
                "give its name there"
            )
        return p

    @property
    def vocab_filename(self) -> str:
        """fairseq dictionary file (relative to the data directory, inside it)"""
        return self._in_data_dir("vocab_filename", self.config.get("vocab_filename", "dict.txt"))

    @property
    def bpe_tokenizer(self) -> Optional[Dict[str, Any]]:
        """subword model: ``{bpe: sentencepiece, sentencepiece_model: PATH}``"""
        bpe = self.config.get("bpe_tokenizer")
        if bpe is None:
            return None
        bpe = dict(bpe)
        if "sentencepiece_model" in bpe:
            bpe["sentencepiece_model"] = self._in_data_dir("bpe_tokenizer.sentencepiece_model", bpe["sentencepiece_model"])
        return bpe

    @property
    def video_root(self) -> str:
        """base directory of relative ``video`` paths in the manifests"""
        return self._abs(self.config.get("video_root", "."))

    @property
    def input_type(self) -> str:
        """``video`` (frames / video files) or ``features`` (cached .npy features)"""
        return self.config.get("input_type", "video")

    @property
    def feature_level(self) -> Optional[str]:
        """for cached features: the level they were taken at (sign, frame, light_t)"""
        return self.config.get("feature_level")

    @property
    def feature_dim(self) -> Optional[int]:
        return self.config.get("feature_dim")

    @property
    def visual_fingerprint(self) -> Optional[str]:
        """for cached features: sha256 of the stage-1 weights that computed them (checked by stage 2)"""
        return self.config.get("visual_fingerprint")

    @property
    def extracted_from(self) -> Optional[str]:
        """for cached features: the stage-1 checkpoint they were computed with"""
        return self.config.get("extracted_from")

    @property
    def resize(self) -> int:
        return self.config.get("resize", 256)

    @property
    def crop(self) -> int:
        return self.config.get("crop", 224)

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

    @property
    def features_hold_every_frame(self) -> bool:
        """Cached features extracted from every frame of the video (``source_sampling_rate: 1``)."""
        return self.input_type == "features" and self.config.get("source_sampling_rate") == 1

    def video_sampling_rate(self, rate: Optional[float] = None) -> float:
        """The share of a raw video's frames the model sees: ``rate`` (the task's ``--sampling-rate``)
        or the config's, times the rate cached features were extracted at."""
        own = float(rate) if rate is not None else self.sampling_rate
        if self.input_type != "features":
            return own
        source = self.config.get("source_sampling_rate")
        if source is None:
            raise ValueError(
                f"{self.path}: cached features without source_sampling_rate (the video sampling rate they "
                "were extracted at); re-extract them with flallm-extract-features"
            )
        return float(source) * own

    def sampling_stride(self, rate: Optional[float] = None) -> int:
        """The temporal stride for this data: the one place that validates a sampling rate.

        Args:
            rate: overrides the config's ``sampling_rate`` (e.g. the task's
                ``--sampling-rate``); ``None`` uses the config's.

        Cached features were sampled at extraction: their stride is 1, and a rate other than 1 is an
        error, unless they hold every frame (``source_sampling_rate: 1``, frame-level features of
        ``flallm-extract-features --visual-backbone-weights``): then they are sampled as video is.
        """
        if self.input_type == "features" and not self.features_hold_every_frame:
            if rate not in (None, 1.0):
                raise ValueError(
                    f"{self.path}: cached features were sampled at extraction (source_sampling_rate "
                    f"{self.config.get('source_sampling_rate')}); --sampling-rate {rate} cannot be applied to them"
                )
            return 1
        if rate is not None:
            try:
                return sampling_stride(rate)
            except ValueError as e:
                raise ValueError(f"--sampling-rate {rate}: {e}") from e
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
