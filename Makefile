# studio-uploads: every command a newcomer needs. The virtualenv is made and filled on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run demo token test lint typecheck unit bench clean

help:
	@echo "make demo   - the whole system on this machine uploading a real HLS ladder"
	@echo "make test   - lint, type checks and the test suite"
	@echo "make run    - the local runtime (HTTP API, WebSocket, S3/SQS, workers) until Ctrl-C"
	@echo "make token  - print an admin JWT for the local runtime"
	@echo "make bench  - benchmarks against aws s3 sync, s5cmd and rclone"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m chalicelib.local.run

token: $(STAMP)
	@$(BIN)/python -m chalicelib.local.token

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy chalicelib

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf .local build .pytest_cache .mypy_cache .ruff_cache
