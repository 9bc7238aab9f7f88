# syntax=docker/dockerfile:1.7
# A static, non-root image holding only the operator binary.
#   docker build -t ghcr.io/hanzos3/hanzo-s3-operator:dev .
# (Docker cannot run on the project's build machines; CI builds and tests the binary itself.)

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# musl makes the binary fully static (rustls and ring need no system OpenSSL or libc at run time).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin hanzo-s3-operator \
 && cp target/x86_64-unknown-linux-musl/release/hanzo-s3-operator /hanzo-s3-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /hanzo-s3-operator /hanzo-s3-operator
# 65532 is distroless' "nonroot"; the deploy manifests also set runAsNonRoot and a read-only root.
USER 65532:65532
ENTRYPOINT ["/hanzo-s3-operator"]
CMD ["run"]
