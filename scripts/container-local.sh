#!/bin/sh
# container-local.sh builds the gatehouse image without a registry: the
# same layout as the Dockerfile's distroless image (/gatehouse, CA
# certificates, the nonroot user 65532, a /var/lib/gatehouse volume, the
# healthcheck), but FROM scratch with the CA bundle and user entries taken
# from this host, for machines that cannot pull golang or distroless.
# Needs buildah. The Dockerfile stays the image to publish.
#
#   scripts/container-local.sh [IMAGE]     (default gatehouse:local)
set -eu
case "${1:-}" in -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
image=${1:-gatehouse:local}
cd "$(dirname "$0")/.."
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/root/etc/ssl/certs" "$ctx/root/var/lib/gatehouse" "$ctx/root/etc/gatehouse" "$ctx/root/tmp"
CGO_ENABLED=0 GOFLAGS=-buildvcs=false ${GO:-go} build -trimpath \
	-ldflags "-s -w -X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev) -X main.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
	-o "$ctx/root/gatehouse" ./cmd/gatehouse
cp /etc/ssl/certs/ca-certificates.crt "$ctx/root/etc/ssl/certs/"
echo 'root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$ctx/root/etc/passwd"
echo 'root:x:0:
nonroot:x:65532:' >"$ctx/root/etc/group"
cat >"$ctx/Containerfile" <<'CF'
FROM scratch
COPY root/ /
USER 65532:65532
VOLUME ["/var/lib/gatehouse"]
WORKDIR /var/lib/gatehouse
EXPOSE 8080 9901
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/gatehouse", "healthcheck"]
ENTRYPOINT ["/gatehouse"]
CMD ["serve", "--config", "/etc/gatehouse/gatehouse.yaml"]
CF
chown -R 65532:65532 "$ctx/root/var/lib/gatehouse"
buildah bud --format docker -f "$ctx/Containerfile" -t "$image" "$ctx"
