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

check_submitter
dataflow_flags 20
args=("$@")
google=0 rate=0 model=0
for i in "${!args[@]}"; do
  case "${args[i]}" in
    --tts=google) google=1 ;;
    --tts) if [[ "${args[i + 1]:-}" == google ]]; then google=1; fi ;;
    *requests_per_minute=*) rate=1 ;;
    --model | --model=*) model=1 ;;
  esac
done
# The default model is a path beside the code: on this machine, not in the workers' image. The
# bundled model goes to the bucket instead, where this process and the workers both read it.
if [[ "$model" == 0 ]]; then
  [[ -f "$ROOT/model/pretrained/model_card.json" ]] || die "no --model and no model/pretrained/ to upload"
  run gcloud storage rsync --recursive "$ROOT/model/pretrained" "gs://$BUCKET/models/$TAG" --project "$PROJECT"
  args+=("--model=gs://$BUCKET/models/$TAG")
fi
# Cloud TTS without a rate limit: one that keeps all worker processes under the quota
if [[ "$google" == 1 && "$rate" == 0 ]]; then
  args+=("--tts-option=requests_per_minute=$(tts_rate "${MAX_WORKERS:-20}")")
fi
run "$PYTHON" "$ROOT/deploy/launch.py" caption "${args[@]}" "${FLAGS[@]}" \
  "--job_name=altvoice-caption-$(date -u +%Y%m%d-%H%M%S)"
