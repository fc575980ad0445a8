#!/usr/bin/env bash
# The test node's pod sandbox image: tests/controlplane/pause (static Go) alone on an empty
# image, written as a docker archive for containerd (its sandbox_image; no registry to pull from).
#   hack/image/pause.sh PAUSE-BINARY OUT.tar [NAME:TAG]
set -euo pipefail
binary=${1:?usage: $0 PAUSE-BINARY OUT.tar [NAME:TAG]}
out=${2:?usage: $0 PAUSE-BINARY OUT.tar [NAME:TAG]}
image=${3:-localhost/senderops/pause:dev}
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --quiet "$ctr" "$binary" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
buildah commit --quiet "$ctr" "$image" >/dev/null
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
buildah push --quiet "$image" "docker-archive:$out.tmp:$image"
mv -f "$out.tmp" "$out"
