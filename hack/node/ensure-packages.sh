#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are missing (the test node's containerd,
# runc, CNI plugins, iptables, buildah, debootstrap), with apt-get as root. Nothing to do when
# all are there. Debian's containerd service is never started: hack/node/run.sh runs its own.
set -euo pipefail
missing=()
for package in "$@"; do
	dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
((${#missing[@]})) || exit 0
[ "$(id -u)" = 0 ] || { echo "packages missing (${missing[*]}); run as root or apt-get install them" >&2; exit 1; }
echo "node: installing ${missing[*]} from Debian" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packages' services (containerd) from starting where an init system runs.
policy=/usr/sbin/policy-rc.d
cleanup_policy=false
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && cleanup_policy=true
fi
apt-get install -y -qq "${missing[@]}" >/dev/null
! $cleanup_policy || rm -f "$policy"
