# syntax=docker/dockerfile:1
# The one `fishapp` binary in a small image; the role is the command:
#   docker run fishapp serve | worker | relay | migrate | replay …
# Build: docker build -t fishapp .   (docs/operations.md, "Deploying")

# --- build -----------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The repository's .cargo/config.toml points the target directory outside the clone (for the
# development machine); inside the image it stays in the build tree.
ENV CARGO_TARGET_DIR=/src/target
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin fishapp \
    && install -D -m 0755 /src/target/release/fishapp /out/fishapp

# --- run -------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 fishapp \
    && useradd --system --uid 10001 --gid fishapp --home-dir /var/lib/fishapp --create-home fishapp \
    && install -d -o 10001 -g 10001 -m 0700 /etc/fishapp/keys
COPY --from=build /out/fishapp /usr/local/bin/fishapp
# Container defaults: listen on every interface, JSON logs, data under the app's home. The
# signing key and the service URLs come from the deployment (FISHAPP_* variables).
# The key variable holds a path, not the key (DL3064 flags it by name).
# hadolint ignore=DL3064
ENV FISHAPP_HTTP_ADDR=0.0.0.0:8080 \
    FISHAPP_HTTP_METRICS_ADDR=0.0.0.0:8083 \
    FISHAPP_RELAY_HTTP_ADDR=0.0.0.0:8081 \
    FISHAPP_WORKER_HTTP_ADDR=0.0.0.0:8082 \
    FISHAPP_NOTIFY_HTTP_ADDR=0.0.0.0:8084 \
    FISHAPP_LOG_FORMAT=json \
    FISHAPP_MEDIA_DIR=/var/lib/fishapp/media \
    FISHAPP_JWT_PRIVATE_KEY_FILE=/etc/fishapp/keys/jwt-private-key.pem
USER 10001:10001
WORKDIR /var/lib/fishapp
EXPOSE 8080 8081 8082 8083 8084
ENTRYPOINT ["/usr/local/bin/fishapp"]
CMD ["serve"]
