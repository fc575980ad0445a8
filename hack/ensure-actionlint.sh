#!/usr/bin/env bash
# Puts actionlint at $1, built from its Go module (github.com/rhysd/actionlint, from the Go module
# proxy) as helm is (hack/ensure-helm.sh). `make lint` runs it on .github/workflows/: the
# workflows cannot run on this machine, so their syntax, expressions, action inputs and
# permissions are checked here. A binary that already reports the pinned version is kept.
set -euo pipefail
out=${1:?usage: $0 OUT}
module=github.com/rhysd/actionlint
version=v1.7.12

# shellcheck source=hack/lib/go-tool.sh
source "$(dirname "$0")/lib/go-tool.sh"
# The first line of `actionlint -version` is the version, set as its release builds set it.
reported() { "$1" -version | head -n 1; }
ensure_go_tool actionlint "$out" "$module/cmd/actionlint" "$version" reported "-X $module.version=$version"
