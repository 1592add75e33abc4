#!/bin/bash
# The hard synthetic benchmark, end to end: generate the hard preset (PHOENIX-2014-T layout), pre-train and
# trim a tiny mBART on its text corpus (or reuse MBART_DIR), prepare the videos twice with the real
# preprocessor (targets: the German sentences; and the sign sequences, --target-column orth), pre-train the
# ResNet-18 stand-in for ImageNet on other signs by other signers (examples/synthetic/pretrain_backbone.py),
# then flallm-experiment's ladder of rows with SEEDS seeds, every score beside its video-masked twin:
#
#   text_only        the floor: stage 1 on black frames (the targets alone)
#   gloss2text       the ceiling: a text transformer from the sign sequence to the sentence
#   recognition      stage 1 trained and scored on the sign sequences (what the videos teach at all)
#   stage1_only, factorized, mbart_random, joint, no_visual_init      the paper's rows (Tables 4, 5, 10),
#                    from the stand-in ResNet (BACKBONE)
#   scratch          the paper's stage 1 from a random ResNet
#   scratch_pseudo_gloss, recognition_scratch_pseudo_gloss             the from-scratch remedy (pseudo-gloss loss)
#   contrastive      factorized with the alignment warm-up (CONTRASTIVE_ARGS)      sampling_50 (Table 6)
#
#   examples/synthetic/hard_benchmark.sh OUT_DIR
#
# Environment (defaults in brackets): SEEDS [3] seeds, FIRST_SEED [1] .. FIRST_SEED + SEEDS - 1; JOBS [1]
# processes at a time (>1: row groups x seeds run in parallel, sharing OUT_DIR/experiment/steps; a last run then
# only reads them and writes the whole table);
# N_TRAIN / N_DEV / N_TEST [1500/150/150]; STAGE1_EPOCHS / STAGE2_EPOCHS [3/6; 20/20 with FRAME_FEATURES=1]; G2T_EPOCHS [12] of gloss2text; ROWS [text_only, gloss2text,
# recognition, stage1_only, factorized, mbart_random, scratch, scratch_pseudo_gloss, recognition_scratch_pseudo_gloss];
# BACKBONE [standin: pre-train OUT_DIR/standin-resnet18.pth once; signcl: pre-train OUT_DIR/signcl-resnet18.pth once
# from a random ResNet, self-supervised on this benchmark's own training videos (examples/pretrain_backbone_signcl.py:
# no labels, no text: the from-scratch remedy); signcl_pseudo_gloss: that file, then trained on which words each
# training video's sentence contains (examples/pretrain_backbone_pseudo_gloss.py --init it, PSEUDO_GLOSS_ROUNDS:
# OUT_DIR/signcl-pseudo-gloss-N-resnet18.pth); or a ResNet-18 state dict; or none];
# BACKBONE_ARGS [''] options of pretrain_backbone.py or pretrain_backbone_signcl.py (e.g. '--n-clips 200 --epochs 1');
# PSEUDO_GLOSS_ROUNDS [the measured recipe, docs/grounding.md: '--epochs 10; --epochs 6 --seed 2; --epochs 6 --seed 3;
# --epochs 6 --lr 3e-4 --seed 6; --epochs 6 --lr 3e-4 --seed 7'] the pseudo-gloss rounds, ';'-separated options of
# pretrain_backbone_pseudo_gloss.py, each from the previous round's file; PSEUDO_GLOSS_ARGS [''] added to every round;
# RECOGNITION_ROUNDS [signcl_pseudo_gloss only; the measured recipe '--loss ctc --epochs 6 --lr 3e-4 --seed 8;
# --loss ctc --epochs 6 --lr 3e-4 --seed 9'; '' for none] more rounds from the last file on the gloss data (the signs
# of each training video in order: the recognition control's own targets;
# OUT_DIR/signcl-pseudo-gloss-signs-N-resnet18.pth), the recognition row's ResNet (--recognition-backbone-weights;
# every other row keeps the sentence-trained file);
# MBART_DIR [pre-train one: OUT_DIR/mbart.trimmed]; CPU [1: --cpu; 0 on a GPU]; WORKERS [1] loader workers per
# process; PYTHON [python]; CONTRASTIVE_ARGS [--criterion sign_contrastive_ce --contrastive-weight 1.0
# --contrastive-only-updates U, U = 30 % of stage 1's updates]: the stage-1 options of the contrastive row;
# EXPERIMENT [experiment]: the results directory under OUT_DIR (a second run with another EXPERIMENT and
# CONTRASTIVE_ARGS reuses OUT_DIR's data); TEXT_CORPUS_SIZE [50000] sentences and MBART_UPDATES [1500] of the
# tiny mBART's pre-training; QUICK [0; 1: flallm-experiment --quick, a test of the script: tests/test_hard_benchmark.py];
# FRAME_FEATURES [0; 1: --stage1-frame-features: every stage 1 on the stand-in's cached frame features, its ResNet
# frozen; then STAGE1_EPOCHS and STAGE2_EPOCHS default to 20 and ROWS to text_only, gloss2text, recognition, stage1_only,
# factorized, mbart_random, joint, no_visual_init, adapter_light_t (the scratch rows train the ResNet: refused)].
# Results: OUT_DIR/$EXPERIMENT/results.* (docs/grounding.md reads them).
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR}
PY=${PYTHON:-python}
SEEDS=${SEEDS:-3}; FIRST_SEED=${FIRST_SEED:-1}; JOBS=${JOBS:-1}; CPU=${CPU:-1}; WORKERS=${WORKERS:-1}
N_TRAIN=${N_TRAIN:-1500}; N_DEV=${N_DEV:-150}; N_TEST=${N_TEST:-150}
FRAME_FEATURES=${FRAME_FEATURES:-0}
# with cached frame features, stage 2 as long as stage 1: 6 epochs left it under-trained (docs/grounding.md)
if [ "$FRAME_FEATURES" = 1 ]; then E1=${STAGE1_EPOCHS:-20}; E2=${STAGE2_EPOCHS:-20}; else E1=${STAGE1_EPOCHS:-3}; E2=${STAGE2_EPOCHS:-6}; fi
BACKBONE=${BACKBONE:-standin}; BACKBONE_ARGS=${BACKBONE_ARGS:-}; BACKBONE_REQUESTED=$BACKBONE
PSEUDO_GLOSS_ROUNDS=${PSEUDO_GLOSS_ROUNDS:---epochs 10; --epochs 6 --seed 2; --epochs 6 --seed 3; --epochs 6 --lr 3e-4 --seed 6; --epochs 6 --lr 3e-4 --seed 7}
RECOGNITION_ROUNDS=${RECOGNITION_ROUNDS---loss ctc --epochs 6 --lr 3e-4 --seed 8; --loss ctc --epochs 6 --lr 3e-4 --seed 9}
G2T_EPOCHS=${G2T_EPOCHS:-12}; TEXT_CORPUS_SIZE=${TEXT_CORPUS_SIZE:-50000}; MBART_UPDATES=${MBART_UPDATES:-1500}; QUICK=${QUICK:-0}
B1=16  # stage 1's batch size
if [ "$FRAME_FEATURES" = 1 ]; then
  ROWS=${ROWS:-text_only,gloss2text,recognition,stage1_only,factorized,mbart_random,joint,no_visual_init,adapter_light_t}
else
  ROWS=${ROWS:-text_only,gloss2text,recognition,stage1_only,factorized,mbart_random,scratch,scratch_pseudo_gloss,recognition_scratch_pseudo_gloss}
fi
# stage 1 from scratch: the alignment loss alone for the first 30 % of the updates,
# then CE + 1.0 x contrastive (docs/training.md, "Stage 1 from scratch")
ALIGN_UPDATES=$(( (N_TRAIN + B1 - 1) / B1 * E1 * 3 / 10 ))
CONTRASTIVE_ARGS=${CONTRASTIVE_ARGS:---criterion sign_contrastive_ce --contrastive-weight 1.0 --contrastive-only-updates $ALIGN_UPDATES}
EXPERIMENT=${EXPERIMENT:-experiment}
HERE=$(cd "$(dirname "$0")/../.." && pwd)
cd "$HERE"
mkdir -p "$OUT"
t0=$(date +%s)

if [ -f "$OUT/data/config.yaml" ] && [ -f "$OUT/data.done" ]; then
  MBART_DIR=${MBART_DIR:-$OUT/mbart.trimmed}
  echo "data ready (reused $OUT/data)"
else
$PY examples/synthetic/generate_dataset.py --preset hard --out-root "$OUT/raw" --n-train "$N_TRAIN" \
  --n-dev "$N_DEV" --n-test "$N_TEST" --text-corpus-size "$TEXT_CORPUS_SIZE" --seed 1 > "$OUT/generate.json"
awk -F'|' 'NR > 1 {print $7}' "$OUT/raw/PHOENIX-2014-T/annotations/manual/PHOENIX-2014-T.train.corpus.csv" \
  > "$OUT/train.de.txt"
if [ -z "${MBART_DIR:-}" ]; then
  MBART_DIR=$OUT/mbart.trimmed
  $PY preprocess/pretrain_tiny_mbart.py --text "$OUT/raw/text_corpus.de.txt" --out-dir "$OUT/mbart" --langs de_DE \
    --spm-vocab-size 2000 --max-update "$MBART_UPDATES" --layers 2 --dim 128 --ffn 256 --heads 4 --seed 1
  $PY preprocess/trim_mbart.py --mbart-dir "$OUT/mbart" --train-text "$OUT/train.de.txt" --out-dir "$MBART_DIR" \
    --langs de_DE
fi
$PY preprocess/prep_phoenix14t.py --data-root "$OUT/raw" --out-dir "$OUT/data" --resize 56 --crop 48 \
  --spm-model "$MBART_DIR/sentence.bpe.model" --dict "$MBART_DIR/dict.txt" --tgt-lang-tag "[de_DE]"
# the same videos with the sign sequences (the generator's own annotation, PHOENIX's orth column) as targets
$PY preprocess/prep_phoenix14t.py --data-root "$OUT/raw" --out-dir "$OUT/gloss_data" --resize 56 --crop 48 \
  --target-column orth --spm-type word --vocab-size 400
touch "$OUT/data.done"
echo "data ready in $(( $(date +%s) - t0 )) s"
fi

# the stand-in for ImageNet ResNet-18: trained on other signs by other signers (never on this benchmark's)
if [ "$BACKBONE" = standin ]; then
  BACKBONE=$OUT/standin-resnet18.pth
  if [ ! -f "$BACKBONE" ]; then
    # shellcheck disable=SC2086
    $PY examples/synthetic/pretrain_backbone.py --out "$BACKBONE" $BACKBONE_ARGS > "$OUT/standin-resnet18.json"
  fi
elif [ "$BACKBONE" = signcl ] || [ "$BACKBONE" = signcl_pseudo_gloss ]; then
  # from scratch: a random ResNet-18 trained on the benchmark's own training videos with SignCL's loss alone
  SIGNCL=$OUT/signcl-resnet18.pth
  if [ ! -f "$SIGNCL" ]; then
    # shellcheck disable=SC2086
    $PY examples/pretrain_backbone_signcl.py "$OUT/data" --out "$SIGNCL" $BACKBONE_ARGS > "$OUT/signcl-resnet18.json"
  fi
  BACKBONE=$SIGNCL
fi
# pseudo-gloss rounds: pseudo_gloss_rounds DATA INIT NAME ROUNDS runs each ';'-separated round of
# pretrain_backbone_pseudo_gloss.py on DATA from the previous round's file (the first from INIT), written to
# OUT_DIR/NAME-N-resnet18.pth (a file already there is reused); LAST is the last file
pseudo_gloss_rounds() {
  local prev=$2 next i
  local -a rounds
  IFS=';' read -ra rounds <<< "$4"
  for i in "${!rounds[@]}"; do
    next=$OUT/$3-$((i + 1))-resnet18.pth
    if [ ! -f "$next" ]; then
      # shellcheck disable=SC2086
      $PY examples/pretrain_backbone_pseudo_gloss.py "$1" --init "$prev" --out "$next" ${rounds[$i]} \
        ${PSEUDO_GLOSS_ARGS:-} > "${next%.pth}.json"
    fi
    prev=$next
  done
  LAST=$prev
}
if [ "$BACKBONE_REQUESTED" = signcl_pseudo_gloss ]; then
  # then which words each training video's sentence contains (pseudo-glosses), from the SignCL ResNet, in rounds:
  # each round a one-cycle schedule from the previous round's file (OUT_DIR/signcl-pseudo-gloss-N-resnet18.pth)
  pseudo_gloss_rounds "$OUT/data" "$SIGNCL" signcl-pseudo-gloss "$PSEUDO_GLOSS_ROUNDS"
  BACKBONE=$LAST
  # the recognition row's ResNet: further rounds on the sign sequences, from the last sentence-trained file
  pseudo_gloss_rounds "$OUT/gloss_data" "$BACKBONE" signcl-pseudo-gloss-signs "$RECOGNITION_ROUNDS"
  RECOGNITION_BACKBONE=$LAST
fi

# the demo's CPU-budget recipe (examples/synthetic/run_demo.py), no augmentation at 48 px
ARGS=(--data "$OUT/data" --gloss-data "$OUT/gloss_data" --mbart "$MBART_DIR/model.pt" --out-dir "$OUT/$EXPERIMENT"
  --visual-backbone-weights "$BACKBONE"
  --num-workers "$WORKERS" --stage1-arch light_t_tiny --stage1-optimizer adam --stage1-lr 1e-3
  --stage1-warmup-updates 50 --stage1-epochs "$E1" --stage1-batch-size "$B1" --stage2-arch sign_mbart_tiny
  --stage2-arch-args "--encoder-layers 2 --decoder-layers 2 --encoder-embed-dim 128 --encoder-ffn-embed-dim 256 --encoder-attention-heads 4 --decoder-attention-heads 4"
  --stage2-lr 1e-3 --adapter-lr 3e-3 --visual-lr 1e-3 --stage2-epochs "$E2" --stage2-batch-size 16
  --extra-stage1-args=--no-augment --extra-stage2-args=--no-augment --gloss2text-epochs "$G2T_EPOCHS"
  "--contrastive-args=$CONTRASTIVE_ARGS"
  --eval-bleu-args '{"beam": 1, "max_len_b": 40}' --beam 5 --max-len-b 40)
[ "$CPU" = 1 ] && ARGS+=(--cpu)
[ "$QUICK" = 1 ] && ARGS+=(--quick)
[ "$FRAME_FEATURES" = 1 ] && ARGS+=(--stage1-frame-features)
# the recognition row's own ResNet, given only to runs with that row (flallm-experiment refuses it otherwise)
RECOGNITION_ARGS=()
[ "${RECOGNITION_BACKBONE:-$BACKBONE}" != "$BACKBONE" ] && RECOGNITION_ARGS=(--recognition-backbone-weights "$RECOGNITION_BACKBONE")

if [ "$JOBS" -gt 1 ]; then
  # rows that share a stage 1 stay in one process; every (group, seed) is one process
  groups=()
  for r in ${ROWS//,/ }; do
    case $r in stage1_only|factorized|mbart_random) ;; *) groups+=("$r") ;; esac
  done
  shared=$(echo ",$ROWS," | { grep -o -E ',(stage1_only|factorized|mbart_random)' || true; } | tr -d '\n' | sed 's/^,//')
  [ -n "$shared" ] && groups=("$shared" "${groups[@]}")
  mkdir -p "$OUT/$EXPERIMENT/logs"
  pids=()
  for g in "${groups[@]}"; do
    for s in $(seq "$FIRST_SEED" $(( FIRST_SEED + SEEDS - 1 ))); do
      while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
      R=(); [[ ",$g," == *,recognition,* ]] && R=("${RECOGNITION_ARGS[@]}")
      $PY -m flallm_tools.cli.experiment "${ARGS[@]}" "${R[@]}" --rows "$g" --seeds 1 --first-seed "$s" \
        > "$OUT/$EXPERIMENT/logs/${g//,/+}.seed$s.log" 2>&1 &
      pids+=($!)
    done
  done
  fail=0
  for p in "${pids[@]}"; do wait "$p" || fail=1; done
  [ $fail = 0 ] || { echo "a run failed: see $OUT/$EXPERIMENT/logs" >&2; exit 1; }
fi
R=(); [[ ",$ROWS," == *,recognition,* ]] && R=("${RECOGNITION_ARGS[@]}")
$PY -m flallm_tools.cli.experiment "${ARGS[@]}" "${R[@]}" --rows "$ROWS" --seeds "$SEEDS" --first-seed "$FIRST_SEED" | tail -n 30
echo "total $(( $(date +%s) - t0 )) s"
