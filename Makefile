# medseg: two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# A user who wants a CUDA build can override this, e.g. TORCH_SPEC="torch==2.13.0+cu126" with PIP_ARGS="--extra-index-url ...".
TORCH_SPEC ?= torch==2.13.0
PIP_ARGS ?=
PYTEST_ARGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.medseg-installed

.PHONY: venv demo test test-quick bench fuzz clean distclean

venv: $(STAMP)

# Reinstall only when the packaging files or TORCH_SPEC change: a second `make test` is quick.
ifneq ($(shell cat $(STAMP) 2>/dev/null),$(TORCH_SPEC))
$(STAMP): FORCE
endif
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check $(PIP_ARGS) "$(TORCH_SPEC)" -e ".[dev,ray,onnx,rtstruct]"
	echo "$(TORCH_SPEC)" > $@

.PHONY: FORCE
FORCE:

demo: venv
	$(BIN)/medseg demo --out outputs/demo

# pytest exits 5 when it collects no test: that fails the target like any other failure.
test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the loop of a change: the suite without the tests marked slow (bundle runs, the demo, training steps)
test-quick: venv
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# the fuzz test of medseg prepare with more mutants of the real DICOM series (100 run in make test)
fuzz: venv
	MEDSEG_FUZZ_MUTANTS=$${MEDSEG_FUZZ_MUTANTS:-1000} MEDSEG_FUZZ_REPORT=outputs/fuzz.json $(BIN)/python -m pytest -q -s tests/test_dicom_fuzz.py

bench: venv
	@set -e; found=0; for script in scripts/benchmark_*.py; do \
		[ -e "$$script" ] || continue; found=1; \
		echo "== $$script"; $(BIN)/python "$$script"; \
	done; [ $$found = 1 ] || echo "no benchmarks yet (scripts/benchmark_*.py)"

clean:
	rm -rf outputs build dist *.egg-info .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
