//! SenderOps as a platform engineer installs it: its own image (built from the Dockerfile with
//! buildah), installed as the README says (`kubectl apply -k`, `helm install`), running as Pods
//! on a real node (hack/node/run.sh: kubelet, containerd + runc, bridge CNI, scheduler,
//! controller-manager, kube-proxy) with in-cluster config, the manifests' security context,
//! probes and limits, two replicas sharing the Lease, and a Service carrying its metrics.
//!
//! Each test starts a node of its own and tears it down; the kubelet's ports and paths are fixed,
//! so node tests take turns ([`node::Node::start`] holds a lock) while the binary's other tests
//! run in parallel.

mod fixture;
mod host;
mod node;
mod relay;

mod cleanup;
mod demo;
mod failover;
mod helm;
mod image;
mod kustomize;
mod rollout;
mod sharding;
mod uninstall;
