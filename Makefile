# The two commands of the README: `make demo` and `make test`. Each creates the virtual
# environment and installs what it needs on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean base-image

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m bisector.demo

lint: $(STAMP)
	$(BIN)/ruff check .

# pytest exits 5 when it collected no test: say so and do not count it as a failure.
test: lint
	@status=0; $(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$status

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/plugin_overhead.py
	$(BIN)/python benchmarks/store_ingest.py
	$(BIN)/python benchmarks/find_break_vs_git_bisect.py
	$(BIN)/python benchmarks/flaky_search_sim.py
	$(BIN)/python benchmarks/flaky_find_break_vs_git_bisect.py
	$(BIN)/python benchmarks/parallel_find_break.py
	$(BIN)/python benchmarks/dask_find_break.py
	scripts/build-base-image bisector/base:bookworm
	$(BIN)/python benchmarks/docker_overhead.py
	$(BIN)/python benchmarks/postgres_ingest.py

# The Debian base image of the shipped suites, built locally (debootstrap; no registry).
base-image:
	scripts/build-base-image bisector/base:bookworm

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
