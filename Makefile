# The one test command: README.md names it and .ci/run calls it.
GO ?= go
# Pinned: a new staticcheck release must not fail CI on its own.
STATICCHECK ?= v0.8.2
# Each fuzz target runs this long in `make test` (a short, bounded pass
# over the seed corpora and a little beyond); `make fuzz` runs longer.
FUZZTIME ?= 5s

.PHONY: test build demo bench vet fuzz soak

test: vet
	$(GO) test -race -count=1 -timeout 30m ./...
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) ./...

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
