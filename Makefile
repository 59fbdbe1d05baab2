# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-tools lint install clean bench sandbox

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/orch demo

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests bench
	$(BIN)/mypy orchestrator
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline .github/workflows

# QA runs generated code in bubblewrap; install it where we can (root or sudo, apt-get),
# else say so: the tests that need it then skip with that reason.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "note: bubblewrap (bwrap) is missing and neither root nor sudo is at hand: sandbox tests will skip"; exit 0; fi; \
	  command -v apt-get >/dev/null 2>&1 || { echo "note: bubblewrap is missing and there is no apt-get: sandbox tests will skip"; exit 0; }; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1; } || \
	  echo "note: bubblewrap could not be installed: sandbox tests will skip"; }

# Tools some tests need, installed where this machine allows; a test whose tool cannot be had
# says so and skips. Chromium (Debian) and mermaid (npm) draw the reports' diagrams.
MERMAID := .cache/mermaid/node_modules/mermaid/dist/mermaid.min.js
test-tools:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
	       || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } \
	  || echo "note: chromium could not be installed; the diagram-drawing tests will skip"
	@test -f $(MERMAID) || { command -v npm >/dev/null 2>&1 \
	  && npm install --silent --no-audit --no-fund --prefix .cache/mermaid mermaid@11 >/dev/null 2>&1; } \
	  || echo "note: mermaid (npm) could not be installed; the diagram-drawing tests will skip"

# The suite is mostly git and orch subprocesses waiting on each other: two pytest workers keep
# both cores of a CI runner busy (TEST_WORKERS=0 runs it in one process).
TEST_WORKERS ?= 2
test: lint test-tools sandbox
	$(BIN)/pytest -n $(TEST_WORKERS)

bench: $(STAMP)
	$(BIN)/python bench/status.py
	$(BIN)/python bench/append.py
	$(BIN)/python bench/makespan.py
	$(BIN)/python bench/git_append.py
	$(BIN)/python bench/qa_checks.py
	$(BIN)/python bench/workers.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
