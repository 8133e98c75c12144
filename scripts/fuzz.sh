#!/usr/bin/env bash
# Runs every Go fuzz target in the repository, one at a time, each for
# FUZZTIME (default 10s) with one worker, and fails if any target fails.
# Targets are discovered with `go test -list '^Fuzz' ./...`, so a new
# FuzzXxx is picked up without editing this script.
#
#   scripts/fuzz.sh                      # every target, 10s each
#   FUZZTIME=5m scripts/fuzz.sh          # a longer local run
#   FUZZTIME=1m FUZZ_SAVE=1 scripts/fuzz.sh
#       ... and copy what the run found interesting (at most FUZZ_KEEP,
#       default 20, per target) from the Go build cache into each
#       package's testdata/fuzz/<Target>/ to commit as seed corpus.
#   scripts/fuzz.sh ./internal/config    # only the packages named
#
# A failure leaves the failing input in testdata/fuzz/<Target>/ (go test
# writes it there); rerun it with `go test -run=<Target>/<file> <pkg>`.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
FUZZ_SAVE=${FUZZ_SAVE:-0}
FUZZ_KEEP=${FUZZ_KEEP:-20}
GO=${GO:-go}
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)

# `go test -list` prints a package's matching names, then "ok  <pkg> ...".
mapfile -t targets < <(
	"$GO" test -list '^Fuzz' "${pkgs[@]}" | awk '
		/^Fuzz/ { names[n++] = $1; next }
		/^ok / { for (i = 0; i < n; i++) print $2 " " names[i]; n = 0 }'
)
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${FUZZTIME} each"

cache=$("$GO" env GOCACHE)/fuzz
failed=()
start=$SECONDS
for t in "${targets[@]}"; do
	pkg=${t% *}
	name=${t#* }
	echo "=== $pkg $name"
	dir=$("$GO" list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$name
	before=$(ls "$dir" 2>/dev/null | sort || true)
	# -fuzzminimizetime bounds the minimisation of each new interesting
	# input (default 60s), which otherwise stalls short runs.
	out=$(mktemp)
	status=0
	"$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
		-fuzzminimizetime 5s -parallel 1 "$pkg" 2>&1 | tee "$out" || status=$?
	if [ "$status" -eq 0 ]; then
		:
	elif grep -q '^    context deadline exceeded$' "$out" && [ "$(ls "$dir" 2>/dev/null | sort)" = "$before" ] &&
		"$GO" test -run "^${name}\$" "$pkg" >/dev/null; then
		# Go 1.26's fuzz coordinator can fail a target with a bare
		# "context deadline exceeded" at the -fuzztime boundary, having
		# found nothing (golang/go#75804, fixed in Go 1.27). No new
		# input was written and the corpus replays clean: not a finding.
		echo "    (Go's fuzz deadline race, go.dev/issue/75804: no input found, corpus replays clean)"
	else
		failed+=("$pkg $name")
	fi
	rm -f "$out"
	if [ "$FUZZ_SAVE" = 1 ] && [ -d "$cache/$pkg/$name" ]; then
		mkdir -p "$dir"
		# The smallest inputs first: they are the easiest to read.
		# (Read whole before head stops reading: under pipefail, ls dying of
		# SIGPIPE would end the script.)
		mapfile -t found < <(ls -S -r "$cache/$pkg/$name")
		for f in "${found[@]:0:FUZZ_KEEP}"; do
			cp -n "$cache/$pkg/$name/$f" "$dir/$f"
		done
		echo "    kept $(ls "$dir" | wc -l) inputs in ${dir#"$PWD"/}"
	fi
done
echo "fuzz.sh: ${#targets[@]} targets in $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'fuzz.sh: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
