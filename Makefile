PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
# Two stamps: what serving the examples needs, and the rest that the tests need.
SERVE_STAMP := $(VENV)/.serve-$(HASH)
STAMP := $(VENV)/.test-$(HASH)

.PHONY: install install-serve serve pipeline test lint clean bench bench-coldstart bench-models bench-peers bench-sandbox bench-async bench-provided bench-gateway bench-boot bench-triggers bench-jobs bench-tracing bench-console bench-cpu

$(SERVE_STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing mlambda and what the examples need (scikit-learn, skops) into $(VENV)"
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[examples,sklearn]'
	@rm -f $(VENV)/.serve-*
	@touch $@

$(STAMP): $(SERVE_STAMP)
	@echo "==> installing what the tests need (every model runtime, PyTorch CPU, linters) into $(VENV)"
	$(BIN)/python -m pip install --disable-pip-version-check --progress-bar on -e '.[test]'
	@# The console's browser tests drive Debian's Chromium (Playwright's own download cannot
	@# work here); installed where apt can, else those tests say why they are skipped.
	@command -v chromium >/dev/null || { echo "==> installing chromium (apt-get)"; \
		apt-get install -y -q chromium || echo "==> no chromium: the console's browser tests need it"; }
	@rm -f $(VENV)/.test-*
	@touch $@

install-serve: $(SERVE_STAMP)

install: $(STAMP)

examples/fraud/model.joblib: examples/fraud/train.py $(SERVE_STAMP)
	$(BIN)/python examples/fraud/train.py

examples/iris/iris.skops: examples/iris/train.py $(SERVE_STAMP)
	$(BIN)/python examples/iris/train.py

## serve: install into .venv and run the platform on 127.0.0.1:8080 with the examples deployed
serve: install-serve examples/fraud/model.joblib examples/iris/iris.skops
	$(BIN)/mlambda serve --deploy examples/hello --deploy examples/fraud --deploy examples/iris

## pipeline: the upload -> object trigger -> model -> results pipeline, end to end (examples/pipeline)
pipeline: install-serve examples/fraud/model.joblib
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[pipeline]'
	$(BIN)/python examples/pipeline/run.py

## test: install and run lint, type checks and the whole test suite
test: install
	$(BIN)/ruff check src tests examples bench
	$(BIN)/ruff format --check src tests examples bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check --fix src tests examples bench
	$(BIN)/ruff format src tests examples bench

clean:
	rm -rf $(VENV) .mlambda

## bench: every benchmark below (each writes its own section of bench/RESULTS.md)
bench: bench-coldstart bench-models bench-sandbox bench-async bench-provided bench-gateway bench-tracing bench-console

## bench-coldstart: cold start of handler functions, every tier side by side
bench-coldstart: install examples/fraud/model.joblib
	$(BIN)/python bench/coldstart.py

## bench-provided: cold start of a provided runtime (awslambdaric) beside a Python function
bench-provided: install
	$(BIN)/python bench/provided.py

## bench-gateway: the HTTP stack, mlambda's hello beside a bare Starlette app (needs wrk; py-spy
## for the breakdown of the gateway's time)
bench-gateway: install
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "bench-gateway needs wrk"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/gateway.py

## bench-boot: `mlambda serve --deploy` from launch to the first answer, with where the time goes,
## beside a FastAPI app (the peer benchmark's, from its venv: make bench-peers builds it)
bench-boot: install
	$(BIN)/python bench/boot.py --launches 5 --peer fastapi --write

## bench-sandbox: what the sandbox costs a cold start, on vs off side by side
bench-sandbox: install examples/fraud/model.joblib
	$(BIN)/python bench/sandbox.py

## bench-async: asynchronous invocation against sync invoke, side by side (needs wrk)
bench-async: install
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "bench-async needs wrk"; exit 1; }
	$(BIN)/python bench/async.py

## bench-cpu: a CPU-bound handler's duration with cpu = "proportional" as memory grows
bench-cpu: install
	$(BIN)/python bench/cpu.py

## bench-console: the console's pages against 100 ms with 200 functions deployed
bench-console: install
	$(BIN)/python bench/console.py

## bench-tracing: a warm invoke with tracing off and on (OTLP to a local receiver), side by side
bench-tracing: install
	$(BIN)/python bench/tracing.py

## bench-jobs: batch jobs against the function's saturated sync rate, side by side
bench-jobs: install examples/fraud/model.joblib
	$(BIN)/python bench/jobs.py

## bench-triggers: queue triggers draining a backlog against a bare consumer loop, per broker
bench-triggers: install
	$(BIN)/python bench/triggers.py

## bench-models: model functions, batching off vs on (wrk over HTTP) and cold start per runtime
bench-models: install
	@command -v wrk >/dev/null || { echo "bench-models needs wrk: apt-get install -y wrk"; exit 1; }
	$(BIN)/python bench/models.py

## bench-peers: mlambda against BentoML, Ray Serve, LitServe, MLServer and a FastAPI app, side by
## side (each peer in its own venv under ~/.cache/mlambda-bench; about an hour; not part of test)
bench-peers: install
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "bench-peers needs wrk"; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/peers/run.py
