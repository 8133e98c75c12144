# The one test command: README.md names it and .ci/run calls it.
GO ?= go
# Pinned: a new staticcheck release must not fail CI on its own.
STATICCHECK ?= v0.8.2
# Each fuzz target runs this long in `make test` (a short, bounded pass
# over the seed corpora and a little beyond); `make fuzz` runs longer.
FUZZTIME ?= 5s

.PHONY: test check build demo bench vet fuzz soak release

# Every stage prints how long it took (scripts/stage.sh).
test: vet
	scripts/stage.sh tests-race $(GO) test -race -count=1 -timeout 45m ./...
	# Tests of a timing shape (not of durations) mean nothing under the race
	# detector's instrumentation; they run here without it.
	scripts/stage.sh tests-timing $(GO) test -count=1 -run 'TestDecryptionRefusalTiming' ./internal/policy/wssecurity/
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/stage.sh fuzz scripts/fuzz.sh

# The quick local loop: formatting, vet, staticcheck and every test,
# without the race detector and without fuzzing.
check: vet
	scripts/stage.sh tests $(GO) test -count=1 -timeout 30m ./...

vet:
	@scripts/stage.sh gofmt sh -c 'out=$$(gofmt -l $$(git ls-files "*.go" 2>/dev/null || find . -name "*.go")); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }'
	scripts/stage.sh vet $(GO) vet ./...
	scripts/stage.sh staticcheck $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

build:
	$(GO) build -o bin/gatehouse ./cmd/gatehouse

demo:
	$(GO) run ./cmd/gatehouse demo

bench: build
	bench/run.sh

fuzz:
	FUZZTIME=$${FUZZTIME_LONG:-1m} GO=$(GO) scripts/fuzz.sh

soak: build
	scripts/soak.sh

# Static release binaries (linux/amd64, linux/arm64, darwin/amd64,
# darwin/arm64) in dist/, with SHA256SUMS and a CycloneDX SBOM; see
# scripts/release.sh --help. VERSION defaults to git describe.
release:
	GO=$(GO) scripts/release.sh $(if $(VERSION),--version $(VERSION))
