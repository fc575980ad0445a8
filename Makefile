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
PROMTOOL := target/tools/promtool
# Tools built here, pinned (hack/ensure-*.sh): the kustomize CLI (the README's `kustomize edit set
# image`), actionlint (the GitHub workflows), the CNCF distribution registry (the image-push test)
# and cargo-deny (licenses, bans, sources; `cargo install --root target/tools`).
KUSTOMIZE := target/tools/kustomize
ACTIONLINT := target/tools/actionlint
REGISTRY_SERVER := target/tools/registry
CARGO_DENY := target/tools/bin/cargo-deny
# checkov (PyPI), in a virtualenv of its own under target/tools: the security scan of the install
# manifests (tests/it/checkov.rs).
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := target/tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Copies of crds/ where kustomize and Helm can load them (neither reads files outside its root).
CRD_COPIES := deploy/base/crd/whatsappsender.yaml deploy/helm/senderops/crds/whatsappsender.yaml

# The test node (hack/node/run.sh): kubelet, scheduler, controller-manager and kube-proxy from the
# control plane's module, the pause image, and the operator image built from the Dockerfile.
NODE_BIN := target/node/bin
NODE_BINARIES := $(addprefix $(NODE_BIN)/,kubelet kube-scheduler kube-controller-manager kube-proxy)
NODE_PACKAGES := containerd runc containernetworking-plugins iptables buildah debootstrap
PAUSE_IMAGE := target/node/images/pause.tar
IMAGE_ARCHIVE := target/image/senderops.tar
# The image's name in the archive (the node tests install it under this name). IMAGE names where
# `make image-push` pushes it.
LOCAL_IMAGE := localhost/senderops:dev
IMAGE_PUSH_PACKAGES := skopeo
IMAGE_INPUTS := Dockerfile .dockerignore Cargo.toml Cargo.lock $(shell find src sim/src benches -type f 2>/dev/null) \
	sim/Cargo.toml hack/image/build.sh hack/image/bases.sh

.PHONY: test bench demo demo-cluster controlplane node node-packages node-down image manifests lint fmt \
	prism helm promtool checkov clean-testplane

## test: build the control plane, the test node, the image, Prism, helm, kustomize, the registry
## and skopeo (the image-push test), install checkov, then run every Rust test against them.
test: controlplane node image prism helm promtool kustomize registry checkov image-push-packages
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
	IMAGE=$(LOCAL_IMAGE) hack/image/build.sh $@

## image-push: push the image `make image` built to IMAGE (required: REGISTRY/NAME:TAG), with
## skopeo (installed from Debian if missing) and the credentials of `skopeo login` or `docker
## login`. IMAGE_PUSH_FLAGS adds `skopeo copy` flags: --dest-tls-verify=false for a registry
## that speaks plain HTTP. The pushed digest goes to target/image/pushed.digest.
##   make image-push IMAGE=registry.example.com/team/senderops:0.1.0
ifneq ($(filter image-push,$(MAKECMDGOALS)),)
ifeq ($(strip $(IMAGE)),)
$(error make image-push needs IMAGE=REGISTRY/NAME:TAG, where to push the image, e.g. make image-push IMAGE=registry.example.com/team/senderops:0.1.0)
endif
endif
image-push: $(IMAGE_ARCHIVE) | image-push-packages
	skopeo copy --quiet --digestfile target/image/pushed.digest $(IMAGE_PUSH_FLAGS) \
		docker-archive:$(IMAGE_ARCHIVE) docker://$(IMAGE)
	@echo "image-push: pushed $(IMAGE) ($$(cat target/image/pushed.digest))"

image-push-packages:
	@hack/node/ensure-packages.sh $(IMAGE_PUSH_PACKAGES)

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

$(HELM): hack/ensure-helm.sh hack/lib/go-tool.sh
	hack/ensure-helm.sh $@
	@touch $@

## promtool: promtool built from the Prometheus Go module (tests/promtool), which checks and
## unit-tests the alerts and evaluates the dashboard (tests/it/alert_rules.rs).
promtool: $(PROMTOOL)

$(PROMTOOL): hack/ensure-promtool.sh tests/promtool/go.mod tests/promtool/go.sum
	hack/ensure-promtool.sh $@
	@touch $@

## kustomize: the kustomize CLI (from its Go module), for the README's `kustomize edit set image`,
## which the cluster tests run to write their install overlay.
kustomize: $(KUSTOMIZE)

$(KUSTOMIZE): hack/ensure-kustomize.sh hack/lib/go-tool.sh
	hack/ensure-kustomize.sh $@
	@touch $@

## registry: the CNCF distribution registry (from its Go module), which the image-push test
## pushes into (tests/it/image_push.rs).
registry: $(REGISTRY_SERVER)

$(REGISTRY_SERVER): hack/ensure-registry.sh hack/lib/go-tool.sh
	hack/ensure-registry.sh $@
	@touch $@

## checkov: checkov from PyPI, pinned, in a virtualenv (target/tools/checkov, the machine's
## python3), which tests/it/checkov.rs runs on every rendering of deploy/ and the chart. A
## virtualenv that already holds the pinned version is kept: a warm run does nothing.
checkov:
	@if [ ! -x $(CHECKOV) ] || [ "$$($(CHECKOV_VENV)/bin/python -c \
		'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null)" != "$(CHECKOV_VERSION)" ]; then \
		echo "checkov: installing $(CHECKOV_VERSION) from PyPI into $(CHECKOV_VENV)"; \
		started=$$(date +%s); \
		rm -rf $(CHECKOV_VENV); \
		python3 -m venv $(CHECKOV_VENV) || { echo "checkov: needs python3 with venv (Debian: apt-get install python3-venv)" >&2; exit 1; }; \
		$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"; \
		echo "checkov: $$($(CHECKOV) --version) installed in $$(($$(date +%s) - started))s"; \
	fi

## actionlint: actionlint (from its Go module), which `make lint` runs on .github/workflows/.
actionlint: $(ACTIONLINT)

$(ACTIONLINT): hack/ensure-actionlint.sh hack/lib/go-tool.sh
	hack/ensure-actionlint.sh $@
	@touch $@

## cargo-deny: cargo-deny (from crates.io, pinned, --locked), which `make lint` runs with deny.toml.
cargo-deny: $(CARGO_DENY)

$(CARGO_DENY): hack/ensure-cargo-deny.sh
	hack/ensure-cargo-deny.sh $@
	@touch $@

## manifests: regenerate crds/ from the Rust types, and its copies under deploy/.
manifests:
	cargo run --quiet --locked -- crd > crds/whatsappsender.yaml
	for copy in $(CRD_COPIES); do cp crds/whatsappsender.yaml "$$copy"; done

## lint: formatting and clippy, as CI checks them; gofmt and go vet; actionlint on the GitHub
## workflows; cargo deny's licenses, bans and sources (deny.toml). Advisories need RustSec's
## database from the network: `make advisories`, which the workflows run.
lint: actionlint cargo-deny
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd tests/controlplane && test -z "$$(gofmt -l .)" && $(GO_ENV) go vet . ./pause
	$(ACTIONLINT) .github/workflows/*.yml
	$(CARGO_DENY) --all-features check licenses bans sources

## advisories: RustSec advisories against Cargo.lock (cargo deny; fetches the advisory database).
advisories: cargo-deny
	$(CARGO_DENY) check advisories

fmt:
	cargo fmt --all
	gofmt -w tests/controlplane

clean-testplane:
	rm -rf $(TESTPLANE_DIR)

.PHONY: image-push image-push-packages kustomize registry actionlint cargo-deny advisories \
	image-release chart-push sbom sign

# The release (.github/workflows/release.yml runs these targets on a tag vX.Y.Z, after logging in
# to the registry and installing buildah's qemu, helm, syft and cosign). RELEASE_TAG (default v
# and Cargo.toml's version) gives the version; RELEASE_REGISTRY (default ghcr.io/senderops) the
# repository that receives the image (senderops) and the chart (charts/senderops);
# RELEASE_PLATFORMS the image's platforms. What they write lands in target/dist/.
RELEASE_TAG ?= v$(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
RELEASE_VERSION := $(patsubst v%,%,$(RELEASE_TAG))
RELEASE_REGISTRY ?= ghcr.io/senderops
# OCI repository names are lowercase; GitHub owners need not be.
RELEASE_REPOSITORY := $(shell tr '[:upper:]' '[:lower:]' <<<'$(RELEASE_REGISTRY)')
RELEASE_IMAGE := $(RELEASE_REPOSITORY)/senderops
RELEASE_CHARTS := $(RELEASE_REPOSITORY)/charts
RELEASE_PLATFORMS ?= linux/amd64,linux/arm64
RELEASE_HELM ?= helm
HELM_PUSH_FLAGS ?=
SYFT ?= syft
COSIGN ?= cosign
DIST := target/dist
comma := ,

## image-release: the image for every platform of RELEASE_PLATFORMS, built from the Dockerfile with
## buildah (qemu runs the other architectures' stages) into one manifest list, pushed with all
## its images as RELEASE_IMAGE:VERSION; the list's digest goes to target/dist/image.digest.
## One platform at a time (--jobs 1): the Dockerfile's cache mount of cargo's target/ is shared.
image-release:
	@mkdir -p $(DIST)
	buildah manifest rm $(RELEASE_IMAGE):$(RELEASE_VERSION) >/dev/null 2>&1 || true
	buildah build --jobs 1 --platform $(RELEASE_PLATFORMS) --manifest $(RELEASE_IMAGE):$(RELEASE_VERSION) -f Dockerfile .
	buildah manifest push --all --digestfile $(DIST)/image.digest \
		$(RELEASE_IMAGE):$(RELEASE_VERSION) docker://$(RELEASE_IMAGE):$(RELEASE_VERSION)
	@echo "image-release: $(RELEASE_IMAGE):$(RELEASE_VERSION)@$$(cat $(DIST)/image.digest)"

## chart-push: the Helm chart, versioned RELEASE_VERSION and defaulting to RELEASE_IMAGE, packaged
## into target/dist/ and pushed as an OCI artifact to oci://RELEASE_CHARTS (HELM_PUSH_FLAGS, e.g.
## --plain-http; RELEASE_HELM names the helm); its digest goes to target/dist/chart.digest.
chart-push:
	rm -rf $(DIST)/chart && mkdir -p $(DIST)/chart
	cp -R deploy/helm/senderops $(DIST)/chart/
	sed -i 's|^  repository: ghcr.io/senderops/senderops$$|  repository: $(RELEASE_IMAGE)|' $(DIST)/chart/senderops/values.yaml
	grep -q '^  repository: $(RELEASE_IMAGE)$$' $(DIST)/chart/senderops/values.yaml
	$(RELEASE_HELM) package $(DIST)/chart/senderops --version $(RELEASE_VERSION) --app-version $(RELEASE_VERSION) -d $(DIST)
	$(RELEASE_HELM) push $(HELM_PUSH_FLAGS) $(DIST)/senderops-$(RELEASE_VERSION).tgz oci://$(RELEASE_CHARTS) 2>&1 | tee $(DIST)/chart-push.log
	sed -n 's/^Digest: //p' $(DIST)/chart-push.log >$(DIST)/chart.digest
	test -s $(DIST)/chart.digest

## sbom: an SPDX SBOM of each platform's image (syft, from the registry), as
## target/dist/senderops-VERSION-OS-ARCH.spdx.json; run after image-release.
sbom:
	@test -s $(DIST)/image.digest || { echo "sbom: no $(DIST)/image.digest: run make image-release first" >&2; exit 1; }
	for platform in $(subst $(comma), ,$(RELEASE_PLATFORMS)); do \
		$(SYFT) scan --platform "$$platform" "registry:$(RELEASE_IMAGE)@$$(cat $(DIST)/image.digest)" \
			-o "spdx-json=$(DIST)/senderops-$(RELEASE_VERSION)-$${platform//\//-}.spdx.json"; \
	done

## sign: keyless cosign signatures (the workflow's OIDC identity, recorded in Rekor) of the image's
## manifest list and of the chart, and each platform's SBOM as a signed SPDX attestation of that
## platform's image; run after image-release, chart-push and sbom.
sign:
	@test -s $(DIST)/image.digest -a -s $(DIST)/chart.digest || \
		{ echo "sign: run make image-release, chart-push and sbom first" >&2; exit 1; }
	$(COSIGN) sign --yes "$(RELEASE_IMAGE)@$$(cat $(DIST)/image.digest)"
	$(COSIGN) sign --yes "$(RELEASE_CHARTS)/senderops@$$(cat $(DIST)/chart.digest)"
	index=$$(skopeo inspect --raw "docker://$(RELEASE_IMAGE)@$$(cat $(DIST)/image.digest)"); \
	for platform in $(subst $(comma), ,$(RELEASE_PLATFORMS)); do \
		digest=$$(jq -er --arg os "$${platform%%/*}" --arg arch "$${platform#*/}" \
			'.manifests[] | select(.platform.os == $$os and .platform.architecture == $$arch) | .digest' <<<"$$index"); \
		$(COSIGN) attest --yes --type spdxjson --predicate "$(DIST)/senderops-$(RELEASE_VERSION)-$${platform//\//-}.spdx.json" \
			"$(RELEASE_IMAGE)@$$digest"; \
	done
