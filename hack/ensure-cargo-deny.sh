#!/usr/bin/env bash
# Puts cargo-deny at $1 (a path ending in bin/cargo-deny), installed from crates.io with its own
# lock file, pinned: `cargo install cargo-deny --locked --version X --root ROOT`. `make lint`
# runs it with deny.toml (licenses, bans, sources). A binary that already reports the pinned
# version is kept: a warm run does nothing.
set -euo pipefail
out=${1:?usage: $0 ROOT/bin/cargo-deny}
version=0.20.2

mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
[ "$(basename "$(dirname "$out")")" = bin ] || { echo "$0: $out must be ROOT/bin/cargo-deny" >&2; exit 1; }
root=$(dirname "$(dirname "$out")")

# `cargo-deny --version` prints "cargo-deny VERSION".
if [ -x "$out" ] && [ "$("$out" --version 2>/dev/null)" = "cargo-deny $version" ]; then
	exit 0
fi

echo "cargo-deny: installing $version from crates.io into $root"
started=$(date +%s)
# Its own target directory, so this build never waits on (or dirties) the workspace's target/.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
CARGO_TARGET_DIR=$build cargo install cargo-deny --locked --version "$version" --root "$root" --force --quiet
echo "cargo-deny: $("$out" --version) built in $(($(date +%s) - started))s"
