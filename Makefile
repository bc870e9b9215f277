# Switchboard. `make test` is the one test command (CI runs it through .ci/run).

.PHONY: test build serve soak fuzz package

build:
	go build -o bin/switchboard ./cmd/switchboard

# The Debian package (dist/nfpm.yaml): bin/switchboard with the version set,
# the systemd unit, an example config and /etc/default/switchboard, packed by
# nfpm (github.com/goreleaser/nfpm) at a pinned version, run with go run.
VERSION ?= 0.1.0
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
package:
	CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/switchboard-dev/switchboard/internal/version.version=$(VERSION)" -o bin/switchboard ./cmd/switchboard
	mkdir -p dist/out
	VERSION=$(VERSION) ARCH=$$(go env GOARCH) go run $(NFPM) package --config dist/nfpm.yaml --packager deb --target dist/out/

# Every test: installs what the tests need when it is missing, then runs them.
test:
	scripts/test.sh

# The broker with the embedded default (dev mode, loopback).
serve:
	go run ./cmd/switchboard serve --dev

# Longer fuzzing of every parser of ours (not part of `make test`).
fuzz:
	scripts/fuzz.sh 60s

# Benchmarks (bench/, docs/BENCHMARKS.md): Switchboard side by side with a
# direct echo server, nginx (1 and 2 workers), HAProxy (1 and 2 threads) and
# Pushpin, all on loopback; "the best proxy" is the best of nginx and HAProxy.
.PHONY: bench bench-quick bench-smoke

# Full benchmark: 5 interleaved rounds, idle memory at 10,000 and 100,000 (all
# targets; 100,000 needs a file limit above it) and Switchboard's curve at 1,000,
# 5,000 and 19,000, idle memory per wss:// and per permessage-deflate client, and
# the 10-minute soak (15,000 idle + 500 active clients on a production broker in
# a process of its own).
bench:
	go run ./bench/cmd/loadgen -mode full -v -doc docs/BENCHMARKS.md

# Quick benchmark (about 10 minutes): 3 rounds, idle memory at 10,000 (all
# targets), Switchboard's curve at 1,000, 5,000 and 19,000 and its wss:// and
# permessage-deflate idle memory, the soak for 3 minutes; publishes
# its report as bench/results/published.json and into docs/BENCHMARKS.md.
bench-quick:
	go run ./bench/cmd/loadgen -mode quick -v -doc docs/BENCHMARKS.md -out bench/results/published.json

# The soak alone (SOAK=10m by default; the report goes to bench/results/).
.PHONY: bench-soak
bench-soak:
	go run ./bench/cmd/loadgen -mode full -scenarios soak -targets switchboard -soak $${SOAK:-10m} -v

# Smoke (a few seconds): tiny counts, skips peers that are not installed.
bench-smoke:
	go run ./bench/cmd/loadgen -mode smoke -out $${TMPDIR:-/tmp}/switchboard-bench-smoke.json

# Refusal timing (issue 12's privacy promise): can a client tell a service's
# refusal (Go SDK, browser tab) from "no service" by time? Reports the best
# classifier's accuracy with 20 probes per trial (goal: at most 60%).
.PHONY: bench-refusal
bench-refusal:
	go run ./bench/cmd/refusaltiming -n 20

# Bounded in-process soak: 2,000 connections, mixed sizes, random closes (not
# part of make test). The soak at issue 15's size is `make bench-soak`.
soak:
	SWITCHBOARD_SOAK=$${SOAK:-2m} go test -v -count=1 -timeout 15m -run TestSoak ./internal/testkit/soak/ | grep -E 'SOAK|goroutines=|FAIL|ok'
