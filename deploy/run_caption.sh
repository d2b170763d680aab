#!/usr/bin/env bash
# Runs `altvoice caption` on Dataflow from this checkout and waits for it; prints the manifest counts.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/run_caption.sh \
#     --input gs://my-bucket/photos --output gs://my-bucket/described [--tts google --audio-format mp3 \
#     --tts-option requests_per_minute=100]
#
# Incremental: images whose outputs are up to date are skipped. Without --model, the bundled
# model/pretrained is copied to gs://$BUCKET/models/$TAG and used. With --tts google and no
# requests_per_minute, one is added that keeps all worker processes under TTS_QUOTA_RPM (env.sh).
# Env: MAX_WORKERS (default 20), MACHINE_TYPE, DISK_SIZE_GB, GPU=1 (with a CUDA=1 image),
# SERVICE_ACCOUNT, IMAGE (see env.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

run_captioner_job caption "$@"
