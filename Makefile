# Hearth: the two commands a newcomer needs are `make run` and `make test`.
# Both install what is missing on a fresh Debian machine with Swift 6.3.

SWIFT        ?= swift
PORT         ?= 9000
HOST         ?= 127.0.0.1
DATA_DIR     ?= ./hearth-data
VENV         := .venv
PYTHON       := $(VENV)/bin/python
# Debian packages: what building and running the server needs (make run), and what the tests
# and benchmarks need besides (make test, make bench).
SERVER_PACKAGES := zlib1g-dev libssl-dev
TEST_PACKAGES   := python3-venv curl wrk redis-server chromium chromium-driver postgresql nginx

.PHONY: run test build release deps server-deps system-deps install-packages python-deps compat bench clean console-screenshot soak

RULES        ?= Examples/factory-webhooks/database.rules.json
# Writes per second (and per burst) one client address may make; the admin is not limited.
WRITE_RATE   ?= 10
WRITE_BURST  ?= 100

## Build in release mode and start the server on $(HOST):$(PORT) with data in $(DATA_DIR),
## under the factory-webhook rules (anonymous callers may only append validated records to
## /blessing, /blinkup and /testresult; reads need a token or the admin token), with a
## write rate limit per client address.
run: server-deps release
	.build/release/hearth serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --rules $(RULES) \
		--write-rate-limit $(WRITE_RATE) --write-rate-burst $(WRITE_BURST)

## Build once (debug, with tests) and run every test: Swift unit and HTTP tests, the
## Python compatibility suite against a live server, and a 60-second soak run. The short soak
## holds 200 streams, not `make soak`'s 400: against the debug server on two cores, the Python
## client reading 400 streams' events fell behind (late reads counted as missing events, with
## this and earlier servers alike).
test: deps build
	$(SWIFT) test --skip-build --parallel
	$(PYTHON) -m pytest -q Tests/Compat --hearth-binary .build/debug/hearth
	$(PYTHON) Tests/Soak/soak.py --seconds 60 --streams 200 --hearth-binary .build/debug/hearth

## Ten minutes of mixed load on loopback (writes, reads, queries, 400 churning streams), then
## SIGTERM and `hearth verify`; fails on any unexpected error or unbounded memory growth.
SOAK_SECONDS ?= 600
soak: deps
	$(SWIFT) build -c release --product hearth
	$(PYTHON) Tests/Soak/soak.py --seconds $(SOAK_SECONDS) --hearth-binary .build/release/hearth

build:
	$(SWIFT) build --build-tests

release:
	$(SWIFT) build -c release --product hearth

## Benchmarks print figures; they never fail on time. See Docs/PERFORMANCE.md.
bench: deps
	$(SWIFT) build -c release --product hearth
	$(SWIFT) build -c release --product HearthBench
	$(PYTHON) Benchmarks/run.py --release-dir .build/release

## Regenerate Docs/console.png: the console's browser test (headless Chromium), with a screenshot.
console-screenshot: deps
	$(SWIFT) build --product hearth
	HEARTH_SCREENSHOT=1 $(PYTHON) -m pytest -q Tests/Compat/test_console.py --hearth-binary .build/debug/hearth

deps: system-deps python-deps

# Install only what is missing (root on CI and on the development machines).
server-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(SERVER_PACKAGES)"

system-deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(SERVER_PACKAGES) $(TEST_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

python-deps: $(VENV)/.installed

$(VENV)/.installed: Tests/Compat/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(PYTHON) -m pip install -q -r Tests/Compat/requirements.txt
	touch $@

clean:
	rm -rf .build $(VENV)
