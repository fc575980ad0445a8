#!/usr/bin/env bash
# Puts helm at $1, built from its Go module (helm.sh/helm/v3, from the Go module proxy) as the
# control plane and kubectl are, so `make test` needs no helm on the machine. A binary that
# already reports the pinned version is kept: a warm run does nothing.
set -euo pipefail
out=${1:?usage: $0 OUT}
# Pinned: helm v3 is the CLI users run (`helm install`, `helm template`); its go.mod has no
# replace directives, so `go install module@version` builds it as released.
module=helm.sh/helm/v3
version=v3.22.0
# Helm's Makefile derives the Kubernetes version `helm template` assumes (.Capabilities) from the
# client-go it is built with (v0.37 for v3.22.0); without these it would claim 1.20.
kube_major=1
kube_minor=37

# shellcheck source=hack/lib/go-tool.sh
source "$(dirname "$0")/lib/go-tool.sh"
reported() { "$1" version --template '{{.Version}}'; }
ensure_go_tool helm "$out" "$module/cmd/helm" "$version" reported \
	"-X $module/internal/version.version=$version -X $module/internal/version.gitTreeState=clean \
	-X $module/pkg/chartutil.k8sVersionMajor=$kube_major -X $module/pkg/chartutil.k8sVersionMinor=$kube_minor \
	-X $module/pkg/lint/rules.k8sVersionMajor=$kube_major -X $module/pkg/lint/rules.k8sVersionMinor=$kube_minor"
