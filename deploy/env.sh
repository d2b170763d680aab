# Settings and helpers shared by the deploy scripts (sourced, not run). Each setting can be set in
# the environment; PROJECT and BUCKET must be. DRY_RUN=1 prints the commands instead of running them.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

: "${PROJECT:?set PROJECT to the Google Cloud project id}"
: "${BUCKET:?set BUCKET to a bucket name (no gs://) for staging, temp files and templates}"
: "${REGION:=us-central1}"                 # Dataflow, Artifact Registry, Vertex AI and Scheduler region
: "${REPOSITORY:=altvoice}"                # Artifact Registry docker repository (create it once)
: "${CUDA:=0}"                             # 1: the image carries TensorFlow's CUDA libraries (GPU workers)
if [[ -z "${TAG:-}" ]]; then
  TAG="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo latest)"
  [[ "$CUDA" == 1 ]] && TAG="$TAG-cuda"
fi
: "${IMAGE:=$REGION-docker.pkg.dev/$PROJECT/$REPOSITORY/altvoice:$TAG}"
# the describe-video template's launcher: $IMAGE with ALTVOICE_JOB=describe-video (deploy/launcher/)
: "${DESCRIBE_VIDEO_LAUNCHER:=$IMAGE-describe-video}"
: "${TEMPLATES:=gs://$BUCKET/templates}"  # template spec files: $TEMPLATES/<job>.json
: "${MACHINE_TYPE:=n1-standard-4}"         # Dataflow workers (N1: the only series that takes a T4)
: "${DISK_SIZE_GB:=50}"                    # the image is large (TensorFlow): more than the 25 GB default
: "${GPU_TYPE:=nvidia-tesla-t4}"
: "${SERVICE_ACCOUNT:=}"                   # worker service account email; empty: the default one
: "${PYTHON:=$ROOT/.venv/bin/python}"      # submits direct runs: `make setup`'s environment
: "${TTS_QUOTA_RPM:=1000}"                 # Cloud TTS requests a minute for the project: see its Quotas page

die() { echo "$(basename "$0"): $*" >&2; exit 2; }

# Runs a command, or prints it (shell-quoted) with DRY_RUN=1.
run() {
  if [[ "${DRY_RUN:-0}" == 1 ]]; then
    printf '%q ' "$@"
    echo
  else
    "$@"
  fi
}

# Max workers of job $1: MAX_WORKERS, else 10 for preprocess and 20 for the others.
max_workers() {
  if [[ -n "${MAX_WORKERS:-}" ]]; then
    echo "$MAX_WORKERS"
  elif [[ "$1" == preprocess ]]; then
    echo 10
  else
    echo 20
  fi
}

# FLAGS: the Dataflow worker settings of job $1.
dataflow_flags() {
  FLAGS=(--runner=DataflowRunner "--project=$PROJECT" "--region=$REGION"
    "--temp_location=gs://$BUCKET/tmp" "--staging_location=gs://$BUCKET/staging"
    "--sdk_container_image=$IMAGE" --experiments=use_runner_v2
    "--machine_type=$MACHINE_TYPE" "--max_num_workers=$(max_workers "$1")" "--disk_size_gb=$DISK_SIZE_GB")
  if [[ -n "$SERVICE_ACCOUNT" ]]; then
    FLAGS+=("--service_account_email=$SERVICE_ACCOUNT")
  fi
  if [[ "${GPU:-0}" == 1 ]]; then
    [[ "$CUDA" == 1 ]] || die "GPU=1 needs an image built with CUDA=1 (and CUDA=1 here to pick its tag)"
    # one SDK process per worker: several would each claim the GPU
    FLAGS+=("--dataflow_service_options=worker_accelerator=type:$GPU_TYPE;count:1;install-nvidia-driver"
      --experiments=no_use_multiple_sdk_containers)
  fi
}

# requests_per_minute for each worker process of a Cloud TTS caption job ($1: max workers), so that
# all of them together stay under 90% of the project's quota. The client-side limit is per process,
# and Dataflow runs one SDK process per vCPU (one per worker with GPU=1).
tts_rate() {
  local per_worker processes
  if [[ "${GPU:-0}" == 1 ]]; then
    per_worker=1
  elif [[ "$MACHINE_TYPE" =~ custom-([0-9]+)- ]]; then
    per_worker="${BASH_REMATCH[1]}"
  elif [[ "$MACHINE_TYPE" =~ -([0-9]+)$ ]]; then
    per_worker="${BASH_REMATCH[1]}"
  else
    die "can't tell the vCPUs of $MACHINE_TYPE: pass --tts-option requests_per_minute=N yourself"
  fi
  processes=$(($1 * per_worker))
  ((TTS_QUOTA_RPM * 9 / 10 >= processes)) || die "$processes worker processes can't share $TTS_QUOTA_RPM requests a minute: lower MAX_WORKERS"
  echo $((TTS_QUOTA_RPM * 9 / 10 / processes))
}

# With tts=google among the template parameters PARAMS (NAME=VALUE) and no requests_per_minute, adds
# to their tts_option one that keeps all worker processes of job $1 under the quota.
add_tts_rate() {
  local rate i
  [[ " ${PARAMS[*]} " == *" tts=google "* && "${PARAMS[*]}" != *requests_per_minute=* ]] || return 0
  rate="requests_per_minute=$(tts_rate "$(max_workers "$1")")"
  for i in "${!PARAMS[@]}"; do
    if [[ "${PARAMS[i]}" == tts_option=* ]]; then
      PARAMS[i]+=",$rate"
      return 0
    fi
  done
  PARAMS+=("tts_option=$rate")
}

# Direct runs pickle the pipeline here and unpickle it in the image: the same Python and Beam as
# the image's base (deploy/Dockerfile's FROM).
check_submitter() {
  local base have
  base="$(grep -m1 -oE 'apache/beam_python[0-9.]+_sdk:[0-9.]+' "$ROOT/deploy/Dockerfile")"
  base="${base#apache/beam_python}"
  have="$("$PYTHON" -c 'import sys, apache_beam; print("%d.%d_sdk:%s" % (*sys.version_info[:2], apache_beam.__version__))')" \
    || die "cannot run $PYTHON: run make setup, or set PYTHON"
  [[ "$have" == "$base" ]] || die "$PYTHON has Python/Beam $have, the image $base: submit from the same (make setup)"
}

# Runs job $1 (caption or describe-video: a captioner and a voice) on Dataflow from this checkout with
# the flags that follow, and waits for it. Without --model, the bundled model is copied to
# gs://$BUCKET/models/$TAG and used: the default is a path beside the code, on this machine, not in
# the workers' image. With --tts google and no requests_per_minute, one within the quota is added.
run_captioner_job() {
  local job="$1" google=0 rate=0 model=0 i
  shift
  local args=("$@")
  check_submitter
  dataflow_flags "$job"
  for i in "${!args[@]}"; do
    case "${args[i]}" in
      --tts=google) google=1 ;;
      --tts) if [[ "${args[i + 1]:-}" == google ]]; then google=1; fi ;;
      *requests_per_minute=*) rate=1 ;;
      --model | --model=*) model=1 ;;
    esac
  done
  if [[ "$model" == 0 ]]; then
    [[ -f "$ROOT/model/pretrained/model_card.json" ]] || die "no --model and no model/pretrained/ to upload"
    run gcloud storage rsync --recursive "$ROOT/model/pretrained" "gs://$BUCKET/models/$TAG" --project "$PROJECT"
    args+=("--model=gs://$BUCKET/models/$TAG")
  fi
  if [[ "$google" == 1 && "$rate" == 0 ]]; then
    args+=("--tts-option=requests_per_minute=$(tts_rate "$(max_workers "$job")")")
  fi
  run "$PYTHON" "$ROOT/deploy/launch.py" "$job" "${args[@]}" "${FLAGS[@]}" \
    "--job_name=altvoice-$job-$(date -u +%Y%m%d-%H%M%S)"
}
