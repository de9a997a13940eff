# Two entry points, each sets up its own virtual environment first:
#   make examples   the sample app's test suite (the plugin at work)
#   make test       lint, type check, docs build and the plugin's own tests with coverage
# CI (.ci/run) also runs `make lowest` (the tests against the lowest versions of the
# runtime dependencies pyproject declares), `make package` (the tests against the built
# wheel), `make mutation-sample` (a fixed sample of the mutation tests) and
# `make bench-quick` (benchmark ratios).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOWEST := .venv-lowest
PACKAGE := .venv-package

.PHONY: examples test venv lint typecheck docs lowest package mutation mutation-sample bench bench-quick clean

venv: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,docs,fuzz]"
	touch $@

examples: venv
	$(BIN)/python -m pytest examples
	@# The standalone fake from Node (examples/node), when Node is installed: fetch, and
	@# the official @upstash/qstash SDK (installed from npm, pinned by package-lock.json).
	@if command -v node >/dev/null 2>&1; then \
		npm ci --prefix examples/node --no-audit --no-fund --loglevel=error && \
		PATH="$(CURDIR)/$(BIN):$$PATH" node --test examples/node/tasks.test.mjs \
			examples/node/messages.test.mjs examples/node/receiver.test.mjs \
			examples/node/wall.test.mjs examples/node/failures.test.mjs \
			examples/node/schedules.test.mjs examples/node/queues.test.mjs \
			examples/node/workflow.test.mjs examples/node/workflow_dlq.test.mjs \
			examples/node/devmode.test.mjs examples/node/ui.test.mjs; \
	else echo "node not found: examples/node skipped"; fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -n 2
	$(BIN)/python -m coverage combine --quiet
	$(BIN)/python -m coverage report

# The runtime dependencies pinned to the lower bounds pyproject declares.
lowest:
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(LOWEST)/bin/python .ci/lowest_constraints.py > $(LOWEST)/constraints.txt
	$(LOWEST)/bin/python -m pip install --quiet -c $(LOWEST)/constraints.txt -e ".[test]"
	$(LOWEST)/bin/python -m pip list --format=freeze | grep -iE '^(pytest|respx|httpx|pydantic|requests|responses)=='
	# pytest < 8.4 reports an event loop that pytest-asyncio leaves for the gc when an
	# anyio test follows an asyncio one: their leak, not the plugin's; ignored here only.
	$(LOWEST)/bin/python -m pytest -n 2 -W "ignore::pytest.PytestUnraisableExceptionWarning"

# The package as users get it: sdist and wheel built and checked (twine, .ci/check_wheel.py),
# the wheel installed (not editable) into a clean virtual environment, and the test suite
# run against it from the unpacked sdist, with the source package taken out of it.
package: venv
	rm -rf dist $(PACKAGE)
	$(BIN)/python -m build --outdir dist . > /dev/null
	$(BIN)/python -m twine check --strict dist/*
	$(BIN)/python .ci/check_wheel.py dist/*.whl
	$(PYTHON) -m venv $(PACKAGE)
	$(PACKAGE)/bin/python -m pip install --quiet --upgrade pip
	$(PACKAGE)/bin/python -m pip install --quiet "$$(ls dist/*.whl)[test,requests]"
	mkdir -p $(PACKAGE)/sdist
	tar -xzf dist/*.tar.gz -C $(PACKAGE)/sdist --strip-components=1
	rm -rf $(PACKAGE)/sdist/pytest_qstash_tasks
	cd $(PACKAGE)/sdist && ../bin/python -m pytest -n 2 -p no:cacheprovider

# Mutation testing of the whole package (pyproject's [tool.mutmut]): each mutant runs
# against the tests that reach its function. `make mutation` runs them all (see
# docs/mutation.md for how long); `make mutation-sample` runs the fixed sample CI runs,
# in a copy of the tree (build/mutation-sample) whose pyproject mutates the sample's
# modules only and runs the test files of their features only: a full run's mutants/ is
# left alone, and the sample does not generate, type-check and map every module first.
# Either fails below 90% on a module or on a survivor that is neither killed nor listed
# as equivalent in docs/mutation.md. `$(BIN)/mutmut results` lists the survivors and
# `$(BIN)/mutmut show <name>` shows one. mutmut is pinned: .ci/mutation_scores.py reads
# its results' format.
MUTMUT = "mutmut==3.8.1"
MUTATION_SAMPLE = "pytest_qstash_tasks._core.state.pagination.*" \
	"pytest_qstash_tasks._core.state.lifecycle.x_error_text__*" \
	"pytest_qstash_tasks._core.state.faults.x_fail__*" \
	"pytest_qstash_tasks._core.state.loop_guard.x*LoopGuard*count__*"
MUTATION_SAMPLE_TESTS = tests/test_endpoint.py tests/test_faults.py tests/test_lifecycle.py \
	tests/test_bad_arguments.py tests/test_deliveries.py tests/test_store.py tests/test_properties.py \
	tests/test_loop_guard.py
SAMPLE := build/mutation-sample
# Two mutants per core: their tests wait on sockets and sleeps for about half their time
# (docs/mutation.md, "Where it stands").
MUTATION_CHILDREN ?= $(shell $(PYTHON) -c "import os; print(2 * (os.cpu_count() or 1))")

# mutmut calls mypy by name (type_check_command): the venv's comes first on PATH.
mutation: venv
	$(BIN)/python -m pip install --quiet $(MUTMUT)
	rm -rf mutants
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) > /dev/null
	$(BIN)/python .ci/mutation_scores.py --min 90

mutation-sample: venv
	$(BIN)/python -m pip install --quiet $(MUTMUT)
	rm -rf $(SAMPLE)
	mkdir -p $(SAMPLE)
	cp -R pytest_qstash_tasks tests docs $(SAMPLE)/
	$(BIN)/python .ci/sample_config.py $(MUTATION_SAMPLE) --tests $(MUTATION_SAMPLE_TESTS) \
		> $(SAMPLE)/pyproject.toml
	cd $(SAMPLE) && PATH="$(CURDIR)/$(BIN):$$PATH" mutmut run $(MUTATION_SAMPLE) > /dev/null
	cd $(SAMPLE) && "$(CURDIR)/$(BIN)/python" "$(CURDIR)/.ci/mutation_scores.py" --min 90

bench: venv
	$(BIN)/python benchmarks/bench.py

bench-quick: venv
	$(BIN)/python benchmarks/bench.py --quick

clean:
	rm -rf $(VENV) $(LOWEST) $(PACKAGE) dist site mutants build .coverage .coverage.* .pytest_cache .mypy_cache .ruff_cache
