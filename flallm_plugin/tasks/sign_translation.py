"""``sign_translation``: sign-language video -> spoken-language text.

Laid out as :mod:`fairseq.tasks.speech_to_text`: a data directory of ``{split}.tsv``
manifests plus ``config.yaml`` (:class:`~flallm_plugin.data.data_cfg.SignDataConfig`),
the target dictionary and the sentencepiece model it names.
"""
import dataclasses
import json
import logging
import os
from argparse import Namespace
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from fairseq import metrics, utils
from fairseq.data import Dictionary, encoders
from fairseq.dataclass import FairseqDataclass
from fairseq.tasks import FairseqTask, register_task
from fairseq_cli.generate import get_symbols_to_strip_from_output
from omegaconf import II, MISSING, OmegaConf, open_dict

from flallm_plugin.checkpoint_safety import check_checkpoint_file, check_path_option
from flallm_plugin.data.data_cfg import SignDataConfig
from flallm_plugin.data.inference_dataset import SignInferenceDataset
from flallm_plugin.data.sign_translation_dataset import SignTranslationDatasetCreator
from flallm_plugin.data.device_transforms import warp_frames
from flallm_plugin.data.visual_input import VisualInputSpec, lang_tag_index
from flallm_plugin.data.vocab_fingerprint import check_vocab_facts, write_vocab_facts
from flallm_plugin.models.visual_encoder import convert_sync_batchnorm, lengths_to_mask
from flallm_plugin.run_option import run_option
from flallm_plugin.scoring import references
from flallm_plugin.scoring.sign_eval import check_tokenizer
from flallm_plugin.tasks.grad_norms import GRAD_NORMS_REGION, log_grad_norms
from flallm_plugin.tasks.restore_file import check_restore_file
from flallm_plugin.tasks.save_dir_lock import lock_save_dir

logger = logging.getLogger(__name__)

EVAL_BLEU_ORDER = 4


@dataclass
class SignTranslationConfig(FairseqDataclass):
    data: str = field(
        default=MISSING,
        metadata={"help": "data directory with {split}.tsv manifests, config.yaml, dictionary and spm model"},
    )
    config_yaml: str = field(default="config.yaml", metadata={"help": "data config file name under --data"})
    max_source_frames: int = field(
        default=1024,
        metadata={"help": "longest source, in frames after temporal sampling (longer samples are skipped)"},
    )
    max_target_positions: int = field(default=1024, metadata={"help": "longest target, in tokens"})
    sampling_rate: Optional[float] = field(
        default=None,
        metadata={
            "help": "temporal sampling rate of the frames fed to the CNN: 1, 0.5, 0.25 (paper) or 0.125; "
            "default: config.yaml's sampling_rate (0.25 if absent). Uniform stride, random phase in training."
        },
    )
    no_augment: bool = field(
        default=False, metadata={"help": "disable train-time augmentation (random crop, rotate, resize, translate)"}
    )
    tgt_lang_tag: Optional[str] = field(
        default=None,
        metadata={
            "help": "append this language tag to targets (X </s> [de_DE]) and start decoding with it, "
            "as fairseq's mBART; default: config.yaml's tgt_lang_tag (none for Light-T)"
        },
    )
    eval_bleu: bool = field(default=False, metadata={"help": "compute BLEU on the validation set"})
    eval_bleu_args: Optional[str] = field(
        default="{}",
        metadata={"help": 'generation args for validation BLEU as JSON, e.g. \'{"beam": 5, "max_len_b": 100}\''},
    )
    eval_bleu_tokenizer: Optional[str] = field(
        default=None,
        metadata={"help": "sacrebleu tokenizer for validation BLEU (13a, char, zh...); default: config.yaml's"},
    )
    eval_bleu_print_samples: bool = field(default=False, metadata={"help": "print a sample hypothesis per batch"})
    rebuild_batches: bool = field(
        default=True,
        metadata={"help": "build each epoch's batches anew from (seed, epoch), keeping the data loader (default: "
                  "new batch compositions every epoch, exact resume mid-epoch); as in fairseq's audio tasks, "
                  "passing the flag turns it off (the first epoch's batches for all epochs)"},
    )
    blank_video: bool = field(
        default=False,
        metadata={"help": "diagnostic baseline: every frame is replaced by a black one (same clip shape), so the "
                  "model sees no visual information and learns from the targets alone (flallm-experiment's "
                  "text_only row); pass it to fairseq-generate too. On cached features every feature vector is zero"},
    )
    augment_on_device: bool = field(
        default=False,
        metadata={"help": "the data-loader workers only decode the frames; their resize, crop and augmentation "
                  "(the same parameters, drawn from the same random numbers) run as batched tensor operations on "
                  "the model's device in the task's train/valid/inference steps (fewer loader workers; pixels "
                  "within 1 grey level of the workers' OpenCV transform). Video input of one frame size only"},
    )
    sync_bn: bool = field(
        default=False,
        metadata={"help": "SyncBatchNorm in the CNN and the temporal module: BatchNorm statistics over the "
                  "global batch of a multi-GPU run (stage 1; GPUs only)"},
    )
    seed: int = II("common.seed")
    # read by the setup-time checks (the values of the run's other option groups)
    batch_size: Optional[int] = II("dataset.batch_size")
    batch_size_valid: Optional[int] = II("dataset.batch_size_valid")
    required_batch_size_multiple: int = II("dataset.required_batch_size_multiple")
    path: Optional[str] = II("common_eval.path")
    finetune_from_model: Optional[str] = II("checkpoint.finetune_from_model")
    cpu: bool = II("common.cpu")
    ddp_backend: str = II("distributed_training.ddp_backend")
    distributed_world_size: int = II("distributed_training.distributed_world_size")
    # the checkpoint fairseq-train resumes from, checked in build_model (restore_file.py)
    save_dir: str = II("checkpoint.save_dir")
    restore_file: str = II("checkpoint.restore_file")
    checkpoint_suffix: str = II("checkpoint.checkpoint_suffix")
    continue_once: Optional[str] = II("checkpoint.continue_once")


@register_task("sign_translation", dataclass=SignTranslationConfig)
class SignTranslationTask(FairseqTask):
    """Translate sign-language videos (frames, video files or cached features) to text."""

    cfg: SignTranslationConfig

    def __init__(self, cfg: SignTranslationConfig, tgt_dict: Dictionary, data_cfg: SignDataConfig):
        super().__init__(cfg)
        self.tgt_dict = tgt_dict
        self.data_cfg = data_cfg
        self.bpe = self.build_bpe(None)
        # the one record of the input (the data's facts and this run's options), built once here: read
        # by the datasets, written into the model args by build_model (checks --sampling-rate for this data)
        self.visual_input = VisualInputSpec.from_data_cfg(
            data_cfg, cfg.sampling_rate, cfg.tgt_lang_tag, cfg.eval_bleu_tokenizer
        )
        self.stride = self.visual_input.stride
        self.lang_tag_idx = lang_tag_index(tgt_dict, self.visual_input.tgt_lang_tag, data_cfg.vocab_filename)
        try:
            self.bleu_tokenizer = check_tokenizer(self.visual_input.bleu_tokenizer)
        except ValueError as e:
            where = "--eval-bleu-tokenizer" if cfg.eval_bleu_tokenizer else f"{data_cfg.path}: bleu_tokenizer"
            raise ValueError(f"{where}: {e}") from e
        self.sequence_generator = None
        if cfg.augment_on_device and data_cfg.input_type != "video":
            raise ValueError(f"--augment-on-device needs video input, but {data_cfg.path} is for cached "
                             f"{data_cfg.input_type}: drop the option")

    @classmethod
    def add_args(cls, parser):
        """The task's options (fairseq's own ``add_args``), and ``--path`` checked as it is parsed
        (:func:`~flallm_plugin.checkpoint_safety.check_path_option`): fairseq-validate loads it before
        any task exists. fairseq calls this with the command line's parser when ``--task
        sign_translation`` is given."""
        super().add_args(parser)
        for action in parser._actions:  # argparse has no public lookup of an option's action
            if "--path" in action.option_strings and action.type in (None, str):
                action.type = check_path_option

    @classmethod
    def setup_task(cls, cfg: SignTranslationConfig, **kwargs):
        data_cfg = SignDataConfig(os.path.join(cfg.data, cfg.config_yaml))
        dict_path = data_cfg.vocab_filename
        if not os.path.isfile(dict_path):
            raise FileNotFoundError(f"{dict_path}: target dictionary not found (config {data_cfg.path})")
        tgt_dict = Dictionary.load(dict_path)
        logger.info(f"target dictionary {dict_path}: {len(tgt_dict):,} types")
        task = cls(cfg, tgt_dict, data_cfg)
        if not kwargs.get("from_checkpoint", False):
            task.check_run_options()
        return task

    def check_run_options(self):
        """What would fail late, or without naming its cause, is refused before anything runs:
        a batch size below --required-batch-size-multiple (fairseq drops every batch of a small
        split: "The dataset is empty"), and checkpoints fairseq will load (--path,
        --finetune-from-model) that are missing, truncated or would run code."""
        multiple = run_option(self.cfg, "required_batch_size_multiple")
        for opt in ("batch_size", "batch_size_valid"):
            bsz = run_option(self.cfg, opt)
            if bsz is not None and multiple is not None and 1 < multiple and bsz < multiple:
                raise ValueError(
                    f"--{opt.replace('_', '-')} {bsz} is below --required-batch-size-multiple {multiple}: fairseq "
                    f"drops every batch whose size is not a multiple of {multiple}, so a small split would be empty; "
                    f"pass --required-batch-size-multiple 1 (or a divisor of {bsz})"
                )
        path = run_option(self.cfg, "path")
        for p in utils.split_paths(path) if path else []:
            check_checkpoint_file(p, "--path")
        finetune = run_option(self.cfg, "finetune_from_model")
        if finetune:
            check_checkpoint_file(finetune, "--finetune-from-model")

    # ------------------------------------------------------------------ data
    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        # training-time sampling and augmentation only when training: fairseq-generate passes
        # task_cfg, so decoding a train split (e.g. to check overfitting) sees eval-mode frames
        is_train_split = split.startswith("train") and kwargs.get("task_cfg") is None
        self.datasets[split] = SignTranslationDatasetCreator.from_tsv(
            self.cfg.data,
            self.data_cfg,
            split,
            self.tgt_dict,
            self.bpe,
            is_train_split=is_train_split,
            visual_input=self.visual_input,
            augment=not self.cfg.no_augment,
            seed=self.cfg.seed,
            blank_video=self.cfg.blank_video,
            augment_on_device=self.cfg.augment_on_device,
        )
        # the split's original references, published per generated batch (inference_step) for the scorer
        references.register(self.cfg.data, split, self.bleu_tokenizer)

    def build_dataset_for_inference(self, src_tokens, src_lengths, **kwargs):
        """fairseq's hub convention (as ``speech_to_text``, whose ``src_tokens`` are audio paths): a
        dataset of the inputs to translate, read and transformed as ``fairseq-generate`` reads a split
        (evaluation mode: sampling phase 0, centre crop). ``src_tokens``: video files or frame folders
        (paths), ``T x H x W x 3`` uint8 RGB arrays, or, with ``feature_level``, ``T x C`` float feature
        arrays or ``.npy`` files; ``src_lengths``: their frames (before temporal sampling) or feature
        rows. Keyword arguments: see :class:`~flallm_plugin.data.inference_dataset.SignInferenceDataset`."""
        return SignInferenceDataset(
            self.data_cfg, src_tokens, src_lengths, visual_input=self.visual_input, **kwargs
        )

    def get_batch_iterator(self, dataset, **kwargs):
        itr = super().get_batch_iterator(dataset, **kwargs)
        # with rebuild_batches fairseq builds an epoch's batches when first asked: build this one
        # now, so that size errors (samples longer than allowed) surface here as they otherwise do
        itr.frozen_batches
        return itr

    @property
    def source_dictionary(self):
        return None

    @property
    def target_dictionary(self):
        return self.tgt_dict

    def max_positions(self):
        return self.cfg.max_source_frames, self.cfg.max_target_positions

    def build_bpe(self, args):
        bpe = self.data_cfg.bpe_tokenizer
        if bpe is None:
            return None
        spm = bpe.get("sentencepiece_model")
        if spm is not None and not os.path.isfile(spm):
            raise FileNotFoundError(f"{spm}: sentencepiece model not found (config {self.data_cfg.path})")
        logger.info(f"target subword model: {bpe}")
        return encoders.build_bpe(Namespace(**bpe))

    def build_tokenizer(self, args):
        return None

    # ----------------------------------------------------------------- model
    def build_model(self, cfg, from_checkpoint=False):
        """Write the data facts into the model args (the record of the input, ``args.visual_input``,
        saved with the checkpoint, as speech_to_text writes ``input_feat_per_channel``), build the
        model, and load its pretrained parts (ResNet, stage 1, mBART) unless it is being rebuilt from
        one of its own checkpoints."""
        if not from_checkpoint:
            self.check_distributed()
            self.lock_save_dir()
            self.check_restore_file()
        with open_dict(cfg) if OmegaConf.is_config(cfg) else ExitStack():
            self.write_data_facts(cfg, from_checkpoint)
        model = super().build_model(cfg, from_checkpoint)
        if self.cfg.sync_bn:
            model = convert_sync_batchnorm(model)
        if not from_checkpoint and hasattr(model, "load_pretrained_components"):
            model.load_pretrained_components()
        if self.cfg.eval_bleu:
            gen_args = json.loads(self.cfg.eval_bleu_args or "{}")
            self.sequence_generator = self.build_generator([model], Namespace(**gen_args))
        return model

    def check_distributed(self):
        """Refuse, before training, what fairseq cannot run on CPUs with several processes."""
        if not getattr(self.cfg, "cpu", False) or (getattr(self.cfg, "distributed_world_size", 1) or 1) <= 1:
            return
        if self.cfg.ddp_backend not in ("legacy_ddp", "no_c10d"):
            raise ValueError(
                f"--ddp-backend {self.cfg.ddp_backend} cannot train on CPUs (fairseq passes device_ids, which "
                f"CPU modules reject): use --ddp-backend legacy_ddp with --cpu "
                f"(docs/training.md: Multi-GPU and multi-node)"
            )
        if self.cfg.sync_bn:
            raise ValueError("--sync-bn needs GPUs (torch's SyncBatchNorm does not run on CPUs): drop it with --cpu")

    def lock_save_dir(self):
        """One training run per --save-dir (save_dir_lock.py): global rank 0 of a training run locks it
        before any checkpoint is read or written; a second run stops here naming the holder's PID."""
        if getattr(self.cfg, "restore_file", None) is None:  # a task built without training options
            return
        save_dir = run_option(self.cfg, "save_dir")
        if not save_dir or not os.path.isdir(save_dir):  # fairseq-train has created it by now
            return
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:
            lock_save_dir(save_dir)

    def check_restore_file(self):
        """Before fairseq-train loads it: a checkpoint truncated by a kill is replaced by the newest
        intact one, or named with the command that resumes (rank 0 checks, the others wait)."""
        if getattr(self.cfg, "restore_file", None) is None:  # a task built without training options
            return
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not distributed or torch.distributed.get_rank() == 0:
            found = check_restore_file(self.cfg.save_dir, self.cfg.restore_file, self.cfg.checkpoint_suffix or "")
            continue_once = run_option(self.cfg, "continue_once")
            if found is None and continue_once and self.cfg.restore_file == "checkpoint_last.pt":
                # fairseq's first launch with --continue-once loads that file instead (weights_only first)
                found = continue_once, check_checkpoint_file(continue_once, "--continue-once")
            if found is not None:
                self.check_resumed_vocab(*found)
        if distributed:
            torch.distributed.barrier()

    def check_resumed_vocab(self, path: str, state):
        """The checkpoint training resumes from must have been trained with this data's dictionary
        (vocab_fingerprint.py); fairseq would load same-size embeddings of another vocabulary silently."""
        cfg = state.get("cfg") if isinstance(state, dict) else None
        model_args = cfg.get("model") if isinstance(cfg, dict) else None
        if model_args is None and isinstance(state, dict):
            model_args = state.get("args")  # a checkpoint of fairseq's older (argparse) format
        if isinstance(model_args, dict):
            model_args = Namespace(**model_args)
        if model_args is None:
            return
        spm = (self.data_cfg.bpe_tokenizer or {}).get("sentencepiece_model")
        check_vocab_facts(model_args, self.data_cfg.vocab_filename, len(self.tgt_dict), spm, what=path)

    def write_data_facts(self, args, from_checkpoint: bool):
        """What the model must know about the data: the record of the input (:class:`VisualInputSpec`),
        written once, and the vocabulary facts. The input kind (and, for cached features, which stage-1
        weights computed them: checked by the model once its weights are in place) is this run's data;
        the frame normalisation and resolution are the model's own once trained, and are checked, not
        replaced."""
        d = self.data_cfg
        spec = self.visual_input
        if from_checkpoint:
            trained = VisualInputSpec.from_args(args, spec)
            if trained.crop is not None:
                if not spec.features and (trained.resize, trained.crop) != (spec.resize, spec.crop):
                    raise ValueError(
                        f"{d.path}: frames are resized to {spec.resize} and cropped to {spec.crop}, but the model "
                        f"was trained on {trained.resize} / {trained.crop}; set resize/crop in the data config to "
                        "the model's"
                    )
                spec = dataclasses.replace(
                    spec, resize=trained.resize, crop=trained.crop, mean=trained.mean, std=trained.std
                )
        spec.write_to_args(args)
        spm = (d.bpe_tokenizer or {}).get("sentencepiece_model")
        if from_checkpoint:  # decoding: the dictionary and subword model must be the training ones
            check_vocab_facts(args, d.vocab_filename, len(self.tgt_dict), spm)
        else:
            write_vocab_facts(args, d.vocab_filename, len(self.tgt_dict), spm)
        if getattr(args, "max_source_positions", None) is None:  # fairseq's speech-to-text models read it
            args.max_source_positions = self.cfg.max_source_frames

    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None, **kwargs):
        extra = dict(extra_gen_cls_kwargs or {})
        if self.lang_tag_idx is not None:
            strip = set(extra.get("symbols_to_strip_from_output") or set())
            extra["symbols_to_strip_from_output"] = strip | {self.lang_tag_idx}
        return super().build_generator(models, args, seq_gen_cls=seq_gen_cls, extra_gen_cls_kwargs=extra, **kwargs)

    def generate(self, generator, models, sample, prefix_tokens=None, constraints=None):
        with torch.no_grad():
            return generator.generate(
                models,
                sample,
                prefix_tokens=prefix_tokens,
                constraints=constraints,
                bos_token=self.lang_tag_idx,
            )

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        """fairseq-generate's step: generate, then publish the batch's original references for the
        scorer, by the reference text fairseq-generate rebuilds from the ids (scoring/references.py)."""
        sample = self.augment_on_device(sample)
        hypos = self.generate(generator, models, sample, prefix_tokens, constraints)
        if sample.get("tgt_text") is not None and sample.get("target") is not None:
            rebuilt = [self.reference_as_generate_prints_it(t, generator) for t in sample["target"]]
            references.publish(self.cfg.data, sample["split"], sample["id"].tolist(), rebuilt, sample["tgt_text"])
        return hypos

    def reference_as_generate_prints_it(self, target: torch.Tensor, generator) -> str:
        """A padded target row -> the reference text ``fairseq-generate`` hands the scorer (its ``T-``
        line): ids to pieces (those outside the vocabulary as ``<<unk>>``, the generator's symbols to
        strip removed), then the task's subword model undone."""
        tokens = utils.strip_pad(target, self.tgt_dict.pad()).int().cpu()
        text = self.tgt_dict.string(
            tokens, escape_unk=True, extra_symbols_to_ignore=get_symbols_to_strip_from_output(generator)
        )
        return self.bpe.decode(text) if self.bpe is not None else text

    # -------------------------------------------------------------- training
    def augment_on_device(self, sample):
        """A batch of decoded frames and their warps (``--augment-on-device``) -> the batch of transformed
        frames the data-loader workers would have made (uint8, crop x crop), computed on the batch's device."""
        if not sample or "src_warp" not in sample.get("net_input", {}):
            return sample
        net_input = dict(sample["net_input"])
        src, lengths, inverse = net_input["src_tokens"], net_input["src_lengths"], net_input.pop("src_warp")
        d = self.visual_input
        with torch.no_grad():
            mask = lengths_to_mask(lengths, src.size(1))
            frames = warp_frames(src[mask], inverse.repeat_interleave(lengths, dim=0), d.resize, d.crop)
            out = src.new_zeros(src.shape[:2] + (d.crop, d.crop, 3))
            out[mask] = frames.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        net_input["src_tokens"] = out
        return dict(sample, net_input=net_input)

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        sample = self.augment_on_device(sample)
        if hasattr(criterion, "set_num_updates"):  # as fairseq's train_step tells the model
            criterion.set_num_updates(update_num)
        loss, sample_size, logging_output = super().train_step(
            sample, model, criterion, optimizer, update_num, ignore_grad
        )
        with torch.autograd.profiler.record_function(GRAD_NORMS_REGION):
            log_grad_norms(model, optimizer, sample_size)
        return loss, sample_size, logging_output

    # ------------------------------------------------------------ validation
    def valid_step(self, sample, model, criterion):
        sample = self.augment_on_device(sample)
        loss, sample_size, logging_output = super().valid_step(sample, model, criterion)
        if self.cfg.eval_bleu:
            bleu = self._inference_with_bleu(self.sequence_generator, sample, model)
            logging_output["_bleu_sys_len"] = bleu.sys_len
            logging_output["_bleu_ref_len"] = bleu.ref_len
            for i in range(EVAL_BLEU_ORDER):
                logging_output[f"_bleu_counts_{i}"] = bleu.counts[i]
                logging_output[f"_bleu_totals_{i}"] = bleu.totals[i]
        return loss, sample_size, logging_output

    def decode_tokens(self, tokens: torch.Tensor) -> str:
        """Token ids -> detokenized text (eos / language tag stripped, subwords merged)."""
        extra = {self.lang_tag_idx} if self.lang_tag_idx is not None else None
        s = self.tgt_dict.string(tokens.int().cpu(), unk_string="<unk>", extra_symbols_to_ignore=extra)
        return self.bpe.decode(s) if self.bpe is not None else s

    def _inference_with_bleu(self, generator, sample, model):
        import sacrebleu

        gen_out = self.generate(generator, [model], sample)
        hyps = [self.decode_tokens(gen_out[i][0]["tokens"]) for i in range(len(gen_out))]
        refs = list(sample["tgt_text"])  # the manifest's text, not the ids (pieces outside the vocabulary)
        if self.cfg.eval_bleu_print_samples:
            logger.info("example hypothesis: " + hyps[0])
            logger.info("example reference: " + refs[0])
        return sacrebleu.corpus_bleu(hyps, [refs], tokenize=self.bleu_tokenizer)

    def reduce_metrics(self, logging_outputs, criterion):
        super().reduce_metrics(logging_outputs, criterion)
        if not self.cfg.eval_bleu:
            return

        def sum_logs(key):
            result = sum(log.get(key, 0) for log in logging_outputs)
            return result.cpu() if torch.is_tensor(result) else result

        counts = [sum_logs(f"_bleu_counts_{i}") for i in range(EVAL_BLEU_ORDER)]
        totals = [sum_logs(f"_bleu_totals_{i}") for i in range(EVAL_BLEU_ORDER)]
        if not any(f"_bleu_totals_{i}" in log for log in logging_outputs for i in range(EVAL_BLEU_ORDER)):
            return  # training-step outputs
        # logged even when no hypothesis has a token (an untrained model): BLEU is then 0, and
        # --best-checkpoint-metric bleu always finds its value
        metrics.log_scalar("_bleu_counts", np.array(counts))
        metrics.log_scalar("_bleu_totals", np.array(totals))
        metrics.log_scalar("_bleu_sys_len", sum_logs("_bleu_sys_len"))
        metrics.log_scalar("_bleu_ref_len", sum_logs("_bleu_ref_len"))
        metrics.log_derived("bleu", compute_bleu)


def compute_bleu(meters) -> float:
    from sacrebleu.metrics import BLEU

    if max(meters["_bleu_totals"].sum) == 0 or int(meters["_bleu_ref_len"].sum) == 0:
        return 0.0

    bleu = BLEU.compute_bleu(
        correct=meters["_bleu_counts"].sum,
        total=meters["_bleu_totals"].sum,
        sys_len=int(meters["_bleu_sys_len"].sum),
        ref_len=int(meters["_bleu_ref_len"].sum),
        smooth_method="exp",
    )
    return round(bleu.score, 2)
