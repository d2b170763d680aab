#!/usr/bin/env bash
# Runs `altvoice train` as a Vertex AI custom job in the altvoice image.
#
#   PROJECT=my-project BUCKET=my-bucket DATA=gs://my-bucket/prep TRAIN_OUTPUT=gs://my-bucket/train \
#     deploy/train_vertex.sh --epochs 30 --batch-size 64
#
# Extra arguments go to `altvoice train` (no commas in them). The export lands in
# $TRAIN_OUTPUT/export: pass it as the caption job's --model. Env: TRAIN_MACHINE_TYPE
# (default n1-standard-8), TRAIN_GPU=1 (one T4; needs a CUDA=1 image), SERVICE_ACCOUNT.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

: "${DATA:?set DATA to the gs:// output of preprocess}"
: "${TRAIN_OUTPUT:?set TRAIN_OUTPUT to a gs:// folder for checkpoints, logs and the export}"
: "${TRAIN_MACHINE_TYPE:=n1-standard-8}"

pool="machine-type=$TRAIN_MACHINE_TYPE,replica-count=1,container-image-uri=$IMAGE"
if [[ "${TRAIN_GPU:-0}" == 1 ]]; then
  [[ "$CUDA" == 1 ]] || die "TRAIN_GPU=1 needs an image built with CUDA=1 (and CUDA=1 here to pick its tag)"
  pool+=",accelerator-type=NVIDIA_TESLA_T4,accelerator-count=1"
fi
args=(train "--data=$DATA" "--output=$TRAIN_OUTPUT" "$@")
for arg in "${args[@]}"; do
  [[ "$arg" != *,* ]] || die "no commas in train arguments ($arg): gcloud splits --args on them"
done
extra=()
if [[ -n "$SERVICE_ACCOUNT" ]]; then
  extra+=(--service-account "$SERVICE_ACCOUNT")
fi
run gcloud ai custom-jobs create --project "$PROJECT" --region "$REGION" \
  --display-name "altvoice-train-$(date -u +%Y%m%d-%H%M%S)" --worker-pool-spec "$pool" \
  --command altvoice --args "$(IFS=,; echo "${args[*]}")" "${extra[@]}"
