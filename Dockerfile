# syntax=docker/dockerfile:1
# The SenderOps operator image: `senderops` alone on distroless, running as non-root (65532).
#   docker build -t ghcr.io/senderops/senderops:0.1.0 .
# deploy/ and the Helm chart run it with `run` and flags; see deploy/README.md.
#
# Why gcr.io/distroless/cc-debian12 rather than a static musl build on distroless/static:
# - the binary is built against glibc on Debian 12 (bookworm), the same glibc the runtime image
#   has, with no cross toolchain (rustls with ring needs a C compiler for the target; musl-gcc
#   is one more thing to install and pin);
# - the operator links jemalloc as its allocator (see src/main.rs), built from source by cargo
#   with the bookworm image's C toolchain;
# - cc-debian12 is distroless/static plus glibc and libgcc: still no shell, no package manager,
#   and it carries the CA bundle (/etc/ssl/certs) that TLS to Twilio and the API server needs.
# The :nonroot tag runs as uid/gid 65532, the user the manifests pin (runAsUser: 65532).
#
# Build arguments, for machines that cannot pull these bases (this repository's tests build the
# image with buildah on such a machine: hack/image/build.sh):
#   BUILDER_IMAGE  a Debian 12 image with cargo and a C toolchain on PATH and CARGO_HOME
#                  /usr/local/cargo, as the rust images have them (default rust:1.95-bookworm)
#   RUNTIME_IMAGE  an image with distroless cc-debian12:nonroot's content: glibc, libgcc, the
#                  CA bundle, user and group 65532, no shell (default the real one)
ARG BUILDER_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the registry and target/ between builds on the same builder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p senderops \
    && install -D -m 0755 target/release/senderops /out/senderops

FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/senderops /senderops
USER 65532:65532
ENTRYPOINT ["/senderops"]
CMD ["run"]
