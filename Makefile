# Switchboard. `make test` is the one test command (CI runs it through .ci/run).

.PHONY: test build serve soak fuzz

build:
	go build -o bin/switchboard ./cmd/switchboard

# Every test: installs what the tests need when it is missing, then runs them.
test:
	scripts/test.sh

# The broker with the embedded default (dev mode, loopback).
serve:
	go run ./cmd/switchboard serve --dev

# Longer fuzzing of every parser of ours (not part of `make test`).
fuzz:
	scripts/fuzz.sh 60s
