# rereel: `make demo` sets everything up and runs the main job; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LIBRARY ?= out/library
MEDIA ?= ../shared/media

.PHONY: install demo test bench clean

install: $(STAMP)

# Idempotent: re-runs only when the project's requirements change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch lies on this machine's disk; pin it before anything pulls a CUDA one.
	$(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q torch
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/rereel index $(MEDIA)/archive --library $(LIBRARY)
	$(VENV)/bin/rereel info --library $(LIBRARY)

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) bench/bench_index.py

clean:
	rm -rf out .pytest_cache
