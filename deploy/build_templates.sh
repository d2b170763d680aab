#!/usr/bin/env bash
# Builds the Flex Templates $TEMPLATES/<job>.json of preprocess, caption and describe-video.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/build_templates.sh
#
# Each runs deploy/launch.py; parameters: deploy/templates/<job>/metadata.json. preprocess and
# caption launch in $IMAGE, describe-video in $DESCRIBE_VIDEO_LAUNCHER (build_image.sh makes both).
# Defaults baked into the templates (a launch can override them): runner v2, MACHINE_TYPE, max workers.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

for job in preprocess caption describe-video; do
  image="$IMAGE"
  [[ "$job" == describe-video ]] && image="$DESCRIBE_VIDEO_LAUNCHER"
  run gcloud dataflow flex-template build "$TEMPLATES/$job.json" --project "$PROJECT" \
    --image "$image" --sdk-language PYTHON --metadata-file "$ROOT/deploy/templates/$job/metadata.json" \
    --additional-experiments use_runner_v2 --worker-machine-type "$MACHINE_TYPE" \
    --max-workers "$(max_workers "$job")" --temp-location "gs://$BUCKET/tmp" \
    --staging-location "gs://$BUCKET/staging"
done
