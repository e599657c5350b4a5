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
EXTRAS  ?= $(EXTRA),dev,astra,lora,metrics

.PHONY: install test test-fast lint completions bench clean train-default train-report-default

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

# --- the embedded default model `ctvl-phantom` (about 2 h 55 min on 2 CPU cores; resumes if interrupted) ---
CTVL        := $(BIN)/ctvl
TRAIN_N     ?= 4000
TRAIN_EPOCHS ?= 32
RUN         := build/ctvl-phantom-run
# second part (about 22 min): the best model of RUN, trained on with the --masks loss moved to the 16^3 map of
# stage 1 and restricted to the six small findings, at a higher learning rate
FINE_EPOCHS ?= 8
RUN_FINE    := build/ctvl-phantom-run-fine
# third part (about 20 min): a detector branch (small-clip skip_branch: its own copy of stages 0-1, a 1x1x1
# convolution whose maxima feed the embedding) trained alone by the --masks loss on eight findings; the rest
# of the model frozen. Fourth part (about 10 min): both image towers frozen, the projections (the branch's at 10x the
# rate, the text tower at 0.05x) trained to align the branch's maxima with the text: label loss on the embedding
# itself, prompt loss, contrastive loss.
RUN_DET     := build/ctvl-phantom-run-det
DET_EPOCHS  ?= 12
RUN_ALIGN   := build/ctvl-phantom-run-align
ALIGN_EPOCHS ?= 6
NOT_BRANCH  := visual,visual_proj,skip_proj,tok,pos,text,text_norm,text_proj,log_scale
SMALL_FINDINGS := Medical material,Arterial wall calcification,Coronary artery wall calcification,Lymphadenopathy,Lung nodule,Pulmonary fibrotic sequela
DET_FINDINGS := $(SMALL_FINDINGS),Bronchiectasis,Consolidation

build/phantom-train/pairs.csv:
	$(CTVL) phantom build/phantom-train -n $(TRAIN_N) --seed 1000 --masks --workers 2 --format json > /dev/null
build/phantom-val/pairs.csv:
	$(CTVL) phantom build/phantom-val -n 200 --seed 2000 --workers 2 --format json > /dev/null
build/phantom-tokenizer/tokenizer.json: build/phantom-train/pairs.csv
	$(CTVL) finetune tokenizer --texts build/phantom-train/reports.csv --out build/phantom-tokenizer --vocab-size 2048

train-default: build/phantom-train/pairs.csv build/phantom-val/pairs.csv build/phantom-tokenizer/tokenizer.json
	if [ -f $(RUN)/checkpoint.pt ]; then $(CTVL) finetune clip --out $(RUN) --resume --epochs $(TRAIN_EPOCHS) -j 1; else \
	$(CTVL) finetune clip --model ctvl-phantom --scratch --arch-param skip_stage=null --tokenizer build/phantom-tokenizer \
	  --pairs build/phantom-train/pairs.csv --val-pairs build/phantom-val/pairs.csv \
	  --val-labels build/phantom-val/labels.csv --out $(RUN) --epochs $(TRAIN_EPOCHS) -b 32 --lr 1e-3 \
	  --warmup 200 --text-aug-whole 0.15 --labels build/phantom-train/labels.csv --label-weight 10 \
	  --masks build/phantom-train/masks --mask-weight 10 --aug-shift 10 --aug-rotate 5 --aug-scale 0.08 \
	  --save-every 100 --input-cache build/phantom-inputs -j 1; fi
	if [ -f $(RUN_FINE)/checkpoint.pt ]; then $(CTVL) finetune clip --out $(RUN_FINE) --resume --epochs $(FINE_EPOCHS) -j 1; else \
	$(CTVL) finetune clip --model $(RUN) \
	  --pairs build/phantom-train/pairs.csv --val-pairs build/phantom-val/pairs.csv \
	  --val-labels build/phantom-val/labels.csv --out $(RUN_FINE) --epochs $(FINE_EPOCHS) -b 32 --lr 2e-3 \
	  --warmup 100 --text-aug-whole 0.15 --labels build/phantom-train/labels.csv --label-weight 10 \
	  --masks build/phantom-train/masks --mask-weight 10 --mask-stage 1 --mask-pos-weight 20 \
	  --mask-labels "$(SMALL_FINDINGS)" --aug-shift 10 --aug-rotate 5 --aug-scale 0.08 \
	  --save-every 100 --input-cache build/phantom-inputs -j 1; fi
	if [ -f $(RUN_DET)/checkpoint.pt ]; then $(CTVL) finetune clip --out $(RUN_DET) --resume --epochs $(DET_EPOCHS) -j 1; else \
	$(CTVL) finetune clip --model $(RUN_FINE) --arch-param skip_stage=1 --arch-param skip_dim=16 \
	  --arch-param skip_branch=true --pairs build/phantom-train/pairs.csv --out $(RUN_DET) --epochs $(DET_EPOCHS) \
	  -b 16 --lr 3e-3 --warmup 50 --text-aug-whole 0.15 --labels build/phantom-train/labels.csv --label-weight 0 \
	  --clip-weight 0 --freeze "$(NOT_BRANCH)" --masks build/phantom-train/masks --mask-weight 1 --mask-stage 1 \
	  --mask-pos-weight 20 --mask-labels "$(DET_FINDINGS)" --save-every 250 --input-cache build/phantom-inputs -j 1; fi
	if [ -f $(RUN_ALIGN)/checkpoint.pt ]; then $(CTVL) finetune clip --out $(RUN_ALIGN) --resume --epochs $(ALIGN_EPOCHS) -j 1; else \
	$(CTVL) finetune clip --model $(RUN_DET) --freeze visual,skip_trunk,skip \
	  --lr-mult "tok=0.05,pos=0.05,text=0.05,text_norm=0.05,text_proj=0.05,skip_proj=10" \
	  --pairs build/phantom-train/pairs.csv --val-pairs build/phantom-val/pairs.csv \
	  --val-labels build/phantom-val/labels.csv --out $(RUN_ALIGN) --epochs $(ALIGN_EPOCHS) -b 32 --lr 1e-2 \
	  --warmup 50 --text-aug-whole 0.15 --labels build/phantom-train/labels.csv --label-weight 10 \
	  --label-input embedding --prompt-weight 10 --save-every 100 --input-cache build/phantom-inputs -j 1; fi
	$(BIN)/python -m ctvl_cli.train.package_default $(RUN_ALIGN)

# --- the embedded report model `ctvl-phantom-report` (about 35 min on 2 CPU cores; resumes if interrupted) ---
# Projector + a small GPT-2 trained from scratch on phantom reports, over the frozen ctvl-phantom encoder: re-run
# after ctvl-phantom is retrained (the report model records the encoder's key and refuses other weights).
REPORT_N      ?= 800
REPORT_EPOCHS ?= 30
REPORT_RUN    := build/ctvl-phantom-report-run

build/report-train/pairs.csv:
	$(CTVL) phantom build/report-train -n $(REPORT_N) --seed 1000 --workers 2 --format json > /dev/null
build/report-val/pairs.csv:
	$(CTVL) phantom build/report-val -n 64 --seed 2000 --workers 2 --format json > /dev/null
build/report-lm/config.json: build/report-train/pairs.csv
	$(CTVL) finetune tokenizer --texts build/report-train/reports.csv --out build/report-tokenizer --vocab-size 1024 --cased
	$(BIN)/python -m ctvl_cli.train.report_default init-lm build/report-tokenizer build/report-lm

train-report-default: build/report-train/pairs.csv build/report-val/pairs.csv build/report-lm/config.json
	if [ -f $(REPORT_RUN)/checkpoint.pt ]; then $(CTVL) finetune report --out $(REPORT_RUN) --resume -j 1; else \
	$(CTVL) finetune report --pairs build/report-train/pairs.csv --llm build/report-lm --llm-train full \
	  --val-pairs build/report-val/pairs.csv --val-max 64 --out $(REPORT_RUN) --epochs $(REPORT_EPOCHS) \
	  -b 32 --lr 1e-3 --warmup 100 --max-len 320 --save-every 50 -j 1; fi
	$(BIN)/python -m ctvl_cli.train.report_default package $(REPORT_RUN)
