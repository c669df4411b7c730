# Two commands do everything on a fresh clone: `make demo` and `make test` (either order).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
# Papermill parameters for the demo run, e.g. `make demo DEMO_ARGS="-p num_theorems 20"`.
DEMO_ARGS ?=

.PHONY: install demo reports test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU build of torch first, so nothing below pulls a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

# Runs the four notebooks headless on the embedded defaults (offline: bundled sample, Lean simulator,
# retrieval policy, local encoder) and renders each to reports/<name>.html.
demo: install
	mkdir -p reports
	@for nb in $(NOTEBOOKS); do \
	  name=$$(basename $$nb .ipynb); \
	  echo "== $$name"; \
	  $(BIN)/papermill --cwd notebooks $$nb reports/$$name.ipynb $(DEMO_ARGS) || exit 1; \
	  $(BIN)/jupyter nbconvert --to html --log-level WARN reports/$$name.ipynb --output $$name || exit 1; \
	done
	@echo "reports written: $$(ls reports/*.html | tr '\n' ' ')"

reports: demo

# The whole suite: unit + integration tests, then every notebook executed by nbval.
test: install
	$(BIN)/python -m pytest -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env -q

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) notebooks/runs runs .pytest_cache
