# The project's commands. `make run` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test test-hardening test-other-pythons lint format bench clean

setup: $(STAMP) node_modules/.package-lock.json

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

run: setup
	$(PY) -m devhost start

test: setup
	$(PY) -m pytest -q -m "not install and not fuzz and not faults"

# The request fuzzer (a few thousand requests) and the fault-injection suite: minutes, so CI runs them apart.
test-hardening: setup
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-3000} $(PY) -m pytest -q -m "fuzz or faults"

test-other-pythons: setup
	bash .ci/other-pythons

lint: setup
	$(PY) -m ruff check .
	$(VENV)/bin/actionlint .github/workflows/*.yml

format: setup
	$(PY) -m ruff format .

bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(PY) -m bench

clean:
	rm -rf $(VENV) .venv-3.12 .venv-3.13 node_modules .devhost .pytest_cache .ruff_cache
