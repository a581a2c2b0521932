# CI calls the same targets a person does.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INFRA := deploy/local/infra.sh
# Written after a successful install: targets that need the virtualenv depend on it, so a fresh
# clone installs on first use and later runs skip pip unless the dependencies changed.
INSTALLED := $(VENV)/.installed

.PHONY: install test lint format infra-up infra-down keycloak-up keycloak-down contracts run dev clean bench-indicators bench-ingest bench-e2e pin-images

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(INSTALLED) ## virtualenv + pinned dependencies + the project (editable); again only when pyproject.toml or constraints.txt changed

TEST_WORKERS ?= 3
test: install ## installs, then the whole suite against real Kafka and PostgreSQL (started unless configured), on TEST_WORKERS pytest-xdist workers
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: install ## ruff (lint + format check) and mypy --strict on the code and its tests (incremental: .mypy_cache)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

run: install ## the embedded mode with the demo: dashboard URL and API key are printed
	$(BIN)/spm demo

dev: install ## the embedded mode without the simulated data
	$(BIN)/spm dev

infra-up: ## start local Kafka (KRaft) and PostgreSQL; prints the settings to export
	$(INFRA) up

infra-down:
	$(INFRA) down

keycloak-up: ## start a local Keycloak (dev mode, OpenID Connect provider); prints KEYCLOAK_URL and the admin login
	deploy/local/keycloak.sh up

keycloak-down:
	deploy/local/keycloak.sh down

bench-indicators: install ## indicator engine vs raw consumer (starts local infra unless configured)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$DATABASE_URL" ]; then \
		$(INFRA) up >&2 && eval "$$($(INFRA) env)"; fi; \
	$(BIN)/python bench/indicators_throughput.py $(BENCH_ARGS)

bench-ingest: install ## ingest HTTP batches vs raw aiokafka producer (starts local infra unless configured)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$DATABASE_URL" ]; then \
		$(INFRA) up >&2 && eval "$$($(INFRA) env)"; fi; \
	$(BIN)/python bench/ingest_throughput.py $(BENCH_ARGS)

bench-e2e: install ## ingest 202 -> alert e-mail latency, four services as processes (starts local infra)
	@if [ -z "$$KAFKA_BOOTSTRAP_SERVERS" ] || [ -z "$$DATABASE_URL" ]; then \
		$(INFRA) up >&2 && eval "$$($(INFRA) env)"; fi; \
	$(BIN)/python bench/e2e_latency.py $(BENCH_ARGS)

pin-images: ## pin docker-compose's and the Dockerfile's images by digest (needs docker buildx)
	deploy/pin-images.sh

contracts: install ## regenerate JSON Schemas, AsyncAPI document and examples
	$(BIN)/spm contracts export

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
