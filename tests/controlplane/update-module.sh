#!/usr/bin/env bash
# Points this module at k8s.io/kubernetes VERSION: requires it, and replaces every staging
# module (which upstream's go.mod maps to ./staging at v0.0.0) with its published v0.x twin.
# Usage: tests/controlplane/update-module.sh v1.36.3
set -euo pipefail
cd "$(dirname "$0")"
version=${1:?usage: $0 v1.X.Y}
staging=v0.${version#v1.}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$gomod" ] || { echo "no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }

go mod edit -require="k8s.io/kubernetes@$version"
# Upstream lines look like: `	k8s.io/api => ./staging/src/k8s.io/api`
for module in $(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$gomod"); do
	go mod edit -replace="$module=$module@$staging"
done
go mod edit -godebug="$(sed -n 's/^godebug //p' "$gomod" | head -n 1)" 2>/dev/null || true
# kubectl as a tool of this module, for machines without a kubectl in skew with this apiserver.
go get -tool "k8s.io/kubernetes/cmd/kubectl@$version"
go mod tidy
echo "k8s.io/kubernetes $version with $(grep -c '=> k8s.io/' go.mod) staging replaces"
