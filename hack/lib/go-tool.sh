# shellcheck shell=bash
# What every hack/ensure-*.sh that builds a Go command does: build PACKAGE at VERSION from the Go
# module proxy into OUT (`go install`, no cgo, the machine's own Go), unless the binary at OUT
# already reports VERSION, so a warm run does nothing. Sourced; the caller sets -euo pipefail.
#
#   ensure_go_tool NAME OUT PACKAGE VERSION REPORTED [LDFLAGS]
#
# NAME is the command's name (the file go install writes), REPORTED a function that prints the
# version the binary given as its argument reports, LDFLAGS what the command's own release build
# stamps into it (added to -s -w).
ensure_go_tool() {
	local name=$1 out=$2 package=$3 version=$4 reported=$5 ldflags=${6:-}
	mkdir -p "$(dirname "$out")"
	out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
	if [ -x "$out" ] && [ "$("$reported" "$out" 2>/dev/null)" = "$version" ]; then
		return 0
	fi
	echo "$name: building $package@$version from the Go module proxy into $out"
	local started gobin
	started=$(date +%s)
	gobin=$(mktemp -d)
	# shellcheck disable=SC2064 # the directory is known now
	trap "rm -rf '$gobin'" EXIT
	GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN=$gobin go install -trimpath \
		-ldflags "-s -w $ldflags" "$package@$version"
	mv -f "$gobin/$name" "$out"
	echo "$name: $("$reported" "$out") built in $(($(date +%s) - started))s"
}
