#!/usr/bin/env bash
# Puts the CNCF distribution registry (the reference OCI registry, github.com/distribution/
# distribution/v3, from the Go module proxy) at $1, as helm is built (hack/ensure-helm.sh). The
# image-push test (tests/it/image_push.rs) starts one on 127.0.0.1 and runs `make image-push`
# into it. A binary that already reports the pinned version is kept: a warm run does nothing.
set -euo pipefail
out=${1:?usage: $0 OUT}
# Pinned; its go.mod (go 1.26.0) has no replace directives.
module=github.com/distribution/distribution/v3
version=v3.1.2

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# `registry --version` prints "registry MODULE VERSION" (the version set below, as its Makefile does).
if [ -x "$out" ] && [ "$("$out" --version 2>/dev/null | awk '{print $3}')" = "$version" ]; then
	exit 0
fi

echo "registry: building $module $version from the Go module proxy into $out"
started=$(date +%s)
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$gobin go install -trimpath \
	-ldflags "-s -w -X $module/version.version=$version -X $module/version.mainpkg=$module" \
	"$module/cmd/registry@$version"
mv -f "$gobin/registry" "$out"
echo "registry: $("$out" --version) built in $(($(date +%s) - started))s"
