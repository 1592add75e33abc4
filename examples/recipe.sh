#!/usr/bin/env bash
# FLa-LLM on one of the paper's datasets, with the paper's hyper-parameters:
#
#   bash examples/recipe.sh phoenix14t|csl_daily|how2sign
#
# (examples/<dataset>/run.sh runs this with its dataset name). Paper results (test):
#   phoenix14t  RWTH-PHOENIX-Weather 2014 T (German): FLa-LLM 23.09 BLEU-4 / 45.27 ROUGE-L;
#               stage 1 alone 17.69 / 38.67
#   csl_daily   CSL-Daily (Chinese; BLEU on characters): FLa-LLM 14.20 / 37.25 (GFSLT-VLP 11.00 / 36.44)
#   how2sign    How2Sign (ASL -> English, raw mp4 clips): FLa-LLM 9.66 / 27.81
#
# What you need (nothing is downloaded by the code itself):
#   $DATA_ROOT  the dataset's original release:
#       phoenix14t  $DATA_ROOT/PHOENIX-2014-T/ (annotations/ and features/fullFrame-210x260px/)
#       csl_daily   $DATA_ROOT/sentence_label/{csl2020ct_v2.pkl,split_1.txt} and
#                   $DATA_ROOT/sentence/frames_512x512/<name>/*.jpg
#       how2sign    $DATA_ROOT/how2sign_realigned_{train,val,test}.csv and the sentence clips
#                   $DATA_ROOT/{train,val,test}_rgb_front_clips/raw_videos/<SENTENCE_NAME>.mp4
#                   (see preprocess/prep_how2sign.py --clips-dir-pattern)
#   $MBART_DIR/{model.pt,dict.txt,sentence.bpe.model}
#       fairseq's mbart.cc25 release: https://dl.fbaipublicfiles.com/fairseq/models/mbart/mbart.cc25.v2.tar.gz
#       (or a Hugging Face copy of facebook/mbart-large-cc25 converted with preprocess/convert_hf_mbart.py)
#   $RESNET=/path/to/resnet18-f37072fd.pth
#       torchvision's ImageNet ResNet-18: https://download.pytorch.org/models/resnet18-f37072fd.pth
#       (or put it in ~/.cache/torch/hub/checkpoints/ and use --visual-backbone-weights imagenet)
# Run from the repository root after `make setup` (source .venv/bin/activate).
# Several GPUs: fairseq-train uses every visible GPU (DDP). The paper's batch sizes are global:
# set NGPU and the per-GPU --batch-size is divided accordingly (or keep 1 GPU and use --update-freq).
set -euo pipefail
DATASET=${1:?usage: $0 phoenix14t|csl_daily|how2sign}

# what differs between the datasets
PREP_ARGS=()    # extra preprocessor options
VALID_ARGS=()   # extra fairseq-train options for validation
case "$DATASET" in
  phoenix14t)
    PREP=preprocess/prep_phoenix14t.py; DATA_ROOT_HOLDS="PHOENIX-2014-T/"
    LANG_TAG="[de_DE]"; TEXT_LANG=de; N_TRAIN=7096
    ;;
  csl_daily)
    PREP=preprocess/prep_csl_daily.py; DATA_ROOT_HOLDS="sentence_label/ and sentence/"
    LANG_TAG="[zh_CN]"; TEXT_LANG=zh; N_TRAIN=18401
    ;;
  how2sign)
    PREP=preprocess/prep_how2sign.py; DATA_ROOT_HOLDS="how2sign_realigned_*.csv and the clips"
    LANG_TAG="[en_XX]"; TEXT_LANG=en; N_TRAIN=31164
    PREP_ARGS=(--workers 16)  # counts frames by decoding every clip once
    VALID_ARGS=(--max-source-frames 512 --skip-invalid-size-inputs-valid-test)
    ;;
  *)
    echo "$0: unknown dataset '$DATASET' (phoenix14t, csl_daily or how2sign)" >&2
    exit 2
    ;;
esac
# every scorer (validation BLEU, sign_eval, flallm-score) uses config.yaml's bleu_tokenizer
# (13a; char for CSL-Daily), written by the preprocessor

DATA_ROOT=${DATA_ROOT:?set DATA_ROOT (holds $DATA_ROOT_HOLDS)}
MBART_DIR=${MBART_DIR:?set MBART_DIR (mbart.cc25)}
RESNET=${RESNET:-imagenet}
WORK=${WORK:-work/$DATASET}
NGPU=${NGPU:-1}
WORKERS=${WORKERS:-8}
mkdir -p "$WORK"

# 1. vocabulary: trim mbart.cc25 to the target side of the training set (PHOENIX14T: ~2.4k types)
python "$PREP" --data-root "$DATA_ROOT" --export-train-text "$WORK/train.$TEXT_LANG.txt"
python preprocess/trim_mbart.py --mbart-dir "$MBART_DIR" --train-text "$WORK/train.$TEXT_LANG.txt" --out-dir "$WORK/mbart.trimmed"

# 2. data directory (manifests, config.yaml) with mBART's tokenizer and the trimmed dictionary
python "$PREP" --data-root "$DATA_ROOT" --out-dir "$WORK/data" \
  --spm-model "$MBART_DIR/sentence.bpe.model" --dict "$WORK/mbart.trimmed/dict.txt" --tgt-lang-tag "$LANG_TAG" \
  --resize 256 --crop 224 --sampling-rate 0.25 ${PREP_ARGS[@]+"${PREP_ARGS[@]}"}

# 3. stage 1 (visual initialing): ResNet-18 + temporal module + VL-Adapter + Light-T (3+3, d 512)
#    SGD momentum 0.9, lr 1e-2, cosine, label smoothing 0.2, 75 epochs, batch 8, 25 % frames, augmentation.
BATCH1=8; EPOCHS1=75
UPD1=$(( EPOCHS1 * ( (N_TRAIN + BATCH1 - 1) / BATCH1 ) ))
fairseq-train "$WORK/data" --user-dir flallm_plugin --task sign_translation --arch light_t \
  --visual-backbone-weights "$RESNET" --sampling-rate 0.25 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
  --optimizer sgd --momentum 0.9 --lr 1e-2 --lr-scheduler cosine --max-update "$UPD1" --max-epoch "$EPOCHS1" \
  --batch-size $(( BATCH1 / NGPU )) --required-batch-size-multiple 1 --num-workers "$WORKERS" --amp \
  --valid-subset dev ${VALID_ARGS[@]+"${VALID_ARGS[@]}"} \
  --eval-bleu --eval-bleu-args '{"beam": 5, "max_len_b": 100}' \
  --best-checkpoint-metric bleu --maximize-best-checkpoint-metric --no-epoch-checkpoints \
  --save-dir "$WORK/ckpt_stage1" --tensorboard-logdir "$WORK/tb/stage1" --log-format simple --log-interval 50

# 4. cache the frozen visual encoder's sign-wise features (eval mode, no augmentation)
#    (--overwrite: a re-run replaces the features of an earlier stage-1 checkpoint, all splits at once)
flallm-extract-features --data "$WORK/data" --checkpoint "$WORK/ckpt_stage1/checkpoint_best.pt" \
  --out-dir "$WORK/features" --num-workers "$WORKERS" --overwrite

# 5. stage 2 (LLM fine-tuning): frozen visual encoder -> LLM-Adapter -> mBART-large-cc25
#    Adam, lr 1e-5 (mBART) and 1e-3 (adapter), both cosine, batch 16, label smoothing 0.2.
#    Epoch count is not given by the paper: 40 (ours). Train on raw video instead with "$WORK/data".
BATCH2=16; EPOCHS2=${EPOCHS2:-40}
UPD2=$(( EPOCHS2 * ( (N_TRAIN + BATCH2 - 1) / BATCH2 ) ))
fairseq-train "$WORK/features" --user-dir flallm_plugin --task sign_translation --arch sign_mbart_large \
  --load-visual-encoder-from "$WORK/ckpt_stage1/checkpoint_best.pt" --pretrained-mbart "$WORK/mbart.trimmed/model.pt" \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.2 \
  --optimizer param_group_adam --adam-betas '(0.9, 0.999)' --lr 1e-5 --group-lr '{"adapter": 1e-3}' \
  --lr-scheduler cosine --max-update "$UPD2" --max-epoch "$EPOCHS2" \
  --batch-size $(( BATCH2 / NGPU )) --required-batch-size-multiple 1 --num-workers "$WORKERS" --amp \
  --valid-subset dev ${VALID_ARGS[@]+"${VALID_ARGS[@]}"} \
  --eval-bleu --eval-bleu-args '{"beam": 5, "max_len_b": 100}' \
  --best-checkpoint-metric bleu --maximize-best-checkpoint-metric --no-epoch-checkpoints \
  --save-dir "$WORK/ckpt_stage2" --tensorboard-logdir "$WORK/tb/stage2" --log-format simple --log-interval 50

# 6. test: beam 5; the sign_eval scorer prints sacrebleu BLEU (with signature), BLEU-1..4 and ROUGE-L
fairseq-generate "$WORK/data" --user-dir flallm_plugin --task sign_translation --gen-subset test \
  --path "$WORK/ckpt_stage1/checkpoint_best.pt" --beam 5 --batch-size 16 --required-batch-size-multiple 1 \
  --scoring sign_eval > "$WORK/test.stage1.txt"
fairseq-generate "$WORK/features" --user-dir flallm_plugin --task sign_translation --gen-subset test \
  --path "$WORK/ckpt_stage2/checkpoint_best.pt" --beam 5 --batch-size 16 --required-batch-size-multiple 1 \
  --scoring sign_eval > "$WORK/test.stage2.txt"
# --data gives flallm-score the data config's bleu_tokenizer (char for CSL-Daily)
flallm-score --generate-output "$WORK/test.stage1.txt" --data "$WORK/data"
flallm-score --generate-output "$WORK/test.stage2.txt" --data "$WORK/data"
