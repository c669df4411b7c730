# Two commands do everything on a fresh clone: `make demo` and `make test` (either order).
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Papermill parameters added to every demo notebook, e.g. `make demo DEMO_ARGS="-p num_theorems 20"`.
DEMO_ARGS ?=
# Demo runs go here (relative to notebooks/), emptied first: a demo never reads an earlier run's data.
DEMO_RUNS := runs/demo
# Every headless execution has a per-cell limit, so a stalled cell fails loudly instead of waiting forever
# (papermill --execution-timeout, nbval --nbval-cell-timeout); the slowest demo cell (training) takes ~1 min.
NB_CELL_TIMEOUT ?= 1200
# ipykernel warns at every kernel start that its local TCP sockets are not encrypted; `make demo` starts four
# kernels, so the warning is said once (demo's first line) and filtered from the four kernels' stderr.
KERNEL_TCP_WARNING := Kernel is running over TCP without encryption
# torch: the tested range, installed first so nothing below pulls another build. A venv that already
# has torch (a GPU box's CUDA build) keeps it: see README, "GPU boxes". Where pip's default index would
# pick a CUDA build, set TORCH_INDEX to a CPU wheel index (e.g. PyTorch's /whl/cpu).
TORCH_SPEC  ?= torch>=2.13,<2.14
TORCH_INDEX ?=

.PHONY: install demo reports test bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || \
	  $(BIN)/python -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

# Runs the four notebooks headless on the embedded defaults (offline: bundled sample, Lean simulator,
# retrieval policy, local encoder) into a fresh notebooks/$(DEMO_RUNS), and renders each to
# reports/<name>.html without machine paths, run metadata or progress bars (reports/ is not tracked).
demo: install
	@echo "note: the four Jupyter kernels talk to papermill over local TCP without encryption (ipykernel's warning, said once)"
	rm -rf notebooks/$(DEMO_RUNS)
	mkdir -p reports notebooks/$(DEMO_RUNS)
	$(call run_nb,01_group_traces,-p output_dir $(DEMO_RUNS)/01)
	$(call run_nb,02_mine_negatives,-p output $(DEMO_RUNS)/02 -p resume False -p progress False)
	$(call run_nb,03_depth_distribution,-p inputs $(DEMO_RUNS)/02)
	$(call run_nb,04_train_ebm,-p output_dir $(DEMO_RUNS)/04)
	@echo "reports written: $$(ls reports/*.html | tr '\n' ' ')"

# $(call run_nb,NAME,PARAMETERS): execute notebooks/NAME.ipynb, render reports/NAME.html
define run_nb
	@echo "== $(1)"
	$(BIN)/papermill --no-progress-bar --execution-timeout $(NB_CELL_TIMEOUT) --cwd notebooks \
	  notebooks/$(1).ipynb reports/$(1).ipynb $(2) $(DEMO_ARGS) 2> >(grep -v -F "$(KERNEL_TCP_WARNING)" >&2)
	$(BIN)/python -m workbench.render reports/$(1).ipynb reports/$(1).html
endef

reports: demo

# The whole suite: unit + integration tests, then every notebook executed by nbval.
test: install browser
	$(BIN)/python -m pytest -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=$(NB_CELL_TIMEOUT) -q

# Headless Chromium for the report-rendering test; best effort (root + apt), the test skips without it.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; } || \
	  echo "no chromium/chromedriver: tests/reports skip the browser check"

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) notebooks/runs runs .pytest_cache
