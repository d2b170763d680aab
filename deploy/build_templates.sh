#!/usr/bin/env bash
# Builds the Flex Templates $TEMPLATES/preprocess.json and $TEMPLATES/caption.json on $IMAGE.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/build_templates.sh
#
# Both run deploy/launch.py in the image; parameters: deploy/templates/<job>/metadata.json.
# Defaults baked into the templates (a launch can override them): runner v2, MACHINE_TYPE, max workers.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

for job in preprocess caption; do
  max=20
  [[ "$job" == preprocess ]] && max=10
  run gcloud dataflow flex-template build "$TEMPLATES/$job.json" --project "$PROJECT" \
    --image "$IMAGE" --sdk-language PYTHON --metadata-file "$ROOT/deploy/templates/$job/metadata.json" \
    --additional-experiments use_runner_v2 --worker-machine-type "$MACHINE_TYPE" \
    --max-workers "${MAX_WORKERS:-$max}" --temp-location "gs://$BUCKET/tmp" \
    --staging-location "gs://$BUCKET/staging"
done
