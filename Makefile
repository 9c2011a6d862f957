# `make test` and `make demo` set up their own virtual environment (.venv)
# with the pinned CPU stack of requirements/ci.txt, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.h2cn-installed
# test files spread over this many processes (pytest-xdist; a file's tests
# share its fixtures, so they stay in one process)
TEST_WORKERS ?= auto
PYTEST_ARGS ?=

.PHONY: test demo env clean

env: $(STAMP)

$(STAMP): requirements/ci.txt setup.py requirements/runtime.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'setuptools>=77.0.3,<81' wheel
	$(PY) -m pip install -q -r requirements/ci.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	$(PY) -c "import h2cn_mmaction; print('h2cn_mmaction', h2cn_mmaction.__version__, 'installed')"
	touch $@

test: $(STAMP)
	$(PY) -m pytest tests -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile \
		--no-loadscope-reorder $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) tools/run_demo.py

clean:
	rm -rf $(VENV) *.egg-info
