# ctvl developer entry points. `make install` then `make test` from a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
UV      := $(BIN)/uv
# A machine with a working NVIDIA driver gets PyPI's default (CUDA) torch and faiss-gpu;
# every other machine gets the CPU build of torch 2.13.0 and faiss-cpu.
HAS_GPU := $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1)
LOCAL_TORCH := $(wildcard /opt/wheels/torch-2.13.0*.whl)
ifeq ($(HAS_GPU),1)
  EXTRA      ?= gpu
  TORCH_ARGS :=
else
  EXTRA      ?= cpu
  ifneq ($(LOCAL_TORCH),)
    TORCH_ARGS := -c constraints/cpu.txt --find-links /opt/wheels
  else
    TORCH_ARGS := -c constraints/cpu.txt --extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match
  endif
endif
EXTRAS  ?= $(EXTRA),dev,astra

.PHONY: install test test-fast lint completions bench clean

install:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(UV) pip install -p $(BIN)/python $(TORCH_ARGS) -e ".[$(EXTRAS)]"
	@$(BIN)/python -c "import torch, ctvl_cli; print('ctvl', ctvl_cli.__version__, '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"

test:
	$(BIN)/python -m pytest -q

test-fast:
	$(BIN)/python -m pytest -q -m "not slow and not parity"

lint:
	$(BIN)/ruff check ctvl_cli tests bench
	$(BIN)/ruff format --check ctvl_cli tests bench

completions:
	$(BIN)/python -m ctvl_cli.cli.completions completions

bench:
	$(BIN)/python bench/embed_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
