#!/usr/bin/env bash
# Creates (or updates) a Cloud Scheduler job that launches a caption or describe-video template daily.
#
#   PROJECT=my-project BUCKET=my-bucket SCHEDULER_ACCOUNT=launcher@my-project.iam.gserviceaccount.com \
#     deploy/schedule.sh describe-video input=gs://my-bucket/videos output=gs://my-bucket/described-videos
#
# Parameters are NAME=VALUE, as for run_template.sh; with tts=google and no requests_per_minute, one
# that keeps all worker processes under TTS_QUOTA_RPM is added. Both jobs are incremental, so each
# run only does what is new (or whose outputs are stale); one job name for every run: Dataflow
# refuses a launch while the previous run still goes. SCHEDULER_ACCOUNT needs roles/dataflow.developer
# and roles/iam.serviceAccountUser on the worker account. Env: SCHEDULE (cron, default 03:00 daily),
# TIME_ZONE, JOB_NAME (default altvoice-<job>-daily), MAX_WORKERS, MACHINE_TYPE, SERVICE_ACCOUNT.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

job="${1:-}"
[[ "$job" == caption || "$job" == describe-video ]] ||
  die "usage: schedule.sh caption|describe-video NAME=VALUE ..."
shift
: "${SCHEDULER_ACCOUNT:?set SCHEDULER_ACCOUNT to the service account the scheduler calls Dataflow as}"
: "${SCHEDULE:=0 3 * * *}"
: "${TIME_ZONE:=Etc/UTC}"
: "${JOB_NAME:=altvoice-$job-daily}"
PARAMS=("$@")
add_tts_rate "$job"

body="$(mktemp)"
trap 'rm -f "$body"' EXIT
# the flexTemplates.launch request, written by Python for correct JSON; the parameters checked
# against the template's metadata (a wrong one would only fail at 03:00)
METADATA="$ROOT/deploy/templates/$job/metadata.json" JOB_NAME="$JOB_NAME" SPEC="$TEMPLATES/$job.json" \
  IMAGE="$IMAGE" BUCKET="$BUCKET" MACHINE_TYPE="$MACHINE_TYPE" MAX_WORKERS="$(max_workers "$job")" \
  DISK_SIZE_GB="$DISK_SIZE_GB" SERVICE_ACCOUNT="$SERVICE_ACCOUNT" python3 - "${PARAMS[@]}" >"$body" <<'PY'
import json
import os
import sys

env = os.environ
declared = json.load(open(env["METADATA"]))["parameters"]
parameters = dict(arg.partition("=")[::2] for arg in sys.argv[1:])
problems = [f"{name}: not a parameter of the template" for name in parameters
            if name not in {p["name"] for p in declared}]
problems += [f"{p['name']}: required" for p in declared
             if not p.get("isOptional") and not parameters.get(p["name"])]
if problems:
    sys.exit("schedule.sh: " + "; ".join(problems))
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
