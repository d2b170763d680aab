# Settings shared by the deploy scripts (sourced, not run). Each can be set in the environment;
# PROJECT and BUCKET must be. DRY_RUN=1 prints the commands instead of running them.
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

# The Dataflow worker settings both jobs use; $1 is the job's default max workers.
dataflow_flags() {
  FLAGS=(--runner=DataflowRunner "--project=$PROJECT" "--region=$REGION"
    "--temp_location=gs://$BUCKET/tmp" "--staging_location=gs://$BUCKET/staging"
    "--sdk_container_image=$IMAGE" --experiments=use_runner_v2
    "--machine_type=$MACHINE_TYPE" "--max_num_workers=${MAX_WORKERS:-$1}" "--disk_size_gb=$DISK_SIZE_GB")
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
