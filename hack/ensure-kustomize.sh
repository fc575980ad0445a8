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

# shellcheck source=hack/lib/go-tool.sh
source "$(dirname "$0")/lib/go-tool.sh"
# `kustomize version` prints the main module's version from the binary's build information.
reported() { "$1" version; }
ensure_go_tool kustomize "$out" "$module" "$version" reported
