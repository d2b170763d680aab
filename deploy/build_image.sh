#!/usr/bin/env bash
# Builds deploy/Dockerfile from the repository root and pushes it as $IMAGE (see env.sh), with the
# describe-video template's launcher on it (deploy/launcher/) as $DESCRIBE_VIDEO_LAUNCHER.
#
#   PROJECT=my-project BUCKET=my-bucket deploy/build_image.sh      # on Cloud Build
#   LOCAL_DOCKER=1 PROJECT=... BUCKET=... deploy/build_image.sh     # docker build + push on this machine
#
# CUDA=1 adds TensorFlow's CUDA libraries (for GPU=1 runs; tag suffix -cuda). LAUNCHER_IMAGE pins
# the Flex launcher base (a dated tag or digest). The bundled model must be in model/pretrained/.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

: "${LAUNCHER_IMAGE:=gcr.io/dataflow-templates-base/python311-template-launcher-base:latest}"
[[ -f "$ROOT/model/pretrained/model_card.json" ]] || die "no model in model/pretrained/: the image bundles it"

if [[ "${LOCAL_DOCKER:-0}" == 1 ]]; then
  run docker build -f "$ROOT/deploy/Dockerfile" --build-arg "LAUNCHER_IMAGE=$LAUNCHER_IMAGE" \
    --build-arg "CUDA=$CUDA" -t "$IMAGE" "$ROOT"
  run docker build --build-arg "IMAGE=$IMAGE" --build-arg JOB=describe-video -t "$DESCRIBE_VIDEO_LAUNCHER" \
    "$ROOT/deploy/launcher"
  run docker push "$IMAGE"
  run docker push "$DESCRIBE_VIDEO_LAUNCHER"
else
  # uploads the checkout less what .gitignore (or a .gcloudignore) leaves out
  images="_IMAGE=$IMAGE,_DESCRIBE_VIDEO_LAUNCHER=$DESCRIBE_VIDEO_LAUNCHER"
  run gcloud builds submit "$ROOT" --project "$PROJECT" --region "$REGION" \
    --config "$ROOT/deploy/cloudbuild.yaml" \
    --substitutions "$images,_LAUNCHER_IMAGE=$LAUNCHER_IMAGE,_CUDA=$CUDA"
fi
echo "images: $IMAGE $DESCRIBE_VIDEO_LAUNCHER"
