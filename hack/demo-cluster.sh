#!/usr/bin/env bash
# make demo-cluster: SenderOps as a platform engineer runs it, on this machine: the test node
# (hack/node/run.sh: kubelet, containerd, scheduler, controller-manager, kube-proxy), the
# operator's image built from the Dockerfile, installed with `kubectl apply -k` (hack/node/install/node:
# deploy/ with that image and twilio-sim's URL), the examples applied, the user who receives the
# codes played, until every sender is Ready. Needs root (a kubelet and containerd run).
#
#   DEMO_ONESHOT=1   exit 0 once the Deployment is Available (2/2) and every sender is Ready,
#                    non-zero with a message otherwise, instead of running until Ctrl-C
#   DEMO_TIMEOUT=N   seconds to wait for Ready (default 240)
#   DEMO_STEP_MS=N   length of each simulated Twilio step (default 1500)
#   DEMO_DIR=PATH    where its logs go (default target/demo-cluster); the node's are in
#                    target/node/run/logs
set -euo pipefail
cd "$(dirname "$0")/.."

root=$PWD
dir=${DEMO_DIR:-$root/target/demo-cluster}
kubectl=$root/target/testplane/kubectl
sim_bin=$root/target/debug/twilio-sim
image=$root/target/image/senderops.tar
timeout=${DEMO_TIMEOUT:-240}
step_ms=${DEMO_STEP_MS:-1500}
namespace=demo
account=AC000000000000000000000000000000de
token=demo-auth-token
# hack/node/install/local-image points the operator at twilio-sim here: the node's bridge address.
sim_listen=10.244.0.1:8280
sim=http://$sim_listen

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'demo-cluster: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "the test node needs root (a kubelet, containerd and iptables run)"
for tool in "$kubectl" "$sim_bin"; do
	[ -x "$tool" ] || fail "$tool is missing: run make demo-cluster (it builds everything first)"
done
[ -f "$image" ] || fail "$image is missing: run make demo-cluster (make image builds it)"
rm -rf "$dir"
mkdir -p "$dir"

node_pid=""
sim_pid=""
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	[ -z "$sim_pid" ] || kill -TERM "$sim_pid" 2>/dev/null || true
	if [ -n "$node_pid" ]; then
		say "Tearing the node down (pods, processes, mounts, network, iptables, sysctls)"
		exec 3>&- || true # closing its stdin stops the node
		wait "$node_pid" 2>/dev/null || true
	fi
	echo "demo-cluster stopped; logs are in $dir and target/node/run/logs"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting the test node (containerd, API server, controller-manager, scheduler, kubelet, kube-proxy)"
mkfifo "$dir/node.stdin"
hack/node/run.sh "$image" <"$dir/node.stdin" >"$dir/node.out" 2>"$dir/node.log" &
node_pid=$!
exec 3>"$dir/node.stdin"
for _ in $(seq 360); do
	grep -q '^ready ' "$dir/node.out" 2>/dev/null && break
	kill -0 "$node_pid" 2>/dev/null || { tail -n 20 "$dir/node.log" >&2; node_pid=""; fail "the node did not start; see $dir/node.log"; }
	sleep 0.5
done
grep -q '^ready ' "$dir/node.out" || fail "the node was not Ready in 180 s; see $dir/node.log"
export KUBECONFIG=$(sed -n 's/^ready //p' "$dir/node.out")
k() { "$kubectl" "$@"; }
sed 's/^/    /' "$dir/node.log"

say "Starting twilio-sim on $sim (Twilio's Senders API, simulated)"
TWILIO_SIM_ACCOUNTS="$account:$token" "$sim_bin" --listen "$sim_listen" --step-delay-ms "$step_ms" \
	>"$dir/sim.out" 2>"$dir/sim.log" &
sim_pid=$!
for _ in $(seq 50); do grep -q 'listening on' "$dir/sim.out" 2>/dev/null && break; sleep 0.1; done
grep -q 'listening on' "$dir/sim.out" || fail "twilio-sim did not start; see $dir/sim.log"
number() {
	curl -fsS -X POST "$sim/_sim/numbers" -H 'content-type: application/json' \
		-d "{\"phone_number\":\"$1\",\"behavior\":\"$2\"}" >/dev/null
}
number +15017122661 auto_verify
number +15017122662 needs_code
number +15017122663 needs_code

say "Installing SenderOps: kubectl apply -k hack/node/install/node (deploy/ with the image built here)"
installed=$(date +%s)
k apply -k hack/node/install/node
k -n senderops rollout status deployment/senderops --timeout=180s ||
	fail "the Deployment did not roll out; kubectl -n senderops describe pods says why"
echo "    Deployment Available $(($(date +%s) - installed))s after kubectl apply -k"

say "Credentials and the examples in namespace $namespace"
k create namespace "$namespace" >/dev/null
k -n "$namespace" create secret generic twilio \
	--from-literal=accountSid="$account" --from-literal=authToken="$token" >/dev/null
k -n "$namespace" apply -f examples/sender-minimal.yaml -f examples/sender-sms-code.yaml \
	-f examples/sender-full.yaml

# The person who receives the code: reads it from the simulator, writes the Secret.
submit_codes() {
	local name sid secret code
	while read -r name sid secret; do
		[ -n "$secret" ] || continue
		k -n "$namespace" get secret "$secret" >/dev/null 2>&1 && continue
		code=$(curl -fsS "$sim/_sim/senders/$sid/otp" 2>/dev/null | sed -n 's/.*"code":"\([0-9]*\)".*/\1/p')
		[ -n "$code" ] || continue
		echo "    (the user receives the code for $name and runs: kubectl create secret generic $secret --from-literal=code=$code)"
		k -n "$namespace" create secret generic "$secret" --from-literal=code="$code" >/dev/null
	done < <(k -n "$namespace" get was -o jsonpath='{range .items[?(@.status.twilioStatus=="PENDING_VERIFICATION")]}{.metadata.name} {.status.sid} {.spec.verification.codeSecretRef.name}{"\n"}{end}')
}

say "Waiting for every sender to be ONLINE (up to ${timeout}s)"
started=$(date +%s)
last=""
while :; do
	table=$(k -n "$namespace" get was 2>/dev/null || true)
	if [ "$table" != "$last" ]; then
		printf '\n[%3ss]\n%s\n' "$(($(date +%s) - started))" "$table"
		last=$table
	fi
	submit_codes
	total=$(k -n "$namespace" get was -o name | wc -l)
	ready=$(k -n "$namespace" get was -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true)
	[ "$total" -gt 0 ] && [ "$ready" -eq "$total" ] && break
	if (($(date +%s) - started > timeout)); then
		k -n "$namespace" get was -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message' || true
		fail "not every sender was Ready after ${timeout}s; kubectl -n senderops logs deploy/senderops says why"
	fi
	sleep 1
done

echo
say "All $total senders are ONLINE, reconciled by the operator's Pods"
k -n senderops get deploy,pods -o wide
echo
k get was -A
available=$(k -n senderops get deploy senderops -o jsonpath='{.status.availableReplicas}/{.spec.replicas}')
[ "$available" = 2/2 ] || fail "the Deployment has $available replicas available, not 2/2"
cat <<EOF2

Keep using the cluster from another shell while this one runs:
  export KUBECONFIG=$KUBECONFIG
  alias kubectl=$kubectl
  kubectl -n senderops get pods                              # the operator's two replicas
  kubectl -n senderops get lease senderops -o jsonpath='{.spec.holderIdentity}'   # who leads
  kubectl -n senderops logs deploy/senderops                 # JSON logs
  kubectl -n senderops delete pod <the leader>               # the standby takes over
  kubectl -n $namespace get was
  kubectl -n $namespace delete was acme-notifications        # deregisters it at Twilio
The simulator: $sim (curl $sim/_sim/senders; API auth $account / $token)
Logs: $dir, target/node/run/logs
EOF2

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
	exit 0
fi
echo
echo "Running until Ctrl-C (then everything is torn down)."
wait "$sim_pid"
