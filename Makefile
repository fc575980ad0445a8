# SenderOps developer entry points. `make test` is what CI (.ci/run) runs.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

K8S_VERSION := $(shell sed -n 's/^[[:space:]]*k8s\.io\/kubernetes \(v[0-9.]*\)$$/\1/p' tests/controlplane/go.mod)
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
TESTPLANE_DIR := target/testplane
GO_ENV := GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
GO_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(K8S_MINOR)
PRISM := tests/prism/node_modules/.bin/prism
HELM := target/tools/helm
# Copies of crds/ where kustomize and Helm can load them (neither reads files outside its root).
CRD_COPIES := deploy/base/crd/whatsappsender.yaml deploy/helm/senderops/crds/whatsappsender.yaml

# The test node (hack/node/run.sh): kubelet, scheduler, controller-manager and kube-proxy from the
# control plane's module, the pause image, and the operator image built from the Dockerfile.
NODE_BIN := target/node/bin
NODE_BINARIES := $(addprefix $(NODE_BIN)/,kubelet kube-scheduler kube-controller-manager kube-proxy)
NODE_PACKAGES := containerd runc containernetworking-plugins iptables buildah debootstrap
PAUSE_IMAGE := target/node/images/pause.tar
IMAGE_ARCHIVE := target/image/senderops.tar
IMAGE_INPUTS := Dockerfile .dockerignore Cargo.toml Cargo.lock $(shell find src sim/src benches -type f 2>/dev/null) \
	sim/Cargo.toml hack/image/build.sh hack/image/bases.sh

.PHONY: test bench demo demo-cluster controlplane node node-packages node-down image manifests lint fmt \
	prism helm clean-testplane

## test: build the control plane, the test node, the image, Prism and helm, then run every Rust
## test against them.
test: controlplane node image prism helm
	cargo test --workspace --locked

## bench: 1000 senders over 10 accounts, then 10,000 with 10,000 unrelated Secrets, against the
## control plane and twilio-sim (release build; about 11 minutes warm). Writes
## target/bench/report.json and report.txt; fails if a target is missed or not measured.
## BENCH_SENDERS, BENCH_SCALE_SENDERS and BENCH_UNRELATED_SECRETS change the sizes;
## BENCH_STEADY_RESYNC_SECONDS (60) and BENCH_STEADY_RESYNCS (4) the steady-state step's
## resync and window.
bench: controlplane
	cargo bench --locked --bench fleet

## demo: the control plane, twilio-sim and senderops run with the examples, until all are ONLINE.
## DEMO_ONESHOT=1 exits once they are (CI-friendly); otherwise it runs until Ctrl-C.
demo: controlplane
	cargo build --workspace --locked
	hack/demo.sh

## demo-cluster: the operator as Pods on the test node, from its own image, installed with
## kubectl apply -k; DEMO_ONESHOT=1 exits once the Deployment is Available and all are Ready.
demo-cluster: controlplane node image
	cargo build --locked -p twilio-sim
	hack/demo-cluster.sh

## node: the test node's parts: Debian's containerd, runc, CNI plugins, iptables and buildah
## (installed if missing), kubelet, kube-scheduler, kube-controller-manager and kube-proxy (from
## the control plane's module), and the pause image.
node: node-packages $(NODE_BINARIES) $(PAUSE_IMAGE)

node-packages:
	@hack/node/ensure-packages.sh $(NODE_PACKAGES)

$(NODE_BIN)/%: tests/controlplane/go.mod tests/controlplane/go.sum
	@mkdir -p $(@D)
	cd tests/controlplane && $(GO_ENV) go build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(abspath $@) k8s.io/kubernetes/cmd/$*

$(NODE_BIN)/pause: tests/controlplane/pause/main.go
	@mkdir -p $(@D)
	cd tests/controlplane && $(GO_ENV) go build -trimpath -ldflags '-s -w' -o $(abspath $@) ./pause

$(PAUSE_IMAGE): $(NODE_BIN)/pause hack/image/pause.sh | node-packages
	hack/image/pause.sh $< $@

## node-down: tear down a test node a killed run left behind (processes, mounts, network, ...).
node-down:
	hack/node/down.sh

## image: the operator image, built from the Dockerfile with buildah, as a docker archive.
image: $(IMAGE_ARCHIVE)

$(IMAGE_ARCHIVE): $(IMAGE_INPUTS) | node-packages
	hack/image/build.sh $@

## controlplane: kube-apiserver + embedded etcd (and a kubectl in version skew) for tests.
controlplane: $(TESTPLANE_DIR)/testplane $(TESTPLANE_DIR)/kubectl

$(TESTPLANE_DIR)/testplane: $(wildcard tests/controlplane/*.go) tests/controlplane/go.mod tests/controlplane/go.sum
	@mkdir -p $(@D)
	cd tests/controlplane && $(GO_ENV) go build -trimpath -ldflags '$(GO_LDFLAGS)' -o $(abspath $@) .

$(TESTPLANE_DIR)/kubectl: tests/controlplane/go.mod
	hack/ensure-kubectl.sh $@
	@touch -h $@

## prism: Stoplight Prism, which checks HTTP traffic against Twilio's OpenAPI document.
prism: $(PRISM)

$(PRISM): tests/prism/package.json tests/prism/package-lock.json
	npm ci --prefix tests/prism --no-audit --no-fund
	@touch $@

## helm: helm built from its Go module, for the chart's tests (tests/it/deploy.rs).
helm: $(HELM)

$(HELM): hack/ensure-helm.sh
	hack/ensure-helm.sh $@
	@touch $@

## manifests: regenerate crds/ from the Rust types, and its copies under deploy/.
manifests:
	cargo run --quiet --locked -- crd > crds/whatsappsender.yaml
	for copy in $(CRD_COPIES); do cp crds/whatsappsender.yaml "$$copy"; done

## lint: formatting and clippy, as CI checks them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd tests/controlplane && test -z "$$(gofmt -l .)" && $(GO_ENV) go vet . ./pause

fmt:
	cargo fmt --all
	gofmt -w tests/controlplane

clean-testplane:
	rm -rf $(TESTPLANE_DIR)
