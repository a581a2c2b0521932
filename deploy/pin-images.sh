#!/usr/bin/env bash
# Pin the third-party images of docker-compose.yml and deploy/docker/Dockerfile by digest.
#
#   deploy/pin-images.sh          pin every image given by tag only; check the pinned ones
#   deploy/pin-images.sh --check  change nothing; exit 1 if an image is unpinned or its digest
#                                 is not what the registry serves for its tag today
#
# The digests committed were copied from docker-library/repo-info, not resolved here (the
# development machines have no registry access), and apache/kafka and the OpenTelemetry
# collector are still pinned by tag only: run this with registry access before deploying.
# Needs `docker buildx` (nothing is pulled: only the manifests are read).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[[ "${1:-}" == "--check" ]] && check=1
files=(docker-compose.yml deploy/docker/Dockerfile)
status=0

refs() {
  grep -hoE '^\s*image:\s*\S+|^FROM\s+\S+' "${files[@]}" | awk '{print $2}' | grep -v '^spm-monitor' | sort -u
}

for ref in $(refs); do
  tagged="${ref%@*}"
  actual="$(docker buildx imagetools inspect "$tagged" --format '{{.Manifest.Digest}}')"
  if [[ "$ref" == *@sha256:* ]]; then
    if [[ "${ref#*@}" == "$actual" ]]; then
      echo "ok        $ref"
    else
      echo "MISMATCH  $ref: the registry serves $actual for $tagged" >&2
      status=1
    fi
  elif (( check )); then
    echo "UNPINNED  $ref (registry: $tagged@$actual)" >&2
    status=1
  else
    sed -i "s|$tagged\$|$tagged@$actual|; s|$tagged AS |$tagged@$actual AS |" "${files[@]}"
    echo "pinned    $tagged@$actual"
  fi
done
exit "$status"
