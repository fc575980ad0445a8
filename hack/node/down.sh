#!/usr/bin/env bash
# Tears the test node down and undoes everything it changed on the host, from the state that
# hack/node/run.sh recorded: processes (by PID), containers, mounts, network namespaces, the
# bridge, iptables chains, the service-range route, sysctls, cgroups and the kubelet's fixed
# paths. Idempotent: run.sh calls it before starting (a killed run leaves things behind) and
# when it stops; `make node-down` runs it by hand. Logs stay in $NODE_DIR/logs.
set -uo pipefail
# shellcheck source=hack/node/settings.sh
source "$(dirname "$0")/settings.sh"

[ -d "$node_state" ] || exit 0
say() { echo "node down: $*" >&2; }

pid_of() { cat "$node_state/$1.pid" 2>/dev/null; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
# SIGTERM, up to $2 seconds, then SIGKILL.
stop() {
	local name=$1 grace=${2:-10} pid
	pid=$(pid_of "$name") || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq $((grace * 10))); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && { say "$name ($pid) ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null; }
	fi
	rm -f "$node_state/$name.pid"
}
k() { "$node_kubectl" --kubeconfig "$node_dir/plane/kubeconfig" --request-timeout=10s "$@"; }
ctr_() { ctr -a "$node_containerd_socket" -n k8s.io "$@"; }

# 1. Pods go while the kubelet runs: it stops their containers and frees their network. The
# controllers stop first, or a ReplicaSet would replace each pod deleted here.
for name in kube-controller-manager kube-scheduler; do stop "$name" 10; done
if alive "$(pid_of kubelet)" && alive "$(pid_of testplane)"; then
	k delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1
	for _ in $(seq 60); do
		[ -z "$(k get pods -A -o name 2>/dev/null)" ] && break
		sleep 0.5
	done
fi
# 2. The node's controllers and agents.
for name in kube-proxy kubelet; do stop "$name" 10; done
[ -x "$node_bin/kube-proxy" ] && "$node_bin/kube-proxy" --cleanup >/dev/null 2>&1
# 3. Whatever containers are left, through containerd, then containerd and the control plane.
if alive "$(pid_of containerd)"; then
	for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$task" >/dev/null 2>&1; done
	sleep 0.5
	for task in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$task" >/dev/null 2>&1; done
	for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
fi
stop testplane 30
stop containerd 10
# 4. Shims (and anything else) still attached to this node's containerd, by PID.
for proc in /proc/[0-9]*; do
	if { tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null | grep -qF -- "$node_containerd_socket"; then
		kill -KILL "${proc#/proc/}" 2>/dev/null && say "killed leftover ${proc#/proc/}"
	fi
done
sleep 0.2
# 5. Mounts under the node's paths and the network namespaces CNI made, deepest first.
mountpoints() {
	awk '{print $5}' /proc/self/mountinfo | grep -E "^($node_dir|/var/lib/kubelet|/run/containerd|/run/netns/cni-)" | sort -r
}
for _ in 1 2 3; do
	for m in $(mountpoints); do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done
if [ -f "$node_state/netns.before" ]; then
	for ns in /run/netns/cni-*; do
		[ -e "$ns" ] || continue
		grep -qxF "$ns" "$node_state/netns.before" || rm -f "$ns"
	done
fi
# 6. Network: the bridge (with the veths of any pod left), the service-range route, iptables.
ip link delete "$node_bridge" 2>/dev/null
for veth in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
	[ -f "$node_state/veths.before" ] && grep -qxF "$veth" "$node_state/veths.before" && continue
	ip link delete "$veth" 2>/dev/null
done
ip route delete "$node_service_cidr" dev "$node_bridge" 2>/dev/null
for tool in iptables ip6tables; do
	command -v "$tool" >/dev/null || continue
	for table in filter nat mangle; do
		"$tool"-save -t "$table" 2>/dev/null | grep -E "^-A .* -j ($node_chain_prefixes)" | sed 's/^-A //' |
			while read -r rule; do eval "$tool -t $table -D $rule" 2>/dev/null; done
		for chain in $("$tool"-save -t "$table" 2>/dev/null | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "^($node_chain_prefixes)"); do
			"$tool" -t "$table" -F "$chain" 2>/dev/null
		done
		for chain in $("$tool"-save -t "$table" 2>/dev/null | sed -n 's/^:\([^ ]*\) .*/\1/p' | grep -E "^($node_chain_prefixes)"); do
			"$tool" -t "$table" -X "$chain" 2>/dev/null
		done
	done
done
# 7. Sysctls as they were before the node started.
if [ -f "$node_state/sysctls.before" ]; then
	while read -r key value; do
		[ -n "$value" ] && sysctl -qw "$key=$value" >/dev/null 2>&1
	done <"$node_state/sysctls.before"
fi
# 7b. Kernel modules this run loaded (br_netfilter where it is not built in), once nothing
# uses them: the bridge is gone.
if [ -f "$node_state/modules.loaded" ]; then
	while read -r module; do
		modprobe -r "$module" 2>/dev/null || say "could not unload $module; modprobe -r $module by hand"
	done <"$node_state/modules.loaded"
fi
# 8. Cgroups the kubelet and containerd made in every v1 hierarchy (and cgroup2), deepest first.
for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
	for top in kubepods k8s.io; do
		[ -d "$hierarchy$top" ] || continue
		find "$hierarchy$top" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
done
# 9. Paths: the fixed ones this run created, and the node's own directory (logs kept).
if [ -f "$node_state/paths.before" ]; then
	for path in "${node_fixed_paths[@]}"; do
		grep -qxF "$path" "$node_state/paths.before" || rm -rf "$path"
	done
fi
# /run/netns, which containerd creates for the first pod's network namespace on a new machine.
if [ -f "$node_state/paths.before" ] && [ ! -f "$node_state/netns-dir.before" ]; then
	rmdir /run/netns 2>/dev/null
fi
find "$node_dir" -mindepth 1 -maxdepth 1 ! -name logs ! -name state -exec rm -rf {} +
rm -rf "$node_state"
say "done"
