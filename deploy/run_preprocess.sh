#!/usr/bin/env bash
# Runs `altvoice preprocess` on Dataflow from this checkout and waits for it; then writes summary.json.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/run_preprocess.sh \
#     --captions gs://my-bucket/flickr8k/Flickr8k.token.txt --images gs://my-bucket/flickr8k/Images \
#     --train-split gs://my-bucket/flickr8k/train.txt --dev-split gs://my-bucket/flickr8k/dev.txt \
#     --backbone-weights gs://my-bucket/weights/inception_v3_notop.h5 --output gs://my-bucket/prep
#
# Any preprocess flag or Beam option can be added; env: MAX_WORKERS (default 10), MACHINE_TYPE,
# DISK_SIZE_GB, GPU=1 (with a CUDA=1 image), SERVICE_ACCOUNT, IMAGE (see env.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

check_submitter
dataflow_flags preprocess
run "$PYTHON" "$ROOT/deploy/launch.py" preprocess "$@" "${FLAGS[@]}" \
  "--job_name=altvoice-preprocess-$(date -u +%Y%m%d-%H%M%S)"
