#!/usr/bin/env bash
# Puts promtool at $1, built from the Prometheus Go module (github.com/prometheus/prometheus, from
# the Go module proxy) through our consumer module tests/promtool, whose go.mod pins the version
# and whose go.sum pins every dependency, as the control plane is built. The alert tests
# (tests/it/alert_rules.rs) run it. A binary that already reports the pinned version is kept: a
# warm run does nothing. To move to another release: `go get github.com/prometheus/prometheus@vX`
# and `go mod tidy` in tests/promtool (with GOTOOLCHAIN=local; Prometheus's go.mod names the Go it
# needs).
set -euo pipefail
out=${1:?usage: $0 OUT}
root=$(cd "$(dirname "$0")/.." && pwd)
module=github.com/prometheus/prometheus
# The Go module is tagged v0.3XX.Y for Prometheus 3.XX.Y (one commit, both tags); Prometheus's
# VERSION file and so `promtool --version` say 3.XX.Y.
version=$(grep -oE "^(require )?[[:space:]]*$module v[0-9.]+" "$root/tests/promtool/go.mod" | awk '{print $NF}')
if ! [[ $version =~ ^v0\.3([0-9][0-9])\.([0-9]+)$ ]]; then
	echo "promtool: cannot read a v0.3XX.Y version of $module from tests/promtool/go.mod" >&2
	exit 1
fi
release=3.$((10#${BASH_REMATCH[1]})).${BASH_REMATCH[2]}

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

if [ -x "$out" ] && "$out" --version 2>/dev/null | head -n 1 | grep -q "^promtool, version $release "; then
	exit 0
fi

echo "promtool: building $module/cmd/promtool $version ($release) from the Go module proxy into $out"
started=$(date +%s)
cd "$root/tests/promtool"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
# Prometheus's release builds (.promu.yml) stamp github.com/prometheus/common/version with the
# VERSION file's number, the revision, branch, user and date; a module build has no git checkout,
# so the revision is the module's tag.
stamp=github.com/prometheus/common/version
go build -trimpath -o "$out.tmp" \
	-ldflags "-s -w -X $stamp.Version=$release -X $stamp.Revision=$version -X $stamp.Branch=HEAD \
		-X $stamp.BuildUser=senderops@ensure-promtool.sh -X $stamp.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)" \
	"$module/cmd/promtool"
source_version=$(cat "$(go list -m -f '{{.Dir}}' "$module")/VERSION")
if [ "$source_version" != "$release" ]; then
	rm -f "$out.tmp"
	echo "promtool: $module $version carries VERSION $source_version, not $release" >&2
	exit 1
fi
mv -f "$out.tmp" "$out"
echo "promtool: $("$out" --version 2>&1 | head -n 1) built in $(($(date +%s) - started))s"
