# rereel: `make demo` sets everything up and runs the main job; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LIBRARY ?= out/library
# Footage: $REREEL_MEDIA, else ../shared/media beside the checkout, else the user cache, which
# `rereel samples` fills (about 45 MB; from $REREEL_SAMPLES_MIRROR when set, else the pinned URLs).
CACHE_MEDIA := $(HOME)/.cache/rereel/media
MEDIA ?= $(or $(REREEL_MEDIA),$(if $(wildcard ../shared/media/archive),../shared/media),$(CACHE_MEDIA))

.PHONY: install demo serve test bench clean

install: $(STAMP)

# Idempotent: re-runs only when the project's requirements change. pip's output goes to
# .venv/pip.log and is shown only when a step fails, so a good install prints a few lines.
PIP_QUIET = > $(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
$(STAMP): pyproject.toml
	@echo "Installing rereel into $(VENV) (a few minutes the first time; log: $(VENV)/pip.log)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip $(PIP_QUIET)
	@# The CPU build of torch lies on this machine's disk; pin it before anything pulls a CUDA one.
	@{ $(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q torch; } $(PIP_QUIET)
	@$(PY) -m pip install -q -e ".[dev]" $(PIP_QUIET)
	@touch $(STAMP)

TRAILER ?= $(MEDIA)/trailers/sintel_trailer_480x270.webm

# The main job: index the archive (the trailer itself stays out of it), remake the Sintel trailer.
demo: install
	@echo "Footage: $(MEDIA)"
	$(if $(filter $(CACHE_MEDIA),$(MEDIA)),$(VENV)/bin/rereel samples $(MEDIA))
	$(VENV)/bin/rereel index $(MEDIA)/archive --library $(LIBRARY)
	$(VENV)/bin/rereel info --library $(LIBRARY)
	$(VENV)/bin/rereel remake $(TRAILER) --library $(LIBRARY) -o out/remake.mp4 \
		--side-by-side-out out/remake_side_by_side.mp4 \
		--timeline out/remake.otio --timeline out/remake.edl --timeline out/remake.xml
	@echo
	@echo "Demo done. Watch out/remake.mp4 (stand-alone) and out/remake_side_by_side.mp4 (trailer | remake)."
	@echo "Credit the footage as out/remake.credits.txt says wherever you publish them."
	@echo "Edit out/remake.otio (rereel choose, or your editor via out/remake.edl / out/remake.xml),"
	@echo "then: $(VENV)/bin/rereel render out/remake.otio -o out/remake_edited.mp4"

# The web app on the demo's library; remake targets may be picked from the sample trailers.
serve: install
	$(VENV)/bin/rereel serve --library $(LIBRARY) --allow $(MEDIA)/trailers $(if $(MODELS),--models $(MODELS))

# The tests drive Debian's Chromium and MLT's melt: installed here (apt) when missing.
test: install
	./scripts/install-test-programs
	@# Two workers, a file each at a time, the longest files first (tests/conftest.py orders them;
	@# xdist would deal them out by their number of tests): the suite waits on browsers, servers
	@# and subprocesses as much as it computes.
	@# Ray's tests in a process of their own, first: ray.init forks its daemons with a Python
	@# preexec_fn, which deadlocked in a worker process that already ran the suite's threads.
	$(PY) -m pytest -q tests/test_ray.py
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15 --ignore=tests/test_ray.py

bench: install
	$(PY) bench/bench_index.py --film
	$(PY) bench/bench_remake.py
	$(PY) bench/bench_learn.py
	$(PY) bench/bench_see.py
	$(PY) bench/bench_webcam.py

clean:
	rm -rf out .pytest_cache
