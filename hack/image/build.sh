#!/usr/bin/env bash
# Builds the operator image from the repository's Dockerfile with buildah (no daemon), on the
# local stand-ins for its base images (hack/image/bases.sh) passed as the Dockerfile's build
# arguments, and writes it as a docker archive that containerd imports:
#
#   hack/image/build.sh [OUT.tar]       (default target/image/senderops.tar)
#   IMAGE=NAME:TAG                      the image's name (default localhost/senderops:dev)
#
# cargo's registry and target/ live in the Dockerfile's cache mounts, which buildah keeps
# between builds on this machine: a rebuild after a source change compiles only what changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/target/image/senderops.tar}
image=${IMAGE:-localhost/senderops:dev}
mkdir -p "$(dirname "$out")"

bases=$("$root/hack/image/bases.sh")
builder=$(sed -n 's/^builder=//p' <<<"$bases")
runtime=$(sed -n 's/^runtime=//p' <<<"$bases")

started=$(date +%s)
echo "image: building $image from the Dockerfile (BUILDER_IMAGE=$builder RUNTIME_IMAGE=$runtime)" >&2
# --network host: the RUN step (cargo, fetching crates) uses this machine's network as it is.
# buildah's default gives it a bridge of its own through netavark, which turns on IP forwarding
# for the whole host and leaves NAT chains in iptables after the build (seen on a new machine).
buildah bud --quiet --pull=never --layers=false --network host \
	--build-arg "BUILDER_IMAGE=$builder" --build-arg "RUNTIME_IMAGE=$runtime" \
	-f "$root/Dockerfile" -t "$image" "$root" >&2
rm -f "$out.tmp"
buildah push --quiet "$image" "docker-archive:$out.tmp:$image" >&2
mv -f "$out.tmp" "$out"
size=$(buildah images --format '{{.Size}}' "$image" | head -n 1)
echo "image: $image ($size) in $(($(date +%s) - started))s, archive $out" >&2
