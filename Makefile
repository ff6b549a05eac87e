# dataeff: every target installs what it needs first (a local .venv), so each is one command.
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=
PORT ?= 5000

.PHONY: install postgres train study test test-system test-fast report ui server lint bench bench-startup \
	bench-finetune bench-fusion bench-gpu bench-gpu-mlm bench-gpu-fusion bench-transfer bench-store bench-faults \
	gpu-wheels gpu-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e ".[dev,pretrained,ray]"
	touch $@

postgres:                 ## PostgreSQL's server programs (Debian's package): test-system, server, bench-store
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || \
		{ echo "PostgreSQL is needed: sudo apt-get install postgresql"; exit 1; }

train: install            ## the embedded default experiment (make train ARGS="trainer.max_steps=50")
	$(VENV)/bin/dataeff-train $(ARGS)

study: install            ## the showcase study: pretrain, fine-tune x budgets x seeds, report (~10 min)
	$(VENV)/bin/dataeff-train -m experiment=transfer_small $(ARGS)

test: install             ## the suite (CPU, about 7 min on 2 cores; a process per core)
	$(PY) -m pytest -q -n auto --maxschedchunk=1 -m "not system"

test-system: install postgres ## PostgreSQL, a server, Ray, submitit, jobs together or signalled (~6 min)
	$(PY) -m pytest -q -n auto --maxschedchunk=1 -m system

test-fast: install        ## the suite without the tests that start the CLI in a subprocess
	$(PY) -m pytest -q -n auto --maxschedchunk=1 -m "not slow and not system"

report: install           ## make report ARGS="--experiment my_study"
	$(VENV)/bin/dataeff-report $(ARGS)

ui: install               ## the MLflow UI on the default store, local only
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
		--default-artifact-root $(CURDIR)/mlartifacts --host 127.0.0.1 --port $(PORT)

server: install postgres  ## a team's MLflow server on a local PostgreSQL (team-store/), loopback
	$(VENV)/bin/dataeff-store server --folder $(CURDIR)/team-store --port $(PORT)

lint: install
	$(VENV)/bin/ruff check dataeff tests

bench: install            ## MLM speed: dataeff vs a raw loop vs the HF Trainer, interleaved (~6 min)
	$(PY) experiments/bench/mlm.py $(ARGS)

bench-startup: install    ## start-up: --help, one job, a sweep's later jobs vs the HF Trainer (~6 min)
	$(PY) experiments/bench/startup.py $(ARGS)

bench-finetune: install   ## fine-tuning MiniLM on SST-2 with and without length-grouped batches (~6 min)
	$(PY) experiments/bench/finetune.py $(ARGS)

bench-fusion: install     ## image + text fine-tuning: dataeff's late fusion vs a raw loop (~2 min)
	$(PY) experiments/bench/fusion.py $(ARGS)

bench-store: install postgres ## the tracking path under load: 4/8/16 jobs x 4 stores (~20 min)
	$(PY) experiments/bench/store.py $(ARGS)

bench-faults: install postgres ## faults under load: PostgreSQL restarted, the server killed 20 s, a Ray node killed (~15 min)
	$(PY) experiments/bench/faults.py $(ARGS)

bench-gpu: install        ## on a CUDA machine: MLM and fusion below, with MFU (sized for 10 min)
bench-gpu: bench-gpu-mlm bench-gpu-fusion

bench-gpu-mlm: install    ## BERT-base MLM, bf16, batch 256 x 128, packing and compile on/off
	$(PY) experiments/bench/mlm.py --device cuda --model bert_base --batch-size 256 --max-length 128 \
	    --precision bf16-mixed --rounds 1 --steps 40 --warmup 10 --compile $(ARGS)

bench-gpu-fusion: install ## ViT-B/16 + BERT-base late fusion, bf16, batch 128
	$(PY) experiments/bench/fusion.py --device cuda --model bert_base --vision vit_b16 --batch-size 128 \
	    --precision bf16-mixed --rounds 1 --steps 40 --warmup 10 $(ARGS)

bench-transfer: install   ## the transfer_curve study on ../shared/data/sst2, timed (1-2 h on 2 cores)
	$(PY) experiments/transfer_curve/bench.py $(ARGS)

gpu-wheels: install      ## for a GPU machine with no index: the wheels it lacks, in .gpu/
	$(PY) experiments/gpu/carry.py $(ARGS)

gpu-check: install       ## on a machine with CUDA: every GPU path (gpu, 16/bf16, ddp, fsdp, a 4-job sweep), a line each
	$(PY) experiments/gpu_check.py $(ARGS)
	$(PY) -m pytest -q -m gpu

clean:                    ## outputs, caches and the local MLflow store (not the venv)
	rm -rf outputs multirun .cache mlflow.db mlartifacts reports
