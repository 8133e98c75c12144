# syntax=docker/dockerfile:1
# Gatehouse container image: a static binary on distroless, non-root.
#
#   docker build -t gatehouse .        (or: buildah bud / podman build)
#   docker run --read-only -p 8080:8080 \
#     -v $PWD/gatehouse.yaml:/etc/gatehouse/gatehouse.yaml:ro \
#     -v gatehouse-state:/var/lib/gatehouse gatehouse
#
# The config is mounted at /etc/gatehouse/gatehouse.yaml; the file store
# and audit files belong under the /var/lib/gatehouse volume (store:
# {path: /var/lib/gatehouse/gatehouse-state.db}), so the root file system
# can be read-only.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer is reused while only the code changes.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
ARG REVISION=""
ARG BUILD_TIME=""
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION} -X main.buildTime=${BUILD_TIME}" \
      -o /out/gatehouse ./cmd/gatehouse \
 && mkdir -p /out/var/lib/gatehouse

# distroless/static: CA certificates, tzdata and /etc/passwd with the
# nonroot user (65532), no shell. The binary embeds Go's time zone data
# too (time/tzdata).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /gatehouse
COPY --from=build --chown=65532:65532 /out/var/lib/gatehouse /var/lib/gatehouse
USER 65532:65532
VOLUME ["/var/lib/gatehouse"]
WORKDIR /var/lib/gatehouse
EXPOSE 8080 9901
# No shell or curl in the image: the binary probes the admin /healthz.
# Set GATEHOUSE_HEALTHCHECK_URL when the admin listener is elsewhere.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/gatehouse", "healthcheck"]
ENTRYPOINT ["/gatehouse"]
CMD ["serve", "--config", "/etc/gatehouse/gatehouse.yaml"]
