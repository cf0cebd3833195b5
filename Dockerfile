# Gatehouse container image. Build from a clone of the repository:
#
#   docker build --build-arg GATEHOUSE_GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t gatehouse .
#
# The runtime stage holds only the server binary, the hash file beside it
# (the browser bundle's content-hashed names), the site directory, CA
# certificates and the C libraries the binary links (glibc, libgcc_s, and
# OpenSSL's libssl3, which webauthn-rs uses for passkeys: the distroless
# "cc" image, which carries all three); it runs as a non-root user, and its root
# filesystem can be read-only. end2end/deploy/test_layout.py assembles this
# layout from the COPY lines below and starts it.

FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ARG GATEHOUSE_GIT_COMMIT=unknown
ENV GATEHOUSE_GIT_COMMIT=${GATEHOUSE_GIT_COMMIT}
# Installs the pinned tools and builds the release: the optimised server and
# the browser bundle (wasm-opt, content hashes, brotli and gzip copies).
RUN bash .ci/dev release && mkdir -p /src/target/empty-data

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
WORKDIR /app
COPY --from=build /src/target/release/gatehouse /app/gatehouse
COPY --from=build /src/target/release/hash.txt /app/hash.txt
COPY --from=build /src/target/site /app/site
# The data directory, owned by the server's user: a volume mounted there
# (docker run -v gatehouse-data:/data) starts with that owner. On
# Kubernetes an emptyDir is mounted there.
COPY --from=build --chown=65532:65532 /src/target/empty-data /data
ENV LEPTOS_SITE_ROOT=/app/site \
    GATEHOUSE_LISTEN=0.0.0.0:3000 \
    GATEHOUSE_DATA_DIR=/data \
    GATEHOUSE_DATABASE_URL=sqlite:///data/gatehouse.db \
    GATEHOUSE_LOG_FORMAT=json
# 65532: distroless's "nonroot" user.
USER 65532:65532
EXPOSE 3000 9100
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 CMD ["/app/gatehouse", "healthcheck"]
ENTRYPOINT ["/app/gatehouse"]
CMD ["serve"]
