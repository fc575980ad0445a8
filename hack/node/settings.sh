# The test node's settings, in one place (sourced by hack/node/run.sh and down.sh). The facts
# behind them: containerd and runc from Debian, runc (not crun) on this hybrid cgroup layout,
# cgroupfs driver, no CAP_SYS_RESOURCE (restrict_oom_score_adj), the bridge CNI from Debian's
# containernetworking-plugins, images imported without a registry.
# shellcheck shell=bash
node_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Where the node keeps its state and logs. One node per machine: the kubelet's ports (10250,
# 10248) and some of its paths are fixed.
node_dir=${NODE_DIR:-$node_root/target/node/run}
node_bin=${NODE_BIN:-$node_root/target/node/bin}
node_testplane=$node_root/target/testplane/testplane
node_kubectl=$node_root/target/testplane/kubectl
# The pod network: a bridge of our own whose address is also the node's, the API server's and
# where pods reach services on the host (twilio-sim in the tests).
node_bridge=senderops0
node_pod_cidr=10.244.0.0/24
node_ip=10.244.0.1
node_service_cidr=10.0.0.0/24
node_pause_image=localhost/senderops/pause:dev
# Paths the kubelet, containerd and CNI use whatever they are told; removed at teardown.
node_fixed_paths=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni)
# Host settings the kubelet (its kernel tunables: the first six), the bridge plugin and run.sh
# change; restored at teardown. On some kernels the kubelet's values are the defaults already.
node_sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
	net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet)
# Chains the kubelet, kube-proxy, CNI and our own guard create (every table, IPv4 and IPv6).
node_chain_prefixes='KUBE-|CNI-|SENDEROPS-'
node_guard_chain=SENDEROPS-NODE-GUARD
node_state=$node_dir/state
node_logs=$node_dir/logs
node_containerd_socket=$node_dir/containerd/containerd.sock
