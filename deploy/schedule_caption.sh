#!/usr/bin/env bash
# Creates (or updates) a Cloud Scheduler job that launches the caption template every day:
# schedule.sh caption, its parameters from the environment.
#
#   PROJECT=my-project BUCKET=my-bucket INPUT=gs://my-bucket/photos OUTPUT=gs://my-bucket/described \
#     SCHEDULER_ACCOUNT=launcher@my-project.iam.gserviceaccount.com deploy/schedule_caption.sh
#
# The caption job is incremental, so each run only does images that are new (or whose outputs are
# stale). Env: TTS (espeak|google|none; default espeak), AUDIO_FORMAT (default mp3), TTS_OPTIONS
# (comma-separated KEY=VALUE; with TTS=google a requests_per_minute that keeps all worker processes
# under TTS_QUOTA_RPM is added), and schedule.sh's: SCHEDULER_ACCOUNT, SCHEDULE (cron, default 03:00
# daily), TIME_ZONE, JOB_NAME, MAX_WORKERS, MACHINE_TYPE, SERVICE_ACCOUNT.
set -euo pipefail

: "${INPUT:?set INPUT to the gs:// folder or prefix of the images}"
: "${OUTPUT:?set OUTPUT to the gs:// folder for captions and audio}"
exec "$(dirname "${BASH_SOURCE[0]}")/schedule.sh" caption "input=$INPUT" "output=$OUTPUT" \
  "tts=${TTS:-espeak}" "audio_format=${AUDIO_FORMAT:-mp3}" ${TTS_OPTIONS:+"tts_option=$TTS_OPTIONS"}
