# Every target installs what it needs into .venv on first use.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PIP_VERSION := 26.3
PROFILE ?= quick
# Where ablate writes (ablations.engine.storage.results_dir, tracking.tracking_uri): ui and dashboard read the same.
RESULTS = $(or $(ABLATE_RESULTS_DIR),mlruns)
TRACKING_URI = $(or $(MLFLOW_TRACKING_URI),sqlite:///$(RESULTS)/mlflow.db)
WORKERS ?= 1
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.DEFAULT_GOAL := help
.PHONY: help install lock ablate smoke full test test-slow test-process report ui dashboard bench bench-study verdict-rates clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'

# The whole dependency tree is pinned by requirements.lock (`make lock`), not only what pyproject.toml names.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the suite with every dependency at its version in requirements.lock

lock: $(STAMP) ## regenerate requirements.lock from pyproject.toml (Python 3.11, x86-64 Linux, extras dev and gpu); keeps each pin that still fits, UPGRADE=1 moves all to the newest
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[lock]'
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra gpu --extra lock --python-version 3.11 \
		--python-platform x86_64-unknown-linux-gnu --annotation-style line $(if $(UPGRADE),--upgrade) --output-file $(LOCK)

ablate: $(STAMP) ## run every ablation (PROFILE=quick by default) into mlruns/, then write the report
	$(BIN)/ablate run --profile $(PROFILE)

smoke: $(STAMP) ## every ablation on the seconds-long smoke profile
	$(BIN)/ablate run --profile smoke

full: $(STAMP) ## the full grids (meant for a GPU: pip install -e '.[gpu]'); WORKERS=N processes share each grid, N checked against this machine (2 per core or 4 per GPU, 2 GiB each)
	$(BIN)/ablate run --profile full --workers $(WORKERS)

test: $(STAMP) ## check the import contracts, then run the test suite
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -q -n 2

test-process: $(STAMP) ## only the tests that start, race or kill processes (.ci/run repeats them)
	$(BIN)/pytest -q -n 2 -m process

test-slow: $(STAMP) ## only the tests marked slow (longer end-to-end runs; .ci/run runs them)
	$(BIN)/pytest -q -n 2 -m slow

report: $(STAMP) ## rewrite report.html in the results folder (mlruns/ or ABLATE_RESULTS_DIR) from MLflow (MLFLOW_TRACKING_URI if set)
	$(BIN)/ablate report

ui: $(STAMP) ## MLflow UI on http://127.0.0.1:5000 for the store ablate writes (MLFLOW_TRACKING_URI, else ABLATE_RESULTS_DIR or mlruns/)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri $(TRACKING_URI) --host 127.0.0.1 --port 5000 --workers 1

bench: $(STAMP) ## suite vs plain model.fit loop on the vanishing_gradients grid; prints the time ratio
	$(BIN)/python -m benchmarks.bench

clean: ## remove results (mlruns/ content) and caches; keeps .venv
	find mlruns -mindepth 1 ! -name .gitkeep ! -name README.md -exec rm -rf {} +
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

dashboard: $(STAMP) ## Optuna dashboard on http://127.0.0.1:8080 for the default study storage (optuna.journal in mlruns/ or ABLATE_RESULTS_DIR)
	@mkdir -p $(RESULTS) && touch $(RESULTS)/optuna.journal
	$(BIN)/optuna-dashboard $(RESULTS)/optuna.journal --host 127.0.0.1 --port 8080

verdict-rates: $(STAMP) ## the verdict policy's simulated false-reproduced rate and power per claim shape, old policy beside new
	$(BIN)/python -m ablations.engine.verdict_rates

bench-study: $(STAMP) ## ablate study: 1 vs 2 workers, pruning vs none, ours vs keras-tuner; prints the numbers
	$(BIN)/python -m benchmarks.bench_study
