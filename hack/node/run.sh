#!/usr/bin/env bash
# The test node: a one-node Kubernetes cluster on this machine, for running SenderOps as Pods.
# Starts containerd (Debian's, with runc), the test control plane in node mode, kube-controller-
# manager, kube-scheduler, a kubelet and kube-proxy (built by `make node` from the same
# k8s.io/kubernetes module as the control plane), imports the images given as arguments
# (docker archives; the pause image always), waits until the node is Ready and untainted, and
# prints "ready KUBECONFIG". It then runs until its stdin closes or it gets SIGTERM/SIGINT, and tears
# everything down (hack/node/down.sh), also what a killed earlier run left.
#
#   hack/node/run.sh [IMAGE.tar ...] </some/pipe
#
# Everything stays on this machine: the API server, the kubelet and pods use the bridge
# $node_bridge ($node_pod_cidr, the node's address $node_ip) and loopback; forwarding from the
# bridge elsewhere is dropped and service addresses kube-proxy does not know go nowhere.
# The kubeconfig (admin) is $NODE_DIR/plane/kubeconfig; logs are in $NODE_DIR/logs.
set -euo pipefail
# shellcheck source=hack/node/settings.sh
source "$(dirname "$0")/settings.sh"

say() { echo "node: $*" >&2; }
fail() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || fail "the test node needs root (it runs a kubelet, containerd and iptables)"
for tool in containerd runc ctr iptables ip6tables ip sysctl; do
	command -v "$tool" >/dev/null || fail "$tool is missing: make node installs Debian's containerd, runc, iptables and containernetworking-plugins"
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
	fail "the CNI plugins are missing in /usr/lib/cni: apt-get install containernetworking-plugins (make node does)"
for binary in kubelet kube-scheduler kube-controller-manager kube-proxy; do
	[ -x "$node_bin/$binary" ] || fail "$node_bin/$binary is missing: run make node"
done
[ -x "$node_testplane" ] && [ -x "$node_kubectl" ] || fail "the control plane is missing: run make controlplane"
[ -f "$node_root/target/node/images/pause.tar" ] || fail "the pause image is missing: run make node"
images=("$node_root/target/node/images/pause.tar" "$@")
for image in "${images[@]}"; do [ -f "$image" ] || fail "no image archive $image"; done

started=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - started) / 1000000)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
"$(dirname "$0")/down.sh"
rm -rf "$node_logs"
mkdir -p "$node_state" "$node_logs"

teardown() {
	local status=$?
	trap - EXIT INT TERM
	exec 3>&- || true
	"$(dirname "$0")/down.sh"
	exit "$status"
}
trap teardown EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# What teardown restores or leaves alone: recorded before anything changes.
for key in "${node_sysctls[@]}"; do
	echo "$key $(sysctl -n "$key" 2>/dev/null || true)"
done >"$node_state/sysctls.before"
for path in "${node_fixed_paths[@]}"; do [ -e "$path" ] && echo "$path"; done >"$node_state/paths.before" || true
ls -d /run/netns/cni-* 2>/dev/null >"$node_state/netns.before" || true
[ -d /run/netns ] && touch "$node_state/netns-dir.before"
ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' >"$node_state/veths.before" || true

# Runs "$@" in the background, logging to logs/NAME.log, and records its PID.
spawn() {
	local name=$1
	shift
	"$@" >"$node_logs/$name.log" 2>&1 &
	echo $! >"$node_state/$name.pid"
}
alive() { kill -0 "$(cat "$node_state/$1.pid")" 2>/dev/null; }
# Waits up to $2 seconds for "$3..." to succeed while process $1 runs.
wait_for() {
	local name=$1 seconds=$2
	shift 2
	for _ in $(seq $((seconds * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		alive "$name" || fail "$name exited; its log ($node_logs/$name.log) ends:$(printf '\n'; tail -n 20 "$node_logs/$name.log")"
		sleep 0.1
	done
	fail "$name was not ready in ${seconds}s; its log ($node_logs/$name.log) ends:$(printf '\n'; tail -n 20 "$node_logs/$name.log")"
}

# Network: the bridge pods attach to, nothing forwarded off it, the service range local only.
# Pods get routes to the bridge and the service range, no default route: nothing else to reach.
ip link add "$node_bridge" type bridge
ip addr add "$node_ip/${node_pod_cidr#*/}" dev "$node_bridge"
ip link set "$node_bridge" up
# Service addresses are local: kube-proxy rewrites them; an address it does not know goes onto
# the bridge, where nothing answers, instead of the default route.
ip route add "$node_service_cidr" dev "$node_bridge"
iptables -N "$node_guard_chain"
iptables -A "$node_guard_chain" -i "$node_bridge" ! -o "$node_bridge" -j DROP
iptables -A "$node_guard_chain" -o "$node_bridge" ! -i "$node_bridge" -j DROP
iptables -I FORWARD 1 -j "$node_guard_chain"
# Service traffic between pods on the bridge goes through kube-proxy's rules, which needs
# br_netfilter: built into some kernels, a module others load only on demand. A module loaded
# here is unloaded at teardown (it sends every bridge's traffic on this host through iptables).
if [ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
	command -v modprobe >/dev/null && modprobe br_netfilter ||
		fail "net.bridge.bridge-nf-call-iptables is missing and br_netfilter could not be loaded (modprobe br_netfilter, as root)"
	echo br_netfilter >>"$node_state/modules.loaded"
fi
sysctl -qw net.bridge.bridge-nf-call-iptables=1

config=$node_dir/config
mkdir -p "$config" "$node_dir/cni/net.d" "$node_dir/containerd"
cat >"$config/containerd.toml" <<TOML
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
# Plugins that would write outside the node's directory or need absent kernel features.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$node_containerd_socket"
[ttrpc]
  address = "$node_containerd_socket.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$node_pause_image"
  # Without CAP_SYS_RESOURCE the sandbox's oom_score_adj of -998 cannot be set.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/bin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"
TOML
cat >"$node_dir/cni/net.d/10-senderops.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "senderops",
  "plugins": [{
    "type": "bridge",
    "bridge": "$node_bridge",
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": "$node_pod_cidr", "gateway": "$node_ip"}]],
      "routes": [{"dst": "$node_service_cidr", "gw": "$node_ip"}],
      "dataDir": "$node_dir/cni/ipam"
    }
  }]
}
JSON

spawn containerd containerd --config "$config/containerd.toml"
wait_for containerd 30 ctr -a "$node_containerd_socket" version
for image in "${images[@]}"; do
	ctr -a "$node_containerd_socket" -n k8s.io images import "$image" >>"$node_logs/images.log" 2>&1 ||
		fail "could not import $image; see $node_logs/images.log"
done
say "containerd up, ${#images[@]} images imported ($(elapsed)s)"

# The control plane; its stdin is a pipe only this script holds, so it stops with it.
mkfifo "$node_state/plane.stdin"
"$node_testplane" --dir "$node_dir/plane" --node --address "$node_ip" --exit-on-stdin-eof \
	<"$node_state/plane.stdin" >"$node_state/plane.out" 2>"$node_logs/testplane.log" &
echo $! >"$node_state/testplane.pid"
exec 3>"$node_state/plane.stdin"
wait_for testplane 120 grep -qx ready "$node_state/plane.out"
kubeconfig=$node_dir/plane/kubeconfig
say "API server ready at https://$node_ip ($(elapsed)s)"

spawn kube-controller-manager "$node_bin/kube-controller-manager" --kubeconfig="$kubeconfig" \
	--authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
	--controllers='*' --leader-elect=false --use-service-account-credentials=false \
	--service-account-private-key-file="$node_dir/plane/sa.key" --root-ca-file="$node_dir/plane/ca.crt" \
	--flex-volume-plugin-dir="$node_dir/flexvolume" --cert-dir="$node_dir/kcm" \
	--bind-address=127.0.0.1 --secure-port=10257 --allocate-node-cidrs=false \
	--node-monitor-period=2s --v=1
spawn kube-scheduler "$node_bin/kube-scheduler" --kubeconfig="$kubeconfig" \
	--authentication-kubeconfig="$kubeconfig" --authorization-kubeconfig="$kubeconfig" \
	--leader-elect=false --bind-address=127.0.0.1 --secure-port=10259 --cert-dir="$node_dir/scheduler" --v=1

cat >"$config/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$node_containerd_socket
# This machine mounts cgroups v1 (hybrid); no systemd runs.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
address: $node_ip
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
# The API server authenticates with the admin certificate (kubectl logs, exec).
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $node_dir/plane/ca.crt}
authorization: {mode: AlwaysAllow}
podLogsDir: $node_dir/pod-logs
volumePluginDir: $node_dir/volume-plugins
# Imported images have no registry to come back from: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
nodeStatusUpdateFrequency: 4s
maxPods: 30
YAML
spawn kubelet "$node_bin/kubelet" --config="$config/kubelet.yaml" --kubeconfig="$kubeconfig" \
	--root-dir="$node_dir/kubelet" --cert-dir="$node_dir/kubelet/pki" --node-ip="$node_ip" --v=1

cat >"$config/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $kubeconfig}
mode: iptables
clusterCIDR: $node_pod_cidr
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Node ports on the node's address only (on loopback they would need route_localnet).
nodePortAddresses: ["$node_ip/32"]
iptables: {localhostNodePorts: false}
# Leave the host's conntrack settings alone: its table size, and the TCP timeouts kube-proxy
# otherwise sets (established 24h, close-wait 1h) and nothing would set back.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
spawn kube-proxy "$node_bin/kube-proxy" --config="$config/kube-proxy.yaml" --v=1

k() { "$node_kubectl" --kubeconfig "$kubeconfig" "$@"; }
node_ready() {
	[ "$(k get nodes -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}')" = True ] &&
		[ -z "$(k get nodes -o jsonpath='{.items[0].spec.taints}')" ]
}
wait_for kubelet 120 node_ready
# Pods need their namespace's ServiceAccount and CA ConfigMap, kube-proxy the Service's rules.
wait_for kube-controller-manager 60 k -n default get serviceaccount default
wait_for kube-controller-manager 60 k -n default get configmap kube-root-ca.crt
service_routed() { iptables -t nat -S KUBE-SERVICES 2>/dev/null | grep -qF 'default/kubernetes:https cluster IP'; }
wait_for kube-proxy 60 service_routed
say "node $(k get nodes -o jsonpath='{.items[0].metadata.name}') Ready in $(elapsed)s"
echo "ready $kubeconfig"

# Until the caller closes stdin (or signals).
cat >/dev/null || true
