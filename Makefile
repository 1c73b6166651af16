# The two commands of the README: `make app` and `make test`. Both create/refresh .venv first.
# `make test-fast` is the quick loop (no slow, app or browser tests; under a minute on 2 cores).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.birdcore-installed
DEMO   := data/demo
PORT   ?= 8501

export HF_HUB_OFFLINE ?= 1

.PHONY: app test test-fast venv demo bench clean-venv

# Reinstalls only when a requirements file or pyproject.toml changed since the last install.
$(STAMP): requirements.txt requirements-birdnet.txt requirements-ray.txt requirements-openvino.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@# The BirdNET extra (CC BY-NC-SA model weights) is optional: everything else works without it.
	$(PY) -m pip install -q --no-deps -r requirements-birdnet.txt || echo "note: BirdNET extra not installed; its features are disabled"
	@# The Ray extra (`birdcore embed --ray ADDRESS`) is optional too.
	$(PY) -m pip install -q -r requirements-ray.txt || echo "note: Ray extra not installed; embed --ray is disabled"
	@# The OpenVINO extra (`--backend openvino`) is optional too.
	$(PY) -m pip install -q -r requirements-openvino.txt || echo "note: OpenVINO extra not installed; --backend openvino is disabled"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m birdcore demo-data --out $(DEMO) --if-missing

# The app opens the demo dataset unless the user picked another folder before (remembered in
# ~/.birdcore/app.json) or BIRDCORE_DATA is set. app/serve.py loads torch & co. before it serves (the
# URL appears when that is done), so no visitor waits for those imports; then it runs `streamlit run`.
app: demo
	$(PY) app/serve.py --server.address 127.0.0.1 --server.port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -q --durations=25 $(PYTEST_ARGS)

# The edit-test loop: everything but the tests marked slow (training, subprocess pipelines, > ~2 s),
# app (Streamlit AppTest / app server) and browser. `make test` stays the full suite.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not app and not browser" $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
