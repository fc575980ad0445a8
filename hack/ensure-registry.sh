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

# shellcheck source=hack/lib/go-tool.sh
source "$(dirname "$0")/lib/go-tool.sh"
# `registry --version` prints "registry MODULE VERSION" (the version set below, as its Makefile does).
reported() { "$1" --version | awk '{print $3}'; }
ensure_go_tool registry "$out" "$module/cmd/registry" "$version" reported \
	"-X $module/version.version=$version -X $module/version.mainpkg=$module"
