#!/usr/bin/env bash
# Creates (or updates) a Cloud Scheduler job that launches the caption template every day.
#
#   PROJECT=my-project BUCKET=my-bucket INPUT=gs://my-bucket/photos OUTPUT=gs://my-bucket/described \
#     SCHEDULER_ACCOUNT=launcher@my-project.iam.gserviceaccount.com deploy/schedule_caption.sh
#
# The caption job is incremental, so each run only does images that are new (or whose outputs are
# stale); one job name for every run: Dataflow refuses a launch while the previous run still goes.
# SCHEDULER_ACCOUNT needs roles/dataflow.developer and roles/iam.serviceAccountUser on the worker
# account. Env: SCHEDULE (cron, default 03:00 daily), TIME_ZONE, TTS (espeak|google|none),
# AUDIO_FORMAT, TTS_OPTIONS (comma-separated KEY=VALUE; with TTS=google a requests_per_minute that
# keeps all worker processes under TTS_QUOTA_RPM is added), MAX_WORKERS, MACHINE_TYPE, SERVICE_ACCOUNT.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

: "${INPUT:?set INPUT to the gs:// folder or prefix of the images}"
: "${OUTPUT:?set OUTPUT to the gs:// folder for captions and audio}"
: "${SCHEDULER_ACCOUNT:?set SCHEDULER_ACCOUNT to the service account the scheduler calls Dataflow as}"
: "${SCHEDULE:=0 3 * * *}"
: "${TIME_ZONE:=Etc/UTC}"
: "${TTS:=espeak}"
: "${AUDIO_FORMAT:=mp3}"
: "${TTS_OPTIONS:=}"
: "${JOB_NAME:=altvoice-caption-daily}"
if [[ "$TTS" == google && "$TTS_OPTIONS" != *requests_per_minute=* ]]; then
  rate="requests_per_minute=$(tts_rate "${MAX_WORKERS:-20}")"
  TTS_OPTIONS="${TTS_OPTIONS:+$TTS_OPTIONS,}$rate"
fi

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
# the flexTemplates.launch request, written by Python for correct JSON
INPUT="$INPUT" OUTPUT="$OUTPUT" TTS="$TTS" AUDIO_FORMAT="$AUDIO_FORMAT" TTS_OPTIONS="$TTS_OPTIONS" \
  JOB_NAME="$JOB_NAME" SPEC="$TEMPLATES/caption.json" IMAGE="$IMAGE" BUCKET="$BUCKET" \
  MACHINE_TYPE="$MACHINE_TYPE" MAX_WORKERS="${MAX_WORKERS:-20}" DISK_SIZE_GB="$DISK_SIZE_GB" \
  SERVICE_ACCOUNT="$SERVICE_ACCOUNT" python3 - >"$body" <<'PY'
import json
import os

env = os.environ
parameters = {"input": env["INPUT"], "output": env["OUTPUT"], "tts": env["TTS"], "audio_format": env["AUDIO_FORMAT"]}
if env["TTS_OPTIONS"]:
    parameters["tts_option"] = env["TTS_OPTIONS"]
environment = {"sdkContainerImage": env["IMAGE"], "additionalExperiments": ["use_runner_v2"],
               "machineType": env["MACHINE_TYPE"], "maxWorkers": int(env["MAX_WORKERS"]),
               "diskSizeGb": int(env["DISK_SIZE_GB"]), "tempLocation": f"gs://{env['BUCKET']}/tmp",
               "stagingLocation": f"gs://{env['BUCKET']}/staging"}
if env["SERVICE_ACCOUNT"]:
    environment["serviceAccountEmail"] = env["SERVICE_ACCOUNT"]
launch = {"jobName": env["JOB_NAME"], "containerSpecGcsPath": env["SPEC"], "parameters": parameters,
          "environment": environment}
print(json.dumps({"launchParameter": launch}, indent=2))
PY

verb=create
if [[ "${DRY_RUN:-0}" != 1 ]] && gcloud scheduler jobs describe "$JOB_NAME" --project "$PROJECT" \
  --location "$REGION" >/dev/null 2>&1; then
  verb=update
fi
[[ "${DRY_RUN:-0}" == 1 ]] && cat "$body"
run gcloud scheduler jobs "$verb" http "$JOB_NAME" --project "$PROJECT" --location "$REGION" \
  --schedule "$SCHEDULE" --time-zone "$TIME_ZONE" --http-method POST \
  --uri "https://dataflow.googleapis.com/v1b3/projects/$PROJECT/locations/$REGION/flexTemplates:launch" \
  --oauth-service-account-email "$SCHEDULER_ACCOUNT" \
  --oauth-token-scope "https://www.googleapis.com/auth/cloud-platform" \
  --headers "Content-Type=application/json" --message-body-from-file "$body"
