#!/usr/bin/env bash
# The project's test command (make test). It installs what the tests need
# when it is missing, then runs every test. Keep it well under 15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x scripts/install-test-deps.sh ]; then
	scripts/install-test-deps.sh
fi

export GOFLAGS="${GOFLAGS:-} -count=1"
echo "== gofmt"
unformatted=$(git ls-files '*.go' | xargs gofmt -l)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files are not formatted (run gofmt -w):" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test (all packages)"
go test -timeout 10m ./...
# The cluster suite once more with data links on in every node it starts
# (cluster_test.go's dataLinks): the same cross-node tests, with the data
# streams node to node instead of through NATS.
echo "== go test ./cluster with data links (SWITCHBOARD_TEST_DATA_LINKS=1)"
SWITCHBOARD_TEST_DATA_LINKS=1 go test -timeout 5m ./cluster
echo "== go test -race (relay core)"
go test -race -timeout 5m ./protocol/... ./broker/... ./sdk/... ./server/...
if grep -q '^bench-smoke:' Makefile 2>/dev/null; then
	echo "== benchmark smoke"
	make bench-smoke
fi
echo "== all tests passed"
