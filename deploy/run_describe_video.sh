#!/usr/bin/env bash
# Runs `altvoice describe-video` on Dataflow from this checkout and waits for it.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/run_describe_video.sh \
#     --input gs://my-bucket/videos --output gs://my-bucket/described-videos [--tts google \
#     --range-seconds 60]
#
# As run_caption.sh: incremental, the bundled model uploaded when there is no --model, a Cloud TTS
# rate within TTS_QUOTA_RPM added. Env: MAX_WORKERS (default 20), MACHINE_TYPE, DISK_SIZE_GB,
# GPU=1 (with a CUDA=1 image), SERVICE_ACCOUNT, IMAGE (see env.sh).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

run_captioner_job describe-video "$@"
