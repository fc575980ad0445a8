#!/usr/bin/env bash
# make demo: SenderOps end to end on this machine, no Twilio account, cluster or container
# engine needed. Starts the test control plane (kube-apiserver + etcd), twilio-sim and
# `senderops run`, applies examples/, plays the user who receives the one-time codes, and
# shows the senders moving until all are ONLINE.
#
#   DEMO_ONESHOT=1   exit 0 once every sender is Ready (non-zero on timeout) instead of
#                    running until Ctrl-C
#   DEMO_TIMEOUT=N   seconds to wait for Ready (default 180)
#   DEMO_STEP_MS=N   length of each simulated Twilio step (default 1500)
#   DEMO_DIR=PATH    where logs and the control plane's data go (default target/demo); the
#                    PIDs of the processes it starts are listed in PATH/pids ("NAME PID")
set -euo pipefail
cd "$(dirname "$0")/.."

root=$PWD
dir=${DEMO_DIR:-$root/target/demo}
bin=$root/target/debug
kubectl=$root/target/testplane/kubectl
timeout=${DEMO_TIMEOUT:-180}
step_ms=${DEMO_STEP_MS:-1500}
namespace=demo
account=AC000000000000000000000000000000de
token=demo-auth-token

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'demo: %s\n' "$*" >&2; exit 1; }

pids=()
# Records the process just started in the background as $1, for cleanup and in $dir/pids.
record_pid() {
	pids+=($!)
	echo "$1 $!" >>"$dir/pids"
}
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "${pids[@]}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${pids[@]}" 2>/dev/null || true
	fi
	exec 3>&- 2>/dev/null || true # closing its stdin stops the control plane
	wait 2>/dev/null || true
	echo "demo stopped; logs are in $dir"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in "$root/target/testplane/testplane" "$kubectl" "$bin/twilio-sim" "$bin/senderops"; do
	[ -x "$tool" ] || fail "$tool is missing: run make demo (it builds everything first)"
done
rm -rf "$dir"
mkdir -p "$dir"

say "Starting the control plane (kube-apiserver + etcd)"
mkfifo "$dir/plane.stdin"
"$root/target/testplane/testplane" --dir "$dir/plane" --exit-on-stdin-eof --remove-dir \
	<"$dir/plane.stdin" >"$dir/plane.out" 2>"$dir/plane.log" &
record_pid testplane
exec 3>"$dir/plane.stdin"
for _ in $(seq 120); do
	grep -qx ready "$dir/plane.out" 2>/dev/null && break
	kill -0 "${pids[0]}" 2>/dev/null || fail "the control plane exited; see $dir/plane.log"
	sleep 0.5
done
grep -qx ready "$dir/plane.out" || fail "the control plane was not ready in 60 s; see $dir/plane.log"
export KUBECONFIG=$dir/plane/kubeconfig
k() { "$kubectl" "$@"; }

say "Starting twilio-sim (Twilio's Senders API, simulated)"
TWILIO_SIM_ACCOUNTS="$account:$token" "$bin/twilio-sim" --listen 127.0.0.1:0 \
	--step-delay-ms "$step_ms" >"$dir/sim.out" 2>"$dir/sim.log" &
record_pid twilio-sim
for _ in $(seq 50); do
	sim=$(sed -n 's/^twilio-sim listening on //p' "$dir/sim.out")
	[ -n "$sim" ] && break
	sleep 0.1
done
[ -n "${sim:-}" ] || fail "twilio-sim did not start; see $dir/sim.log"
# How Meta treats each example number: one Twilio number verifies itself, two need a code.
number() {
	curl -fsS -X POST "$sim/_sim/numbers" -H 'content-type: application/json' \
		-d "{\"phone_number\":\"$1\",\"behavior\":\"$2\"}" >/dev/null
}
number +15017122661 auto_verify
number +15017122662 needs_code
number +15017122663 needs_code

say "Installing the CRD and the examples in namespace $namespace"
k apply --server-side -f crds/ >/dev/null
k wait --for=condition=Established --timeout=60s crd/whatsappsenders.messaging.senderops.io >/dev/null
k create namespace "$namespace" >/dev/null
k -n "$namespace" create secret generic twilio \
	--from-literal=accountSid="$account" --from-literal=authToken="$token" >/dev/null

say "Starting senderops run (log: $dir/operator.log)"
# The simulator registers in seconds, not minutes: no spacing between its registrations.
"$bin/senderops" run --twilio-api-url "$sim" --poll-interval 1s --metrics-addr 127.0.0.1:0 \
	--registration-interval 0s >"$dir/operator.log" 2>&1 &
record_pid senderops

k -n "$namespace" apply -f examples/sender-minimal.yaml -f examples/sender-sms-code.yaml \
	-f examples/sender-full.yaml

# The stand-in for the person who receives the code: reads it from the simulator and writes
# the Secret the sender names, as a user would with kubectl.
submit_codes() {
	local name sid secret
	while read -r name sid secret; do
		[ -n "$secret" ] || continue
		k -n "$namespace" get secret "$secret" >/dev/null 2>&1 && continue
		code=$(curl -fsS "$sim/_sim/senders/$sid/otp" 2>/dev/null |
			sed -n 's/.*"code":"\([0-9]*\)".*/\1/p')
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
	if [ "$total" -gt 0 ] && [ "$ready" -eq "$total" ]; then
		break
	fi
	if (($(date +%s) - started > timeout)); then
		echo
		k -n "$namespace" get was -o custom-columns='NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].reason,MESSAGE:.status.conditions[?(@.type=="Ready")].message' || true
		fail "not every sender was Ready after ${timeout}s; see $dir/operator.log"
	fi
	sleep 1
done

echo
say "All $total senders are ONLINE"
k -n "$namespace" get was
cat <<EOF

Keep using it from another shell while this one runs:
  export KUBECONFIG=$KUBECONFIG
  alias kubectl=$kubectl
  kubectl -n $namespace get was
  kubectl -n $namespace describe was acme-support        # conditions and Events
  kubectl -n $namespace patch was acme-support --type merge -p '{"spec":{"profile":{"about":"New text"}}}'
  kubectl -n $namespace delete was acme-notifications    # deregisters it at Twilio

The operator's metrics: $(sed -n 's/.*serving \/metrics.*addr=\([0-9.:]*\).*/http:\/\/\1\/metrics/p' "$dir/operator.log" | head -n 1)

The simulator plays Twilio and Meta at $sim:
  curl $sim/_sim/senders                          # what Twilio holds
  curl $sim/_sim/senders/<SID>/otp                # the code Meta "sent" to a number
  curl -X POST $sim/_sim/numbers -d '{"phone_number":"+15017122664","behavior":"needs_code"}'
  (Twilio API auth: $account / $token)
Logs: $dir
EOF

if [ "${DEMO_ONESHOT:-0}" = 1 ]; then
	exit 0
fi
echo
echo "Running until Ctrl-C."
wait "${pids[2]}"
