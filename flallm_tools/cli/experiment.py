#!/usr/bin/env python
"""flallm-experiment: the paper's ablation tables with one command, mean ± std over seeds.

Given a prepared video data directory (``preprocess/prep_*.py`` output), a trimmed mBART
(``preprocess/trim_mbart.py`` output, or ``none``) and a list of rows, it trains and decodes every
row with fairseq's CLIs (``fairseq-train``, ``flallm-extract-features``, ``fairseq-generate --beam 5
--scoring sign_eval``), scores the test split against the manifest's original references and writes
``OUT/results.{md,csv,json}``::

    flallm-experiment --data DATA --mbart mbart.trimmed/model.pt --out-dir exp --seeds 3
    flallm-experiment ... --rows factorized,joint,stage1_only          # a few rows
    flallm-experiment ... --quick                                      # tiny epochs: tests the machinery

Rows (``--rows``, default all): factorized (the reference), joint (T4), no_visual_init and
stage1_only (T5), sampling_100/50/25/12.5 (T6), light_t_tiny/small/base/large (T7),
adapter_sign/frame/light_t (T8), freeze_backbone_temporal/backbone/none (T9, on video),
mbart_pretrained/mbart_random (T10), text_only (stage 1 on black frames: a diagnostic baseline),
contrastive (factorized with ``--contrastive-args`` added to stage 1; only with that option).

Shared work is done once: every step is keyed by what it computes (``OUT/steps/<kind>-<hash>/``, with
``done.json`` written last), so one stage 1 feeds every stage-2 row built on it, one feature cache
serves each (stage 1, level), and re-running the command after an interruption trains only what had
not finished (an unfinished step is deleted and redone).
"""
import argparse
import dataclasses
import json
import logging
import math
import os
import shlex
import sys
import time
from typing import Dict, List, Optional

import flallm_plugin
from flallm_plugin.data.visual_input import computable_from
from flallm_tools.experiment.checkpoint_facts import checkpoint_facts
from flallm_tools.experiment.rows import SIZES_HELP, Row, Stage1, Stage2, select_rows
from flallm_tools.experiment.steps import StepStore
from flallm_tools.experiment.table import markdown, summarize, write_tables

logger = logging.getLogger("flallm.experiment")

USER_DIR = os.path.dirname(os.path.abspath(flallm_plugin.__file__))
BIN = os.path.dirname(sys.executable)
LIGHT_T_SIZES = {"tiny": "light_t_tiny", "small": "light_t_small", "base": "light_t", "large": "light_t_large"}
# --quick: each Light-T size keeps its layers and heads, its widths divided by 8 (d 32 / 64 / 64 / 128)
QUICK_WIDTHS = {"light_t_tiny": (32, 128), "light_t_small": (64, 256), "light_t": (64, 256), "light_t_large": (128, 512)}


def get_parser():
    p = argparse.ArgumentParser(prog="flallm-experiment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="prepared video data directory ({train,dev,test}.tsv, config.yaml)")
    p.add_argument("--mbart", required=True, help="trimmed mBART model.pt (trim_mbart.py), or 'none' (random mBART)")
    p.add_argument("--out-dir", required=True, help="steps and results; re-running the command reuses what is done")
    p.add_argument("--rows", default=None,
                   help="comma-separated rows (default: all that apply, but scratch, scratch_pseudo_gloss, "
                        "recognition_scratch_pseudo_gloss and pseudo_gloss, which run only when named)")
    p.add_argument("--seeds", type=int, default=1, help="seeds 1..N per row; the table gives mean ± std")
    p.add_argument("--first-seed", type=int, default=1,
                   help="seeds K..K+N-1 instead (e.g. one seed per process, several processes sharing --out-dir; "
                        "a last run with all seeds then only reads what they did and writes the whole table)")
    p.add_argument("--quick", action="store_true",
                   help="machinery test: 1 epoch per stage, Light-T widths / 8, short outputs (numbers meaningless)")
    p.add_argument("--cpu", action="store_true", help="train and decode on the CPU")
    p.add_argument("--num-workers", type=int, default=2, help="data-loader workers of every step")
    p.add_argument("--visual-backbone-weights", default="imagenet",
                   help="ResNet-18 initialisation of stage 1 and of the rows without stage 1: a file, 'imagenet' "
                        "(torchvision's cache) or 'none'")
    p.add_argument("--sampling-rate", type=float, default=None,
                   help="temporal sampling of every row but T6's (default: the data's config.yaml)")
    g = p.add_argument_group("stage 1 (light_t; paper: SGD momentum 0.9, lr 1e-2, cosine, 75 epochs, batch 8)")
    g.add_argument("--stage1-arch", default="light_t", choices=sorted(QUICK_WIDTHS), help=SIZES_HELP)
    g.add_argument("--stage1-epochs", type=int, default=75)
    g.add_argument("--stage1-batch-size", type=int, default=8)
    g.add_argument("--stage1-optimizer", default="sgd", choices=["sgd", "adam"], help="sgd: with momentum 0.9")
    g.add_argument("--stage1-lr", type=float, default=1e-2)
    g.add_argument("--stage1-warmup-updates", type=int, default=0)
    g.add_argument("--extra-stage1-args", default="", help="more fairseq-train options of every stage 1 (one string)")
    g.add_argument("--stage1-frame-features", action="store_true",
                   help="train every stage 1 on cached ResNet features of every frame (flallm-extract-features "
                        "--level frame --visual-backbone-weights, once per data directory), its ResNet frozen: "
                        "no CNN forward and backward per update (the paper fine-tunes the ResNet in stage 1); "
                        "decoding reads the same features (the video gives the same translation). text_only and "
                        "the masked decoding read zero features; the stage-2 rows on video read the frame features "
                        "(joint trains the temporal module, LLM-Adapter and mBART end to end from them)")
    g.add_argument("--contrastive-args", default=None,
                   help="stage-1 options of the 'contrastive' row (one string, e.g. '--criterion ... "
                        "--contrastive-weight 0.1'); the row runs only when given")
    g.add_argument("--pseudo-gloss-args", default=None,
                   help="stage-1 options of the *_pseudo_gloss rows (one string; default: '--criterion "
                        "sign_pseudo_gloss_ce --pseudo-gloss-weight 1.0 --pseudo-gloss-only-updates U', U = 30 %% of "
                        "stage 1's updates)")
    g = p.add_argument_group("controls: the recognition and gloss2text rows")
    g.add_argument("--gloss-data", default=None,
                   help="the same videos prepared with the sign sequences as targets (e.g. prep_phoenix14t.py "
                        "--target-column orth): the recognition rows train on it, gloss2text reads its sequences")
    g.add_argument("--recognition-backbone-weights", default=None,
                   help="the ResNet-18 of the recognition row instead of --visual-backbone-weights (a file or "
                        "'none'), e.g. a from-scratch ResNet pre-trained on the gloss data's own sign sequences "
                        "(examples/pretrain_backbone_pseudo_gloss.py GLOSS_DATA): the recognition control of a "
                        "recipe that trains its ResNet on the task's own targets")
    g.add_argument("--gloss2text-epochs", type=int, default=30, help="epochs of the gloss2text transformer")
    g.add_argument("--gloss2text-arch-args",
                   default="--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 256 --decoder-embed-dim 256 "
                           "--encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024 --encoder-attention-heads 4 "
                           "--decoder-attention-heads 4 --dropout 0.3",
                   help="options of fairseq's --arch transformer for gloss2text (one string)")
    g = p.add_argument_group("stage 2 (sign_mbart; paper: Adam, lr 1e-5 mBART / 1e-3 adapter, cosine, batch 16)")
    g.add_argument("--stage2-arch", default=None, help="default sign_mbart_large (sign_mbart_tiny with --quick)")
    g.add_argument("--stage2-arch-args", default="",
                   help="architecture options matching --mbart, e.g. '--encoder-layers 2 --decoder-layers 2 "
                        "--encoder-embed-dim 128 ...' for a tiny mBART (one string)")
    g.add_argument("--stage2-epochs", type=int, default=40)
    g.add_argument("--stage2-batch-size", type=int, default=16)
    g.add_argument("--stage2-lr", type=float, default=1e-5, help="peak lr of mBART")
    g.add_argument("--adapter-lr", type=float, default=1e-3, help="peak lr of the LLM-Adapter (param group 'adapter')")
    g.add_argument("--visual-lr", type=float, default=1e-4,
                   help="peak lr of the visual encoder where a row trains it (joint, freeze_backbone, freeze_none; "
                        "param group 'visual'), instead of mBART's")
    g.add_argument("--extra-stage2-args", default="", help="more fairseq-train options of every stage 2 (one string)")
    g = p.add_argument_group("validation and decoding")
    g.add_argument("--eval-bleu-args", default='{"beam": 5, "max_len_b": 100}',
                   help="generation options of the dev BLEU that selects checkpoint_best.pt (JSON)")
    g.add_argument("--beam", type=int, default=5)
    g.add_argument("--max-len-b", type=int, default=200, help="fairseq-generate's --max-len-b on the test split")
    g.add_argument("--batch-size", type=int, default=16, help="decoding and feature-extraction batch size")
    return p


def quick_defaults(args):
    """--quick: the machinery at tiny cost (each row still trains what it says, for one epoch)."""
    args.stage1_epochs, args.stage2_epochs = 1, 1
    args.stage1_batch_size = min(args.stage1_batch_size, 4)
    args.stage2_batch_size = min(args.stage2_batch_size, 4)
    args.stage1_optimizer, args.stage1_lr = "adam", 1e-3
    args.stage2_lr, args.adapter_lr, args.visual_lr = 1e-3, 3e-3, 1e-3
    args.eval_bleu_args = '{"beam": 1, "max_len_b": 10}'
    args.max_len_b = 10
    args.gloss2text_epochs = 1


def fmt_rate(rate: float) -> str:
    return f"{rate:g}"


class Experiment(object):
    def __init__(self, args):
        from flallm_plugin.data.data_cfg import SignDataConfig
        from flallm_plugin.data.sign_translation_dataset import read_manifest

        if args.seeds < 1:
            raise ValueError(f"--seeds {args.seeds}: give at least 1")
        self.args = args
        self.data = os.path.abspath(args.data)
        self.data_cfg = SignDataConfig(os.path.join(self.data, "config.yaml"))
        if self.data_cfg.input_type != "video":
            raise ValueError(f"{self.data_cfg.path}: input_type {self.data_cfg.input_type!r}: --data must be the "
                             "video data directory (the experiment extracts the features each row needs)")
        self.n_train = len(read_manifest(os.path.join(self.data, "train.tsv")))
        self.sampling_rate = args.sampling_rate if args.sampling_rate is not None else self.data_cfg.sampling_rate
        self.mbart = None if args.mbart == "none" else os.path.abspath(args.mbart)
        if self.mbart is not None and not os.path.isfile(self.mbart):
            raise FileNotFoundError(f"{args.mbart}: --mbart file not found (trim_mbart.py's model.pt, or 'none')")
        self.gloss_data = None
        if args.gloss_data:
            self.gloss_data = os.path.abspath(args.gloss_data)
            check_gloss_data(self.data, self.gloss_data)
        self.rows = select_rows(args.rows, self.mbart is not None, bool(args.contrastive_args), bool(self.gloss_data))
        if args.recognition_backbone_weights is not None:
            w = args.recognition_backbone_weights
            if w.lower() not in ("none", "imagenet") and not os.path.isfile(w):
                raise FileNotFoundError(f"{w}: --recognition-backbone-weights file not found (a ResNet-18 state dict, "
                                        "e.g. examples/pretrain_backbone_pseudo_gloss.py's --out)")
            if not any(r.stage1 is not None and own_recognition_backbone(r.stage1) for r in self.rows):
                raise ValueError(f"--recognition-backbone-weights {args.recognition_backbone_weights}: only the "
                                 "recognition row reads it, and --rows has none: add it or drop the option")
            self.rows = [dataclasses.replace(r, trains=f"{r.trains}; ResNet-18 "
                                             f"{os.path.basename(args.recognition_backbone_weights)} "
                                             "(--recognition-backbone-weights)")
                         if r.stage1 is not None and own_recognition_backbone(r.stage1) else r for r in self.rows]
        for row in self.rows:  # before anything runs
            if row.stage1 is not None:
                self.stage1_backbone(row.stage1)
            if (args.stage1_frame_features and row.stage1 is not None and row.stage2 is not None
                    and row.stage2.input == "video" and row.stage2.freeze_visual == "none"):
                raise ValueError(f"--rows {row.name}: --stage1-frame-features keeps the ResNet frozen, so this row "
                                 "would be freeze_backbone's run: drop it or the option")
        if args.stage1_frame_features:  # what every row trains, said in the table
            self.rows = [dataclasses.replace(r, trains=f"{r.trains}; ResNet frozen (--stage1-frame-features)")
                         if not r.gloss2text else r for r in self.rows]
        self.out = os.path.abspath(args.out_dir)
        self.store = StepStore(os.path.join(self.out, "steps"))
        self.stage2_arch = args.stage2_arch or ("sign_mbart_tiny" if args.quick else "sign_mbart_large")

    # ------------------------------------------------------------------ commands
    def runtime_args(self) -> List[str]:
        """Options that do not change what is computed (not part of a step's key)."""
        return ["--user-dir", USER_DIR, "--num-workers", str(self.args.num_workers)] + (["--cpu"] if self.args.cpu else [])

    def train_command(self, data: str, spec_args: List[str], seed: int, save_dir: str) -> List[str]:
        return [os.path.join(BIN, "fairseq-train"), data, "--task", "sign_translation", *spec_args,
                "--seed", str(seed), *self.runtime_args(), "--required-batch-size-multiple", "1",
                "--valid-subset", "dev", "--eval-bleu", "--best-checkpoint-metric", "bleu",
                "--maximize-best-checkpoint-metric", "--no-epoch-checkpoints", "--no-last-checkpoints",
                "--log-format", "json", "--log-interval", "10", "--save-dir", save_dir]

    def schedule(self, epochs: int, batch: int) -> List[str]:
        return ["--max-epoch", str(epochs), "--max-update", str(epochs * math.ceil(self.n_train / batch)),
                "--batch-size", str(batch), "--eval-bleu-args", self.args.eval_bleu_args]

    def train(self, kind: str, data: str, spec_args: List[str], seed: int) -> Dict:
        spec = {"data": data, "args": spec_args, "seed": seed}

        def run(step_dir):
            t0 = time.time()
            self.store.command(step_dir, "train", self.train_command(data, spec_args, seed, step_dir))
            seconds = time.time() - t0
            return {"train_seconds": round(seconds, 2), **checkpoint_facts(os.path.join(step_dir, "checkpoint_best.pt"))}

        return self.store.step(kind, spec, run)

    # ------------------------------------------------------------------- stages
    def stage1_task_args(self, s1: Stage1) -> List[str]:
        rate = s1.sampling_rate if s1.sampling_rate is not None else self.sampling_rate
        return ["--sampling-rate", fmt_rate(rate)] + (["--blank-video"] if s1.blank_video else [])

    def stage1_data(self, s1: Stage1) -> str:
        return self.gloss_data if s1.target == "gloss" else self.data

    def aux_args(self, s1: Stage1) -> List[str]:
        a = self.args
        if s1.aux == "contrastive":
            return shlex.split(a.contrastive_args)
        if s1.aux == "pseudo_gloss":
            if a.pseudo_gloss_args is not None:
                return shlex.split(a.pseudo_gloss_args)
            updates = a.stage1_epochs * math.ceil(self.n_train / a.stage1_batch_size)
            return ["--criterion", "sign_pseudo_gloss_ce", "--pseudo-gloss-weight", "1.0",
                    "--pseudo-gloss-only-updates", str(round(0.3 * updates))]
        return []

    def frame_features(self, data: str, weights: str) -> Dict:
        """``data``'s frame-level ResNet features (every frame) from ``weights`` (--stage1-frame-features)."""
        spec = {"data": data, "weights": weights, "level": "frame"}

        def run(step_dir):
            out = os.path.join(step_dir, "features")
            self.store.command(step_dir, "extract", [
                sys.executable, "-m", "flallm_plugin.cli.extract_features", "--data", data,
                "--visual-backbone-weights", weights, "--out-dir", out, "--level", "frame",
                "--batch-size", str(self.args.batch_size), "--num-workers", str(self.args.num_workers),
                *(["--cpu"] if self.args.cpu else [])])
            return {"features": out}

        return self.store.step("frame_features", spec, run)

    def stage1_backbone(self, s1: Stage1) -> str:
        """The ResNet-18 weights of a stage 1. On frame features, text_only reads zero features of the run's
        ResNet (any weights give the same floor); a stage 1 that trains its ResNet from scratch cannot run."""
        a = self.args
        weights = a.visual_backbone_weights
        if a.recognition_backbone_weights is not None and own_recognition_backbone(s1):
            weights = a.recognition_backbone_weights
        if not a.stage1_frame_features:
            return s1.backbone or weights
        if s1.blank_video:
            return weights
        if s1.backbone is not None:
            raise ValueError(f"--stage1-frame-features freezes the ResNet, but a stage 1 with --visual-backbone-weights "
                             f"{s1.backbone} trains it from scratch (the scratch rows): drop those rows or the option")
        return weights

    def stage1_train_data(self, s1: Stage1) -> str:
        """What a stage 1 trains on: the video data, or (--stage1-frame-features) its cached ResNet features."""
        data = self.stage1_data(s1)
        if not self.args.stage1_frame_features:
            return data
        return self.frame_features(data, self.stage1_backbone(s1))["features"]

    def stage1(self, s1: Stage1, seed: int) -> Dict:
        a = self.args
        arch = LIGHT_T_SIZES[s1.size] if s1.size else a.stage1_arch
        widths = QUICK_WIDTHS[arch] if a.quick else None
        optim = ["--optimizer", "sgd", "--momentum", "0.9"] if a.stage1_optimizer == "sgd" else ["--optimizer", "adam"]
        spec_args = [
            "--arch", arch, *(["--encoder-embed-dim", str(widths[0]), "--encoder-ffn-embed-dim", str(widths[1])]
                              if widths else []),
            "--visual-backbone-weights", self.stage1_backbone(s1), *self.stage1_task_args(s1),
            "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2", *optim,
            "--lr", f"{a.stage1_lr:g}", "--lr-scheduler", "cosine",
            *(["--warmup-updates", str(a.stage1_warmup_updates), "--warmup-init-lr", "1e-7"]
              if a.stage1_warmup_updates else []),
            *self.schedule(a.stage1_epochs, a.stage1_batch_size),
            *self.aux_args(s1), *shlex.split(a.extra_stage1_args)]
        return self.train("stage1", self.stage1_train_data(s1), spec_args, seed)

    def features(self, stage1: Dict, level: str) -> Dict:
        spec = {"stage1": stage1["key"], "level": level}

        def run(step_dir):
            out = os.path.join(step_dir, "features")
            self.store.command(step_dir, "extract", [
                sys.executable, "-m", "flallm_plugin.cli.extract_features", "--data", self.data,
                "--checkpoint", stage1["checkpoint"], "--out-dir", out, "--level", level,
                "--batch-size", str(self.args.batch_size), "--num-workers", str(self.args.num_workers),
                *(["--cpu"] if self.args.cpu else [])])
            return {"features": out}

        return self.store.step("features", spec, run)

    def stage2(self, s2: Stage2, s1: Optional[Stage1], stage1: Optional[Dict], seed: int):
        """(training record, data directory it read, task options for decoding)."""
        a = self.args
        freeze = s2.freeze_visual
        if s2.input == "features":
            data, task_args = self.features(stage1, s2.adapter_input)["features"], []
        else:
            data, task_args = self.stage1_train_data(Stage1()), self.stage1_task_args(s1 or Stage1())
            if a.stage1_frame_features and freeze == "none":  # the ResNet is frozen in this setting
                freeze = "backbone"
        groups = {"adapter": a.adapter_lr, **({"visual": a.visual_lr} if freeze != "backbone+temporal" else {})}
        spec_args = [
            "--arch", self.stage2_arch, *shlex.split(a.stage2_arch_args),
            "--load-visual-encoder-from", stage1["checkpoint"] if s2.visual_init == "stage1" else "none",
            "--visual-backbone-weights", a.visual_backbone_weights,
            "--pretrained-mbart", self.mbart if (s2.pretrained_mbart and self.mbart) else "none",
            "--adapter-input", s2.adapter_input, "--freeze-visual", freeze, *task_args,
            "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2",
            "--optimizer", "param_group_adam", "--lr", f"{a.stage2_lr:g}", "--group-lr", json.dumps(groups),
            "--lr-scheduler", "cosine", *self.schedule(a.stage2_epochs, a.stage2_batch_size),
            *shlex.split(a.extra_stage2_args)]
        return self.train("stage2", data, spec_args, seed), data, task_args

    def decode(self, model: Dict, data: str, task_args: List[str]) -> Dict:
        from flallm_plugin.cli.score import manifest_references
        from flallm_plugin.scoring.sign_eval import evaluate

        a = self.args
        gen_args = ["--gen-subset", "test", "--beam", str(a.beam), "--max-len-b", str(a.max_len_b), *task_args]
        spec = {"model": model["key"], "data": data, "args": gen_args}

        def run(step_dir):
            out = os.path.join(step_dir, "generate-test.txt")
            self.store.command(step_dir, "generate", [
                os.path.join(BIN, "fairseq-generate"), data, "--task", "sign_translation", "--path",
                model["checkpoint"], *gen_args, "--scoring", "sign_eval", "--batch-size", str(a.batch_size),
                "--required-batch-size-multiple", "1", *self.runtime_args()], stdout_path=out)
            hyps, refs = manifest_references(out, os.path.join(data, "test.tsv"))
            return {"scores": evaluate(hyps, refs, tokenize=self.bleu_tokenizer(data))}

        return self.store.step("decode", spec, run)

    def bleu_tokenizer(self, data: str) -> str:
        from flallm_plugin.data.data_cfg import SignDataConfig

        return SignDataConfig(os.path.join(data, "config.yaml")).bleu_tokenizer

    def decode_masked(self, row: Row, model: Dict) -> Dict:
        """The same model decoded with every frame black (``--blank-video``): a stage-2 model trained on cached
        features reads the video data through its own frozen visual encoder (as flallm-translate does). With
        --stage1-frame-features a row whose model reads frame-level features or what is computed from them reads
        the run's frame features, every vector zero; a stage 2 on the Light-T encoder's states, black frames."""
        s1 = row.stage1 or Stage1()
        args = self.stage1_task_args(s1) + ["--blank-video"]
        if row.stage2 is not None and not computable_from("frame", row.stage2.adapter_input):
            return self.decode(model, self.stage1_data(s1), args)
        return self.decode(model, self.stage1_train_data(s1), args)

    # ---------------------------------------------------------------- gloss2text
    def gloss2text_data(self) -> Dict:
        """fairseq-preprocess of (sign sequence, sentence) pairs: the gloss data's targets as the source, the video
        data's sentences (its sentencepiece pieces, its dict.txt) as the target; line i = manifest row i."""
        from flallm_plugin.data.sign_translation_dataset import read_manifest

        spec = {"data": self.data, "gloss_data": self.gloss_data}

        def run(step_dir):
            import sentencepiece as spm

            bpe = self.data_cfg.bpe_tokenizer or {}
            if bpe.get("bpe") != "sentencepiece":
                raise ValueError(f"{self.data_cfg.path}: gloss2text needs a sentencepiece bpe_tokenizer, got {bpe}")
            sp = spm.SentencePieceProcessor(model_file=bpe["sentencepiece_model"])
            text = os.path.join(step_dir, "text")
            os.makedirs(text)
            for split in ("train", "dev", "test"):
                glosses = [r["tgt_text"] for r in read_manifest(os.path.join(self.gloss_data, f"{split}.tsv"))]
                sentences = [r["tgt_text"] for r in read_manifest(os.path.join(self.data, f"{split}.tsv"))]
                with open(os.path.join(text, f"{split}.gloss"), "w", encoding="utf-8") as f:
                    f.writelines(g + "\n" for g in glosses)
                with open(os.path.join(text, f"{split}.spoken"), "w", encoding="utf-8") as f:
                    f.writelines(" ".join(sp.encode(t, out_type=str)) + "\n" for t in sentences)
            out = os.path.join(step_dir, "bin")
            self.store.command(step_dir, "preprocess", [
                os.path.join(BIN, "fairseq-preprocess"), "--source-lang", "gloss", "--target-lang", "spoken",
                "--trainpref", os.path.join(text, "train"), "--validpref", os.path.join(text, "dev"),
                "--testpref", os.path.join(text, "test"), "--tgtdict", self.data_cfg.vocab_filename,
                "--destdir", out, "--workers", "1"])
            return {"bin": out}

        return self.store.step("gloss2text-data", spec, run)

    def gloss2text(self, seed: int):
        """(training record, decoding record) of the gloss2text ceiling for ``seed``."""
        from flallm_plugin.cli.score import manifest_references
        from flallm_plugin.scoring.sign_eval import evaluate

        a = self.args
        data = self.gloss2text_data()["bin"]
        batch = a.stage1_batch_size
        spec_args = ["--task", "translation", "--arch", "transformer", *shlex.split(a.gloss2text_arch_args),
                     "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.2",
                     "--optimizer", "adam", "--lr", "1e-3", "--lr-scheduler", "cosine",
                     "--warmup-updates", "50", "--warmup-init-lr", "1e-7",
                     "--max-epoch", str(a.gloss2text_epochs),
                     "--max-update", str(a.gloss2text_epochs * math.ceil(self.n_train / batch)),
                     "--batch-size", str(batch), "--eval-bleu", "--eval-bleu-args", a.eval_bleu_args,
                     "--eval-bleu-detok", "space", "--eval-bleu-remove-bpe", "sentencepiece",
                     "--best-checkpoint-metric", "bleu", "--maximize-best-checkpoint-metric"]
        spec = {"data": data, "args": spec_args, "seed": seed}

        def train(step_dir):
            t0 = time.time()
            self.store.command(step_dir, "train", [
                os.path.join(BIN, "fairseq-train"), data, *spec_args, "--seed", str(seed),
                "--num-workers", "0", *(["--cpu"] if a.cpu else []), "--required-batch-size-multiple", "1",
                "--no-epoch-checkpoints", "--no-last-checkpoints", "--log-format", "json", "--log-interval", "10",
                "--save-dir", step_dir])
            seconds = time.time() - t0
            return {"train_seconds": round(seconds, 2), **checkpoint_facts(os.path.join(step_dir, "checkpoint_best.pt"))}

        model = self.store.step("gloss2text", spec, train)
        gen_args = ["--gen-subset", "test", "--beam", str(a.beam), "--max-len-b", str(a.max_len_b)]

        def decode(step_dir):
            out = os.path.join(step_dir, "generate-test.txt")
            self.store.command(step_dir, "generate", [
                os.path.join(BIN, "fairseq-generate"), data, "--task", "translation", "--path", model["checkpoint"],
                *gen_args, "--post-process", "sentencepiece", "--batch-size", str(a.batch_size),
                "--required-batch-size-multiple", "1", *(["--cpu"] if a.cpu else [])], stdout_path=out)
            hyps, refs = manifest_references(out, os.path.join(self.data, "test.tsv"))
            return {"scores": evaluate(hyps, refs, tokenize=self.data_cfg.bleu_tokenizer)}

        decoded = self.store.step("decode", {"model": model["key"], "data": data, "args": gen_args}, decode)
        return model, decoded

    # --------------------------------------------------------------------- rows
    def row_seed(self, row: Row, seed: int) -> Dict:
        if row.gloss2text:
            final, decoded = self.gloss2text(seed)
            return self.record(seed, [final], final, decoded, None, None)
        chain = []
        stage1 = self.stage1(row.stage1, seed) if row.stage1 is not None else None
        if stage1 is not None:
            chain.append(stage1)
        if row.stage2 is None:
            final, data, task_args = stage1, self.stage1_train_data(row.stage1), self.stage1_task_args(row.stage1)
        else:
            final, data, task_args = self.stage2(row.stage2, row.stage1, stage1, seed)
            chain.append(final)
        decoded = self.decode(final, data, task_args)
        return self.record(seed, chain, final, decoded, self.decode_masked(row, final), stage1)

    def record(self, seed: int, chain: List[Dict], final: Dict, decoded: Dict, masked: Optional[Dict],
               stage1: Optional[Dict]) -> Dict:
        s = decoded["scores"]
        return {
            "seed": seed, **{k: s[k] for k in ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l")},
            "bleu4_masked": masked["scores"]["bleu4"] if masked else None,
            "rouge_l_masked": masked["scores"]["rouge_l"] if masked else None,
            "dev_bleu": final["dev_metric"], "epoch": final["epoch"], "updates": final["updates"],
            "train_seconds": round(sum(r["train_seconds"] for r in chain), 2),
            "trained_params": final["trained_params"], "checkpoint": final["checkpoint"],
            "stage1_checkpoint": stage1["checkpoint"] if stage1 else None,
            "signature": s["signature"],
            "steps": [r["key"] for r in chain] + [decoded["key"]] + ([masked["key"]] if masked else []),
        }

    def run(self) -> List[Dict]:
        a = self.args
        seeds = list(range(a.first_seed, a.first_seed + a.seeds))
        meta = {"data": self.data, "mbart": self.mbart, "seeds": seeds, "quick": a.quick,
                "sampling_rate": self.sampling_rate, "command": getattr(a, "command", None) or sys.argv}
        per_seed: Dict[str, List[Dict]] = {}
        title = f"flallm-experiment: {os.path.basename(self.data)}, test split, beam {a.beam}, {a.seeds} seed(s)"
        for row in self.rows:
            per_seed[row.name] = [self.row_seed(row, seed) for seed in seeds]
            logger.info(f"row {row.name}: done ({a.seeds} seed(s))")
            summary = summarize(self.rows, per_seed)
            write_tables(self.out, summary, meta, title)
        print(markdown(summary, title))
        print(f"steps run: {len(self.store.ran)}, reused: {len(self.store.reused)}; "
              f"tables: {os.path.join(self.out, 'results.md')} (.csv, .json)")
        return summary


def own_recognition_backbone(s1: Stage1) -> bool:
    """The stage 1 that --recognition-backbone-weights starts: the recognition row's (the sign sequences as targets,
    the run's ResNet), not recognition_scratch_pseudo_gloss's (a random ResNet whatever the options)."""
    return s1.target == "gloss" and s1.backbone is None and not s1.blank_video


def check_gloss_data(data: str, gloss_data: str):
    """--gloss-data must hold the same videos, row for row, as --data (the recognition rows and gloss2text pair
    them by manifest row)."""
    from flallm_plugin.data.sign_translation_dataset import read_manifest

    for split in ("train", "dev", "test"):
        a, b = os.path.join(data, f"{split}.tsv"), os.path.join(gloss_data, f"{split}.tsv")
        ids_a, ids_b = [r["id"] for r in read_manifest(a)], [r["id"] for r in read_manifest(b)]
        if ids_a != ids_b:
            where = next((i for i, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), min(len(ids_a), len(ids_b)))
            raise ValueError(f"{b}: row {where + 1} is not {a}'s (ids {ids_b[where:where + 1]} vs "
                             f"{ids_a[where:where + 1]}, {len(ids_b)} vs {len(ids_a)} rows): --gloss-data must be the "
                             "same release prepared with --target-column orth (or label_gloss)")


def cli_main(argv=None):
    logging.basicConfig(format="%(asctime)s | %(levelname)s | %(name)s | %(message)s", level=logging.INFO,
                        stream=sys.stdout, force=True)
    args = get_parser().parse_args(argv)
    args.command = None if argv is None else ["flallm-experiment", *argv]
    if args.quick:
        quick_defaults(args)
    Experiment(args).run()


if __name__ == "__main__":
    cli_main()
