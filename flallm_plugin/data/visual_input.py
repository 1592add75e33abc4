"""The one record of what a model reads: :class:`VisualInputSpec`.

What the visual input is (video or cached features at a level, of a width), how a frame becomes
the model's input (resize, crop, mean/std), which frames are read (the temporal sampling rate),
and how the text side is tagged and scored (the target language tag, the BLEU tokenizer).

The facts travel one way, as fairseq's ``speech_to_text`` task writes ``input_feat_per_channel``::

    config.yaml --(task: from_data_cfg, once)--> VisualInputSpec --(task.build_model: write_to_args)-->
    model args (``args.visual_input``) --> checkpoint --(flallm-export: from_args, to_video_config)-->
    model directory's config.yaml --(task)--> the hub

and are read by the dataset (the stride, frame size, language tag), the models
(:meth:`VisualInputSpec.from_args`: the input kind, feature level, mean/std), feature extraction
and export. A checkpoint written before the record keeps the facts in separate model args
(``input_type``, ``input_feature_level``, ``pixel_mean``, ``frame_resize`` ...): :meth:`from_args`
reads those names too (:data:`LEGACY_ARGS`).

Also defined here, once: the feature levels (:data:`FEATURE_LEVELS`), the manifest columns, the
normalisation defaults and the language-tag lookup (:func:`lang_tag_index`).
"""
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Dict, List, Optional

from flallm_plugin.data.errors import SignDataError

# the levels a stage-1 model hands features to stage 2 at (paper Table 8), the default first:
# sign = temporal-module output, frame = ResNet-18 output, light_t = the Light-T encoder's hidden states
FEATURE_LEVELS = ("sign", "frame", "light_t")

# frame normalisation of the ImageNet-pretrained ResNet-18 (the data config's default mean / std)
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# a {split}.tsv manifest: the required columns, and the optional clip bounds (seconds)
MANIFEST_COLUMNS = ("id", "video", "n_frames", "tgt_text", "speaker")
CLIP_COLUMNS = ("start", "end")

ARGS_KEY = "visual_input"  # the model args' attribute that holds the record (a plain dict)

# where a checkpoint written before the record keeps each fact: field -> model arg
LEGACY_ARGS = {
    "input_type": "input_type",
    "feature_level": "input_feature_level",
    "feature_dim": "input_feat_per_channel",
    "resize": "frame_resize",
    "crop": "frame_crop",
    "mean": "pixel_mean",
    "std": "pixel_std",
    "visual_fingerprint": "input_visual_fingerprint",
    "extracted_from": "input_extracted_from",
    "data_config": "input_features_config",
}


def check_feature_level(level: str, levels=FEATURE_LEVELS) -> str:
    """``level`` if it is one of ``levels``; else a one-line error naming them."""
    if level not in levels:
        raise ValueError(f"unknown feature level {level!r} (one of {', '.join(levels)})")
    return level


def computable_from(input_level: str, level: str) -> bool:
    """Whether ``level`` features can be computed from cached ``input_level`` features: the same level,
    or sign-level from frame-level ones (the temporal module over the ResNet's output)."""
    return input_level == level or (input_level, level) == ("frame", "sign")


def lang_tag_index(dictionary, tag: Optional[str], where: str) -> Optional[int]:
    """The index of the target language tag ``tag`` in ``dictionary`` (``None`` for no tag); a tag
    the dictionary does not hold is an error naming ``where`` (the dictionary file or option)."""
    if tag is None:
        return None
    idx = dictionary.index(tag)
    if idx == dictionary.unk():
        raise SignDataError(f"target language tag {tag} is not in {where}")
    return idx


def _plain(value):
    """An OmegaConf list / mapping of a loaded checkpoint's args as Python's."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


@dataclass
class VisualInputSpec(object):
    """What a model reads and how (see the module docstring). ``None``: not known."""

    input_type: str = "video"  # video (frame folders, video files) | features (cached .npy)
    feature_level: Optional[str] = None  # cached features: the level they were taken at
    feature_dim: Optional[int] = None  # cached features: their width
    resize: Optional[int] = None  # frames resized to resize x resize ...
    crop: Optional[int] = None  # ... then cropped to crop x crop
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))
    # of the video frames (1/k) the model reads (None: cached features that did not record their rate)
    sampling_rate: Optional[float] = None
    # cached features: the video rate they were extracted at; 1 = every frame (ResNet features of
    # flallm-extract-features --visual-backbone-weights), then sampled at ``sampling_rate`` as video is
    source_sampling_rate: Optional[float] = None
    tgt_lang_tag: Optional[str] = None  # appended to targets, starts decoding (mBART)
    bleu_tokenizer: Optional[str] = None  # sacrebleu tokenizer of validation BLEU and reports
    # cached features: sha256 of the stage-1 weights that computed them, that checkpoint, their config.yaml
    visual_fingerprint: Optional[str] = None
    extracted_from: Optional[str] = None
    data_config: Optional[str] = None

    @property
    def features(self) -> bool:
        return self.input_type == "features"

    @property
    def stride(self) -> int:
        """The temporal stride of the frames read: 1 for cached features sampled at extraction; features
        of every frame are sampled as video is."""
        from flallm_plugin.data.data_cfg import sampling_stride

        if self.features and self.source_sampling_rate != 1:
            return 1
        return sampling_stride(self.sampling_rate)

    @property
    def input_level(self) -> Optional[str]:
        """The level of the input batches: ``None`` for video, else the cached features' level."""
        return (self.feature_level or FEATURE_LEVELS[0]) if self.features else None

    # ------------------------------------------------------------- building
    @classmethod
    def from_data_cfg(cls, data_cfg, sampling_rate: Optional[float] = None, tgt_lang_tag: Optional[str] = None,
                      bleu_tokenizer: Optional[str] = None) -> "VisualInputSpec":
        """The facts of a data directory's config (:class:`~flallm_plugin.data.data_cfg.SignDataConfig`);
        ``sampling_rate`` / ``tgt_lang_tag`` / ``bleu_tokenizer``: the run's options, ``None`` = the data's.
        The sampling rate is checked for this data here (errors name the file)."""
        data_cfg.sampling_stride(sampling_rate)
        features = data_cfg.input_type == "features"
        source = data_cfg.config.get("source_sampling_rate") if features else None
        if features and source is None:  # extracted before the rate was recorded
            rate = None
        else:  # the share of the video's frames the model reads (cached features: times their own rate)
            rate = data_cfg.video_sampling_rate(sampling_rate)
        return cls(
            input_type=data_cfg.input_type,
            feature_level=(data_cfg.feature_level or FEATURE_LEVELS[0]) if features else None,
            feature_dim=data_cfg.feature_dim if features else None,
            resize=data_cfg.resize,
            crop=data_cfg.crop,
            mean=data_cfg.mean,
            std=data_cfg.std,
            sampling_rate=float(rate) if rate is not None else None,
            source_sampling_rate=float(source) if source is not None else None,
            tgt_lang_tag=tgt_lang_tag if tgt_lang_tag is not None else data_cfg.tgt_lang_tag,
            bleu_tokenizer=bleu_tokenizer or data_cfg.bleu_tokenizer,
            visual_fingerprint=data_cfg.visual_fingerprint if features else None,
            extracted_from=data_cfg.extracted_from if features else None,
            data_config=str(data_cfg.path),
        )

    @classmethod
    def from_args(cls, args, data: Optional["VisualInputSpec"] = None) -> "VisualInputSpec":
        """The record in a model's args (``args.visual_input``). Args written before the record hold
        the facts under their old names (:data:`LEGACY_ARGS`); what they never held (sampling rate,
        language tag, BLEU tokenizer) is taken from ``data`` (the data's record), if given."""
        raw = getattr(args, ARGS_KEY, None)
        if raw is not None:
            raw = _plain(raw)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(raw) - known)
            if unknown:
                raise ValueError(f"model args: {ARGS_KEY} has unknown fields {unknown} (written by a newer flallm?)")
            return cls(**raw)
        spec = cls() if data is None else replace(data, resize=None, crop=None)
        old = {f: _plain(getattr(args, a)) for f, a in LEGACY_ARGS.items() if getattr(args, a, None) is not None}
        if old.get("input_type", spec.input_type) != "features":
            for f in ("feature_level", "feature_dim", "visual_fingerprint", "extracted_from", "source_sampling_rate"):
                old.setdefault(f, None)
        return replace(spec, **old)

    # -------------------------------------------------------------- writing
    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def write_to_args(self, args):
        """The record into the model args (``args.visual_input``, saved with the checkpoint); also
        fairseq's own names that its speech-to-text models read (``input_feat_per_channel``,
        ``input_channels``). The old separate names of an older checkpoint's args are dropped."""
        for name in set(LEGACY_ARGS.values()) - {"input_feat_per_channel"}:
            if name in args:
                delattr(args, name)
        setattr(args, ARGS_KEY, self.to_dict())
        args.input_feat_per_channel = self.feature_dim if self.features else None
        args.input_channels = 1

    def to_video_config(self) -> Dict[str, Any]:
        """How a video must be read for a model of this record: the video data-config keys of a
        model directory (``flallm-export``); a model trained on cached features reads videos too."""
        return {
            "input_type": "video",
            "resize": int(self.resize),
            "crop": int(self.crop),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "sampling_rate": self.sampling_rate,
            "bleu_tokenizer": self.bleu_tokenizer,
            "tgt_lang_tag": self.tgt_lang_tag,
        }
