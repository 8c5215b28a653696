# syntax=docker/dockerfile:1
#
# fraudops: one static binary, one image, every subcommand (serve | stream | attack | train | simulate).
#
# Two ways to get the binary (build-arg BINARY_SOURCE):
#   build     (default) compile it in the rust builder stage: needs crates.io.
#               buildah bud -t fraudops:dev .
#   prebuilt  copy an already built binary and CA bundle from the build context: no network, no base image
#             pull at all (the final image is FROM scratch), for offline and CI builds:
#               cargo build --profile dist --target x86_64-unknown-linux-musl -p fraudops-cli
#               cp /etc/ssl/certs/ca-certificates.crt target/ca-certificates.crt
#               buildah bud --build-arg BINARY_SOURCE=prebuilt -t fraudops:dev .
#
# The result: FROM scratch + /usr/local/bin/fraudops + a CA bundle, numeric non-root user 65532, nothing
# writable needed except /tmp (mounted as an emptyDir in Kubernetes), so readOnlyRootFilesystem works.

ARG RUST_IMAGE=rust:1-bookworm
ARG BINARY_SOURCE=build

# --- build: compile a static musl binary ---------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
# musl-tools: a musl C compiler for crates with C parts (compression, hashing); the Rust std for musl comes
# from rustup. ca-certificates is already in the rust image; the bundle is copied from here.
# Not version-pinned: the rust image's Debian release already fixes musl-tools' version.
# hadolint ignore=DL3008
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io index and the target directory between builds (BuildKit and buildah both
# support them); the binary is copied out of the cached target dir into the stage.
# --locked: build exactly the committed Cargo.lock. musl-gcc compiles the C parts (bundled librdkafka, zlib).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CC_x86_64_unknown_linux_musl=musl-gcc \
    cargo build --profile dist --locked --target x86_64-unknown-linux-musl -p fraudops-cli \
 && mkdir -p /out \
 && cp target/x86_64-unknown-linux-musl/dist/fraudops /out/fraudops \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

# --- prebuilt: the same two files from the build context -------------------------------------------------------
FROM scratch AS prebuilt
COPY target/x86_64-unknown-linux-musl/dist/fraudops /out/fraudops
COPY target/ca-certificates.crt /out/ca-certificates.crt

# --- the chosen source ---------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM ${BINARY_SOURCE} AS binary

# --- runtime ---------------------------------------------------------------------------------------------------
FROM scratch AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="fraudops" \
      org.opencontainers.image.description="Credit-card fraud scoring: API, Kafka stream worker, attack simulator, trainer" \
      org.opencontainers.image.source="https://github.com/fraudops/fraudops" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# rustls and native-tls both honour SSL_CERT_FILE; the path is also the Debian default that openssl-probe finds.
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary --chmod=0555 /out/fraudops /usr/local/bin/fraudops
# MIMALLOC_ARENA_EAGER_COMMIT=0: mimalloc commits its first arena lazily (serve idles at ~15 MB resident
# instead of ~25 MB, measured with /proc/PID/status right after start).
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    MIMALLOC_ARENA_EAGER_COMMIT=0 \
    TMPDIR=/tmp \
    PORT=8000
# Numeric, so Kubernetes can verify runAsNonRoot without an /etc/passwd (scratch has none). 65532 is the
# conventional "nonroot" of distroless images.
USER 65532:65532
# 8000: the API and its /metrics; 9100: /metrics of the stream worker.
EXPOSE 8000 9100
ENTRYPOINT ["/usr/local/bin/fraudops"]
CMD ["serve"]
