#!/usr/bin/env bash
# Puts actionlint at $1, built from its Go module (github.com/rhysd/actionlint, from the Go module
# proxy) as helm is (hack/ensure-helm.sh). `make lint` runs it on .github/workflows/: the
# workflows cannot run on this machine, so their syntax, expressions, action inputs and
# permissions are checked here. A binary that already reports the pinned version is kept.
set -euo pipefail
out=${1:?usage: $0 OUT}
module=github.com/rhysd/actionlint
version=v1.7.12

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# The first line of `actionlint -version` is the version, set below as its release builds set it.
if [ -x "$out" ] && [ "$("$out" -version 2>/dev/null | head -n 1)" = "$version" ]; then
	exit 0
fi

echo "actionlint: building $module $version from the Go module proxy into $out"
started=$(date +%s)
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$gobin go install -trimpath \
	-ldflags "-s -w -X $module.version=$version" "$module/cmd/actionlint@$version"
mv -f "$gobin/actionlint" "$out"
echo "actionlint: $("$out" -version | head -n 1) built in $(($(date +%s) - started))s"
