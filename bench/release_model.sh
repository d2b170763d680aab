#!/usr/bin/env bash
# Builds altvoice's bundled model (model/pretrained/) from ../shared with altvoice's own commands:
# preprocess -> train one decoder per seed (early stopping on dev) -> ensemble -> model card and
# object classifier -> word detectors -> confidence calibration -> evaluate on dev -> copy.
# DECODER=merge (the default: the bundled model) trains five merge decoders on pooled features and joins
# them with `altvoice ensemble`; DECODER=transformer trains one transformer decoder on grid features,
# then self-critical training on CIDEr-D (issue 16; left in $WORK/ensemble: model/pretrained is replaced only
# by the merge recipe, or with BUNDLE=yes). Members already trained in $WORK are kept (delete $WORK to start over).
#
#   bash bench/release_model.sh            # WORK=/tmp/altvoice-release SHARED=../shared by default
#
# Flickr8k (Hodosh, Young, Hockenmaier 2013; research use), MobileNetV2@160 ImageNet weights and
# GloVe 6B 200-d, all from ../shared. Measured here on 2 cores: see README "The bundled model".
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
WORK=${WORK:-/tmp/altvoice-release}
ALTVOICE=${ALTVOICE:-.venv/bin/altvoice}
FLICKR=$SHARED/data/flickr8k
DECODER=${DECODER:-merge}  # the bundled model; DECODER=transformer builds the transformer recipe
if [ "$DECODER" = transformer ]; then
  TRAIN_FLAGS=${TRAIN_FLAGS:---decoder transformer --units 256 --layers 3 --heads 8 --epochs 10 --patience 2 --flip-average --scst --scst-epochs 4 --scst-learning-rate 1e-5 --specificity 0}
  SEEDS=${SEEDS:-1}
  FEATURES=grid
else
  TRAIN_FLAGS=${TRAIN_FLAGS:---train-embeddings --image-dropout 0.3 --decay 0.3 --patience 5 --flip-average}
  SEEDS=${SEEDS:-1 2 3 4 5}
  FEATURES=pooled
fi
IMAGE_SIZE=${IMAGE_SIZE:-160}  # the backbone weights' size; IMAGE_SIZE=224 runs them at 224 (a 7x7 grid, 5x5 at 160)
BEAM_WIDTH=${BEAM_WIDTH:-3}
EVALUATE=("$ALTVOICE" evaluate --captions "$FLICKR/Flickr8k.token.txt" --images "$FLICKR/Images"
          --split-file "$FLICKR/Flickr_8k.devImages.txt" --beam-width "$BEAM_WIDTH")

mkdir -p "$WORK"
if [ ! -f "$WORK/prep/summary.json" ]; then
  "$ALTVOICE" preprocess --captions "$FLICKR/Flickr8k.token.txt" --images "$FLICKR/Images" \
    --train-split "$FLICKR/Flickr_8k.trainImages.txt" --dev-split "$FLICKR/Flickr_8k.devImages.txt" \
    --output "$WORK/prep" --backbone mobilenet_v2 --image-size "$IMAGE_SIZE" \
    --backbone-weights "$SHARED/models/mobilenet_v2_1.00_160_imagenet_notop.weights.h5" \
    --min-word-count 5 --glove "$SHARED/data/glove/glove.6B.200d.flickr8k.txt" --features "$FEATURES"
else  # a kept preprocess output must be the one this recipe asks for
  .venv/bin/python - "$WORK/prep/summary.json" "$FEATURES" "$IMAGE_SIZE" <<'EOF'
import json, sys
summary = json.load(open(sys.argv[1]))
found, wanted = (summary.get("features"), summary["image_size"]), (sys.argv[2], int(sys.argv[3]))
if found != wanted:
    sys.exit(f"{sys.argv[1]}: {found[0]} features at {found[1]} px, this recipe needs {wanted[0]} at {wanted[1]} px: "
             "use another WORK")
EOF
fi
members=()
for seed in $SEEDS; do
  member=$WORK/train/seed-$seed
  if [ ! -f "$member/export/model_card.json" ]; then
    rm -rf "$member"
    # shellcheck disable=SC2086  # TRAIN_FLAGS is a list of flags
    "$ALTVOICE" train --data "$WORK/prep" --output "$member" --beam-width "$BEAM_WIDTH" $TRAIN_FLAGS --seed "$seed"
    "${EVALUATE[@]}" --model "$member/export" --output "$member/dev_metrics.json" --update-model-card
  fi
  members+=("$member/export")
done
rm -rf "$WORK/ensemble"
if [ "${#members[@]}" -gt 1 ]; then
  "$ALTVOICE" ensemble --models "${members[@]}" --output "$WORK/ensemble" --float16
else
  cp -r "${members[0]}" "$WORK/ensemble"
fi
# card text, the object classifier for grounded captions, no machine paths; the word detectors; then
# confidence fitted on held-out captions, and the dev metrics without and with grounding
.venv/bin/python bench/release_card.py "$WORK/ensemble" "$TRAIN_FLAGS" "$SEEDS" "$SHARED" "$WORK"
.venv/bin/python bench/train_word_detectors.py --model "$WORK/ensemble"
.venv/bin/python bench/calibrate_confidence.py --model "$WORK/ensemble" --write
"${EVALUATE[@]}" --model "$WORK/ensemble" --output "$WORK/dev_metrics_ungrounded.json" --grounding off
"${EVALUATE[@]}" --model "$WORK/ensemble" --output "$WORK/dev_metrics.json" --update-model-card
BUNDLE=${BUNDLE:-$([ "$DECODER" = merge ] && echo yes || echo no)}  # only the merge recipe replaces the bundle
if [ "$BUNDLE" = yes ]; then
  rm -rf model/pretrained
  cp -r "$WORK/ensemble" model/pretrained
  du -sh model/pretrained
else
  echo "model in $WORK/ensemble (model/pretrained unchanged; BUNDLE=yes replaces it)"
fi
cat "$WORK/dev_metrics.json"
