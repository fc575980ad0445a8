#!/usr/bin/env bash
# Builds, into buildah's local storage, the two base images the Dockerfile's build arguments
# name when the real ones cannot be pulled (this repository's CI reaches Debian's archive and
# crates.io, not Docker Hub or gcr.io):
#
#   localhost/senderops/builder:TAG   BUILDER_IMAGE: Debian 12 (debootstrap, minbase) with gcc
#                                     and make, plus this machine's Rust toolchain under
#                                     /usr/local/rust (rustup cannot download one here) and its CA
#                                     bundle (cargo reaches crates.io through this machine's network,
#                                     which may present its own CA); CARGO_HOME=/usr/local/cargo as
#                                     in the rust images. Only the build stage sees it.
#   localhost/senderops/cc-debian12:TAG
#                                     RUNTIME_IMAGE: what distroless cc-debian12:nonroot holds,
#                                     from Debian's own packages: libc6, libgcc-s1, the CA bundle
#                                     of ca-certificates, /etc/passwd and /etc/group with user and
#                                     group 65532 (nonroot), /tmp, and no shell
#
# TAG is a hash of this script and the toolchain's version: an image already built for both is
# kept, so a warm run does nothing. Prints the two references, one per line:
#   builder=REF
#   runtime=REF
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${IMAGE_WORK_DIR:-$root/target/image/bases}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in buildah debootstrap dpkg-deb apt-get rustc; do
	command -v "$tool" >/dev/null || { echo "bases.sh needs $tool (make image installs it)" >&2; exit 1; }
done
sysroot=$(rustc --print sysroot)
toolchain=$(rustc --version)
host_bundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$host_bundle" ] || { echo "bases.sh needs the machine's CA bundle at $host_bundle" >&2; exit 1; }
tag=$( (cat "$0" "$host_bundle"; echo "$toolchain") | sha256sum | cut -c1-12)
builder=localhost/senderops/builder:$tag
runtime=localhost/senderops/cc-debian12:$tag

exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }
log() { echo "bases: $*" >&2; }

# A rootfs directory as a one-layer image, with the given `buildah config` settings.
commit_rootfs() {
	local rootfs=$1 ref=$2
	shift 2
	local ctr
	ctr=$(buildah from scratch)
	buildah copy --quiet "$ctr" "$rootfs" / >/dev/null
	buildah config "$@" "$ctr"
	buildah commit --quiet --rm "$ctr" "$ref" >/dev/null
}

build_runtime() {
	local dir=$work/runtime rootfs=$work/runtime/rootfs
	rm -rf "$dir"
	mkdir -p "$dir/debs" "$rootfs"
	# (apt warns that it downloads as root, unsandboxed: it does, into this directory.)
	(cd "$dir/debs" && apt-get download -q libc6 libgcc-s1 ca-certificates base-files >/dev/null 2>&1) ||
		{ echo "bases: apt-get download of libc6 libgcc-s1 ca-certificates base-files failed" >&2; exit 1; }
	for deb in "$dir"/debs/libc6_*.deb "$dir"/debs/libgcc-s1_*.deb "$dir"/debs/ca-certificates_*.deb; do
		dpkg-deb -x "$deb" "$rootfs"
	done
	# Only os-release of base-files: scanners read it; the rest is a shell's world.
	dpkg-deb --fsys-tarfile "$dir"/debs/base-files_*.deb | tar -x -C "$rootfs" ./usr/lib/os-release
	ln -s ../usr/lib/os-release "$rootfs/etc/os-release"
	# The bundle update-ca-certificates would write (ca-certificates' postinst, not run here).
	mkdir -p "$rootfs/etc/ssl/certs"
	cat "$rootfs"/usr/share/ca-certificates/mozilla/*.crt >"$rootfs/etc/ssl/certs/ca-certificates.crt"
	rm -rf "$rootfs"/usr/sbin "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/lintian \
		"$rootfs"/usr/share/locale "$rootfs"/usr/share/ca-certificates "$rootfs"/etc/ca-certificates* \
		"$rootfs"/usr/lib/x86_64-linux-gnu/gconv
	printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
		'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$rootfs/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$rootfs/etc/group"
	echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
	mkdir -p "$rootfs/tmp" "$rootfs/home/nonroot" "$rootfs/root"
	chmod 1777 "$rootfs/tmp"
	chown 65532:65532 "$rootfs/home/nonroot"
	chmod 700 "$rootfs/root"
	for shell in bin/sh bin/bash usr/bin/sh usr/bin/bash bin/dash usr/bin/dash; do
		[ ! -e "$rootfs/$shell" ] || { echo "bases: the runtime rootfs has a shell: /$shell" >&2; exit 1; }
	done
	commit_rootfs "$rootfs" "$runtime" --user 65532:65532 --workingdir /home/nonroot \
		--env PATH=/usr/local/bin:/usr/bin:/bin --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
		--label org.opencontainers.image.description="distroless cc-debian12:nonroot stand-in, from Debian packages"
	rm -rf "$dir"
}

build_builder() {
	local dir=$work/builder rootfs=$work/builder/rootfs
	rm -rf "$dir"
	mkdir -p "$dir"
	debootstrap --variant=minbase --include=gcc,libc6-dev,make,ca-certificates "$suite" "$rootfs" "$mirror" \
		>"$dir/debootstrap.log" 2>&1 || { tail -n 20 "$dir/debootstrap.log" >&2; exit 1; }
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
		"$rootfs"/usr/share/man "$rootfs"/usr/share/locale
	# The toolchain without its documentation (share/), as the rust images' minimal profile.
	mkdir -p "$rootfs/usr/local/rust" "$rootfs/usr/local/cargo"
	cp -a "$sysroot"/bin "$sysroot"/lib "$rootfs/usr/local/rust/"
	[ ! -d "$sysroot/libexec" ] || cp -a "$sysroot/libexec" "$rootfs/usr/local/rust/"
	cp "$host_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
	commit_rootfs "$rootfs" "$builder" --env CARGO_HOME=/usr/local/cargo \
		--env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--label org.opencontainers.image.description="rust:bookworm stand-in: Debian 12 and $toolchain"
	rm -rf "$dir"
}

started=$(date +%s)
if exists "$runtime"; then log "$runtime is built"; else log "building $runtime"; build_runtime; fi
if exists "$builder"; then log "$builder is built"; else log "building $builder ($toolchain)"; build_builder; fi
log "ready in $(($(date +%s) - started))s"
echo "builder=$builder"
echo "runtime=$runtime"
