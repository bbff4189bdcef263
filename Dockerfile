# syntax=docker/dockerfile:1
# Sluice: one image for the coordinator, the workers and the tools (verify, status, gen).
#
#   docker build -t sluice:dev .
#   docker run --rm sluice:dev --help
#
# Build stage: the official Swift image (Debian 12 "bookworm" variant, so that the system
# libraries linked here are the same versions as in the runtime stage). Swift 6.1 is the oldest
# toolchain the package accepts (swift-tools-version 6.1, grpc-swift-2); the project is developed
# and tested with 6.3, the default here. Override with --build-arg SWIFT_VERSION=6.1.
ARG SWIFT_VERSION=6.3
ARG DEBIAN_RUNTIME=bookworm-slim

FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        liblz4-dev libpq-dev libsqlite3-dev librdkafka-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a change in Sources/ does not fetch them again. Package.resolved
# is not committed; when the build context has one, it pins the versions.
COPY Package.* ./
RUN swift package resolve
COPY Sources ./Sources
# SwiftPM refuses a package whose declared test targets have no directory.
COPY Tests ./Tests
# The Swift runtime and Foundation are linked statically: the runtime image needs no Swift
# toolchain, only the C libraries below. `ldd` is printed so the build log shows what remains.
RUN swift build -c release --static-swift-stdlib --product sluice \
 && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/sluice" /out/sluice \
 && ldd /out/sluice

# Runtime stage: slim Debian 12 with only the shared libraries the binary links (lz4, libpq,
# SQLite, librdkafka) and CA certificates. It keeps /bin/sleep, which the Kubernetes preStop hooks use.
FROM debian:${DEBIAN_RUNTIME}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        liblz4-1 libpq5 libsqlite3-0 librdkafka1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sluice \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sluice --no-create-home \
        --shell /usr/sbin/nologin sluice \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/sluice
COPY --from=build /out/sluice /usr/local/bin/sluice
COPY jobs /etc/sluice/jobs
# Fails the build if a shared library is missing from this stage.
RUN ["/usr/local/bin/sluice", "--help"]
# Numeric user, so that Kubernetes' runAsNonRoot can check it without resolving a name.
USER 10001:10001
WORKDIR /var/lib/sluice
# 7400: coordinator gRPC (mutual TLS). 9090: /metrics, /healthz, /readyz.
EXPOSE 7400 9090
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--help"]
