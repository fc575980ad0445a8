#!/usr/bin/env bash
# Puts the kustomize CLI at $1, built from its Go module (sigs.k8s.io/kustomize/kustomize/v5, from
# the Go module proxy) as helm is (hack/ensure-helm.sh). The README's install writes its overlay
# with it (`kustomize create`, `kustomize edit set image`), and the cluster tests run those very
# commands (tests/it/cluster/fixture.rs). A binary that already reports the pinned version is
# kept: a warm run does nothing.
set -euo pipefail
out=${1:?usage: $0 OUT}
# Pinned: v5.8.2 is the newest release Go 1.26 builds (v5.8.3's go.mod asks for Go 1.27); its
# go.mod has no replace directives, so `go install module@version` builds it as released.
module=sigs.k8s.io/kustomize/kustomize/v5
version=v5.8.2

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

# `kustomize version` prints the main module's version from the binary's build information.
if [ -x "$out" ] && [ "$("$out" version 2>/dev/null)" = "$version" ]; then
	exit 0
fi

echo "kustomize: building $module $version from the Go module proxy into $out"
started=$(date +%s)
gobin=$(mktemp -d)
trap 'rm -rf "$gobin"' EXIT
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$gobin go install -trimpath -ldflags "-s -w" \
	"$module@$version"
mv -f "$gobin/kustomize" "$out"
echo "kustomize: $("$out" version) built in $(($(date +%s) - started))s"
