# ex3: `make report` runs the notebook in full and builds the PDF; `make test` runs the tests.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
# numba's compiled code (umap, pynndescent) in one folder, which fresh-report empties: a cold run compiles too.
export NUMBA_CACHE_DIR := $(CURDIR)/$(VENV)/numba-cache
TEX_PACKAGES := texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc

.PHONY: install report fresh-report test bench search pdf tex-tools submission sync clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# The machine's own pip config may list local indexes that do not exist; their warnings are noise.
	$(PY) -m pip install -q -r requirements.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	# Compiles umap's numba code for small pools once, into NUMBA_CACHE_DIR (about a minute on 2 cores), so that
	# the tests' processes load it instead of each compiling it; fresh-report still empties it first.
	$(PY) -c "import torch; from ex3lib.transfer import CodeClusters; CodeClusters(torch.randn(600, 10), dims=2).responsibilities(torch.randn(60, 10))"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

report: install
	$(PY) tools/run_report.py ex3.ipynb  # prints each section's start and end, and the training progress bars
	@$(MAKE) --no-print-directory pdf || echo "make report: ex3.ipynb is executed, but ex3.pdf was not built: see the message above"

# The committed notebook is a cold run: every model trained in that run, so its timings are real, except the
# models the stored studies (studies/) trained, which are kept: the report loads the search's own picks.
fresh-report: install
	$(PY) tools/clear_cache.py
	rm -rf $(NUMBA_CACHE_DIR)
	$(MAKE) --no-print-directory report

test: install
	$(PY) -m pytest

# ex3.py is the notebook's plain-text twin (jupytext percent format), the file to review and diff: after
# editing either file, this copies the newer one's cells into the other (the notebook keeps its outputs).
sync: install
	$(PY) -m jupytext --sync ex3.ipynb

# Milliseconds per training step in float32 and in the chosen precision, and the last run's section times.
bench: install
	$(PY) tools/bench_training.py

# The validation search as Optuna studies, one journal per model family under studies/ (resumable: run again);
# every family in dependency order by default, one family with FAMILY=autoencoder, gan_k8, transfer, ... Its
# choices are the report's recipe (settings.FULL; a test keeps the two equal).
search: install
	$(PY) tools/search.py --family $(or $(FAMILY),all)

pdf: install tex-tools
	$(PY) tools/export_pdf.py ex3.ipynb ex3.pdf $(ID1) $(ID2)  # the author line: the IDs, or placeholders

tex-tools:
	@missing=""; for t in xelatex pandoc; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing from Debian's packages"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(TEX_PACKAGES); \
	  else \
	    echo "missing:$$missing. Install them with: sudo apt-get install -y $(TEX_PACKAGES)"; exit 1; \
	  fi; \
	fi

submission: pdf
	@test -n "$(ID1)" && test -n "$(ID2)" || { echo "usage: make submission ID1=... ID2=..."; exit 1; }
	$(PY) tools/make_submission.py $(ID1) $(ID2)

clean:
	rm -rf checkpoints ex3.pdf ex3_*.zip .pytest_cache
