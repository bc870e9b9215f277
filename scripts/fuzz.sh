#!/usr/bin/env bash
# Fuzz every parser of ours for the given time each (default 30s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-30s}"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
		echo "== $pkg $f ($t)"
		go test -run XXX -fuzz "^$f\$" -fuzztime "$t" "$pkg"
	done
done
