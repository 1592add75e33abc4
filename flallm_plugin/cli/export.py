#!/usr/bin/env python
"""flallm-export: a self-contained model directory for translating new videos.

    flallm-export --checkpoint ckpt2/checkpoint_best.pt --data DATA --out MODEL_DIR
    flallm-translate MODEL_DIR clip.mp4

``--checkpoint`` is a stage-1 (``light_t``) or stage-2 (``sign_mbart``) checkpoint, ``--data`` the
data directory it was trained on (video, or the cached features of flallm-extract-features).
MODEL_DIR holds what decoding needs and nothing training needs:

* ``model.pt``: the weights (a stage-2 model carries its frozen visual encoder) and args, without
  optimizer state; loaded with ``weights_only=True`` like every checkpoint;
* ``config.yaml``: a *video* data config with the model's frame resize/crop, mean/std and temporal
  sampling rate, the target language tag and the BLEU tokenizer, from the record of the input in the
  model args (:class:`~flallm_plugin.data.visual_input.VisualInputSpec`; for a checkpoint older than
  the record, what it lacks comes from ``--data``), ``input_type: video`` even for a model trained on
  cached features: the model reads videos, its visual encoder included;
* ``dict.txt``, ``spm.model`` (the sentencepiece model, if the data has one);
* ``README.md``: a model card (architecture, parameter counts, training data, scores if known).

Paths to pretrained parts in the saved args (``--pretrained-mbart``, ``--load-visual-encoder-from``,
``--visual-backbone-weights``) are kept as a record only: a model rebuilt from its checkpoint never
reads them. The directory is written under a temporary name, loaded once as a check, and renamed;
``--out`` must not exist (nothing is ever replaced), and the temporary directory of an interrupted
export to the same ``--out`` is removed by the next one (:mod:`flallm_plugin.out_dir`).
"""
import argparse
import logging
import os
import shutil
import sys
from argparse import Namespace

import torch

logger = logging.getLogger("flallm.export")

MODEL_FILE = "model.pt"
SPM_FILE = "spm.model"
DICT_FILE = "dict.txt"
TOOL = "flallm-export"


def get_parser():
    p = argparse.ArgumentParser(prog="flallm-export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="stage-1 or stage-2 fairseq checkpoint")
    p.add_argument("--data", required=True,
                   help="the data directory the checkpoint was trained on (its config.yaml, dictionary, spm model)")
    p.add_argument("--out", required=True, help="model directory to write (must not exist)")
    p.add_argument("--scores", default=None,
                   help="a text file of dev/test scores (e.g. flallm-score output) to quote in the model card")
    return p


def _model_args(cfg: dict, path: str) -> Namespace:
    model = cfg.get("model")
    if isinstance(model, Namespace):
        return model
    if isinstance(model, dict):
        return Namespace(**model)
    raise ValueError(f"{path}: checkpoint has no model configuration (cfg.model)")


def video_config(model_args: Namespace, task_cfg: dict, data_cfg, ckpt: str, has_spm: bool) -> dict:
    """The model directory's config.yaml: how a video must be read for this model (its record of the
    input; a checkpoint older than the record: the facts it lacks from the training run's data)."""
    from flallm_plugin.data.visual_input import VisualInputSpec

    data = VisualInputSpec.from_data_cfg(data_cfg, task_cfg.get("sampling_rate"), task_cfg.get("tgt_lang_tag"),
                                         task_cfg.get("eval_bleu_tokenizer"))
    spec = VisualInputSpec.from_args(model_args, data)
    if spec.crop is None:
        raise ValueError(
            f"{ckpt}: the model args have no frame resize / crop (checkpoint older than the task's data facts)"
        )
    if spec.sampling_rate is None:  # cached features extracted before source_sampling_rate was written
        raise ValueError(
            f"{spec.data_config or data_cfg.path}: cached features without source_sampling_rate (the video sampling "
            "rate they were extracted at); re-extract them with flallm-extract-features"
        )
    config = {"vocab_filename": DICT_FILE, "video_root": ".", **spec.to_video_config(),
              "augmentation": {"enabled": False}}
    if has_spm:
        config["bpe_tokenizer"] = {"bpe": "sentencepiece", "sentencepiece_model": SPM_FILE}
    return config


def inference_state(state: dict) -> dict:
    """The checkpoint without optimizer state and training-run state; the task reads the model
    directory's config.yaml (sampling rate and language tag there, no validation BLEU)."""
    from fairseq.dataclass.configs import GenerationConfig
    from omegaconf import OmegaConf

    cfg = dict(state["cfg"])
    task = dict(cfg["task"])
    task.update({"data": ".", "config_yaml": "config.yaml", "sampling_rate": None, "tgt_lang_tag": None,
                 "eval_bleu": False, "eval_bleu_tokenizer": None})
    cfg["task"] = task
    cfg["common"] = dict(cfg["common"], user_dir=None)  # the plugin is imported by whoever loads it
    cfg["generation"] = OmegaConf.to_container(OmegaConf.structured(GenerationConfig))  # fairseq-generate's defaults
    history = state.get("optimizer_history") or [{}]
    last = {k: v for k, v in history[-1].items() if k in ("criterion_name", "optimizer_name", "num_updates")}
    last.setdefault("lr_scheduler_state", {})
    extra = state.get("extra_state") or {}
    out = {
        "cfg": cfg,
        "args": None,
        "model": state["model"],
        "optimizer_history": [last],
        "extra_state": {k: extra[k] for k in ("train_iterator", "val_loss", "best") if k in extra},
    }
    if "task_state" in state:
        out["task_state"] = state["task_state"]
    return out


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def model_card(translator, state: dict, model_args: Namespace, config: dict, args) -> str:
    from flallm_plugin.models.stage1_features import LightTFeatures

    model = translator.models[0]
    arch = getattr(model_args, "arch", type(model).__name__)
    enc = model.encoder
    visual, adapter = _params(enc.visual), _params(enc.adapter)
    total = _params(model)
    stage = "stage 2 (sign_mbart: frozen visual encoder -> LLM-Adapter -> mBART)" if arch.startswith(
        "sign_mbart") else "stage 1 (light_t: visual encoder -> VL-Adapter -> Light-T)"
    rest = "mBART" if arch.startswith("sign_mbart") else "Light-T translator (encoder + decoder)"
    task_cfg = state["cfg"]["task"]
    extra = state.get("extra_state") or {}
    hist = (state.get("optimizer_history") or [{}])[-1]
    visual_kind = "stage-1 Light-T encoder" if isinstance(enc.visual, LightTFeatures) else "ResNet-18 + temporal module"
    lines = [
        f"# {arch} — FLa-LLM sign language translation model",
        "",
        "Written by `flallm-export`; translate with `flallm-translate THIS_DIR clip.mp4` or",
        "`SignTranslator.from_pretrained(THIS_DIR)` (`from flallm_plugin import SignTranslator`).",
        "",
        "## Architecture",
        f"* {stage}, arch `{arch}`",
        f"* parameters: {total:,} in all — visual encoder ({visual_kind}) {visual:,}, adapter {adapter:,}, "
        f"{rest} {total - visual - adapter:,}",
        f"* the adapter reads {enc.feature_level}-level features of width {translator.feature_dim} "
        "(what a `.npy` input must hold)",
        "",
        "## Input (config.yaml)",
        f"* frames resized to {config['resize']} x {config['resize']}, centre crop {config['crop']}, "
        f"mean {config['mean']}, std {config['std']}",
        f"* temporal sampling rate {config['sampling_rate']} (phase 0)",
        f"* target language tag: {config['tgt_lang_tag']}; BLEU tokenizer: {config['bleu_tokenizer']}",
        "",
        "## Training",
        f"* checkpoint: `{os.path.abspath(args.checkpoint)}` ({hist.get('num_updates', '?')} updates)",
        f"* training data: `{task_cfg.get('data')}` (exported with --data `{os.path.abspath(args.data)}`)",
    ]
    for k in ("load_visual_encoder_from", "pretrained_mbart", "visual_backbone_weights"):
        v = getattr(model_args, k, None)
        if v is not None:
            lines.append(f"* `--{k.replace('_', '-')}` was `{v}` (a record only: not read when loading)")
    lines += ["", "## Scores"]
    metric = (state["cfg"].get("checkpoint") or {}).get("best_checkpoint_metric", "loss")
    known = False
    if extra.get("best") is not None:
        lines.append(f"* best validation {metric} during training: {extra['best']:.4g}")
        known = True
    if extra.get("val_loss") is not None:
        lines.append(f"* validation {metric} of this checkpoint: {extra['val_loss']:.4g}")
        known = True
    if args.scores:
        with open(args.scores, encoding="utf-8") as f:
            lines += ["", "```", f.read().rstrip("\n"), "```"]
        known = True
    if not known:
        lines.append("* not known (no validation was run; pass --scores FILE to quote a report)")
    return "\n".join(lines) + "\n"


def export(args) -> str:
    from flallm_plugin.checkpoint_safety import safe_torch_load
    from flallm_plugin.data.atomic_file import atomic_path
    from flallm_plugin.data.data_cfg import SignDataConfig
    from flallm_plugin.data.manifest import write_data_config
    from flallm_plugin.hub import SignTranslator
    from flallm_plugin.out_dir import make_temp_dir, marker_name, remove_orphan_temp_dirs

    out = os.path.abspath(args.out)
    if os.path.lexists(out):
        raise FileExistsError(f"{out}: already exists; remove it or choose another --out")
    state = safe_torch_load(args.checkpoint)  # weights_only; the raw dict (cfg as saved), rewritten below
    if not isinstance(state, dict) or "model" not in state or not isinstance(state.get("cfg"), dict):
        raise ValueError(f"{args.checkpoint}: not a fairseq checkpoint with a cfg (no 'model' or 'cfg' entry)")
    model_args = _model_args(state["cfg"], args.checkpoint)
    data_cfg = SignDataConfig(os.path.join(args.data, "config.yaml"))
    spm = (data_cfg.bpe_tokenizer or {}).get("sentencepiece_model")
    for f, what in ((data_cfg.vocab_filename, "target dictionary"), (spm, "sentencepiece model")):
        if f is not None and not os.path.isfile(f):
            raise FileNotFoundError(f"{f}: {what} not found (config {data_cfg.path})")
    from fairseq.data import Dictionary

    from flallm_plugin.data.vocab_fingerprint import check_vocab_facts

    # the dictionary and sentencepiece model copied into the model directory must be the training ones
    check_vocab_facts(model_args, data_cfg.vocab_filename, len(Dictionary.load(data_cfg.vocab_filename)), spm,
                      what=args.checkpoint)
    config = video_config(model_args, state["cfg"]["task"], data_cfg, args.checkpoint, spm is not None)

    remove_orphan_temp_dirs(out, TOOL)
    # a new, unique directory (nothing that exists is ever removed), renamed onto nothing, or an empty
    # directory made meanwhile (never a full one); removed if anything fails
    with atomic_path(out, tmp=make_temp_dir(out, TOOL)) as tmp:
        torch.save(inference_state(state), os.path.join(tmp, MODEL_FILE))
        shutil.copyfile(data_cfg.vocab_filename, os.path.join(tmp, DICT_FILE))
        if spm is not None:
            shutil.copyfile(spm, os.path.join(tmp, SPM_FILE))
        write_data_config(os.path.join(tmp, "config.yaml"), config)
        translator = SignTranslator.from_pretrained(tmp, cpu=True)  # the check: it loads on its own
        with open(os.path.join(tmp, "README.md"), "w", encoding="utf-8") as f:
            f.write(model_card(translator, state, model_args, config, args))
        os.unlink(os.path.join(tmp, marker_name(TOOL)))  # only an unfinished directory carries it
    size = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f"model directory {out}: {', '.join(sorted(os.listdir(out)))} ({size / 1e6:.1f} MB)")
    return out


def cli_main(argv=None):
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.WARNING,
                        stream=sys.stderr, force=True)
    args = get_parser().parse_args(argv)
    from flallm_plugin.checkpoint_safety import UnsafeCheckpointError

    try:
        export(args)
    except (FileNotFoundError, FileExistsError, ValueError, UnsafeCheckpointError) as e:
        print(f"flallm-export: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    cli_main()
