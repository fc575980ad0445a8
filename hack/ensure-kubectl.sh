#!/usr/bin/env bash
# Puts a kubectl at $1 that is within the supported version skew (±1 minor) of the test
# apiserver: the machine's kubectl when it fits (a symlink), otherwise one built from the same
# k8s.io/kubernetes module as the control plane.
set -euo pipefail
out=${1:?usage: $0 OUT}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
version=$(sed -n 's/^[[:space:]]*k8s\.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$root/tests/controlplane/go.mod")
want_minor=$(echo "$version" | cut -d. -f2)

minor_of() { "$1" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"v1\.\([0-9]*\)\..*/\1/p' | head -n 1; }

if [ -x "$out" ] && [ "$(minor_of "$out")" = "$want_minor" ]; then
	exit 0
fi
if machine=$(command -v kubectl); then
	have=$(minor_of "$machine")
	if [ -n "$have" ] && [ $((have - want_minor)) -le 1 ] && [ $((want_minor - have)) -le 1 ]; then
		ln -sf "$machine" "$out"
		echo "kubectl: using $machine (1.$have) for apiserver $version"
		exit 0
	fi
	echo "kubectl: $machine is 1.$have, outside ±1 minor of apiserver $version; building kubectl $version"
fi
cd "$root/tests/controlplane"
rm -f "$out"
GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
	-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$want_minor" \
	-o "$out" k8s.io/kubernetes/cmd/kubectl
