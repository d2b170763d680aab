#!/usr/bin/env bash
# Launches a Flex Template built by build_templates.sh: a test of what the scheduler runs.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/run_template.sh caption \
#     input=gs://my-bucket/photos output=gs://my-bucket/described tts_option=requests_per_minute=100
#
# Parameters are NAME=VALUE, names as in deploy/templates/<job>/metadata.json; with tts=google and
# no requests_per_minute, one that keeps all worker processes under TTS_QUOTA_RPM is added.
# Env: MAX_WORKERS (default 10 for preprocess, else 20), MACHINE_TYPE, DISK_SIZE_GB, GPU=1 (with a
# CUDA=1 image), SERVICE_ACCOUNT, IMAGE (see env.sh).
# A preprocess template job can't write summary.json itself: when it has finished, run
#   python deploy/launch.py summary --output <its output>
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

job="${1:-}"
[[ -n "$job" && -f "$ROOT/deploy/templates/$job/metadata.json" ]] ||
  die "usage: run_template.sh preprocess|caption|describe-video NAME=VALUE ..."
shift
PARAMS=("sdk_container_image=$IMAGE" "disk_size_gb=$DISK_SIZE_GB" "$@")
add_tts_rate "$job"
extra=()
if [[ -n "$SERVICE_ACCOUNT" ]]; then
  extra+=(--service-account-email "$SERVICE_ACCOUNT")
fi
if [[ "${GPU:-0}" == 1 ]]; then
  [[ "$CUDA" == 1 ]] || die "GPU=1 needs an image built with CUDA=1 (and CUDA=1 here to pick its tag)"
  PARAMS+=("dataflow_service_options=worker_accelerator=type:$GPU_TYPE;count:1;install-nvidia-driver")
  extra+=(--additional-experiments no_use_multiple_sdk_containers)
fi
# one --parameters list, '~'-separated (gcloud's ^~^ syntax): values may hold commas
joined="$(printf '~%s' "${PARAMS[@]}")"
run gcloud dataflow flex-template run "altvoice-$job-$(date -u +%Y%m%d-%H%M%S)" --project "$PROJECT" \
  --region "$REGION" --template-file-gcs-location "$TEMPLATES/$job.json" --parameters "^~^${joined#\~}" \
  --worker-machine-type "$MACHINE_TYPE" --max-workers "$(max_workers "$job")" "${extra[@]}"
