# mfa: build and test entry points. `make test` is the one command CI runs.

CARGO ?= cargo

.PHONY: all build test lint fmt

all: build

build:
	$(CARGO) build --workspace --release

# Builds and runs every test: unit tests and the integration tests that drive the binaries.
test: lint
	# The PAM tests load target/debug/libpam_mfa.so: build every target first.
	$(CARGO) build --workspace --all-targets --locked
	$(CARGO) test --workspace --all-targets --locked
	$(CARGO) test --workspace --doc --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all
