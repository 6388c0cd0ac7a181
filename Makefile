# Two entry points do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwnas-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: venv demo test test-soak test-bf16 test-fast clean deepsparse-venv

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m workers.compression.nncf_torch   # NNCF's CPU extension for QAT, built once (minutes on 2 cores)
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hwnas demo

test: $(STAMP)
	$(VENV)/bin/lint-imports   # the layers of pyproject.toml [tool.importlinter]
	# two test processes share the 2 cores (a job's test waits on processes and polls much of the time);
	# what restarts PostgreSQL runs alone afterwards (marker `serial`); `make test-soak` runs the rest
	$(PY) -m pytest -ra --durations=25 -n 2 --dist loadfile -m "not serial and not soak and not bf16_native"
	$(PY) -m pytest -ra --durations=5 -m "serial and not soak and not bf16_native"

# Outside CI's 30 minutes, run alone: the jobs that fine-tune the real MiniLM, the bench smoke runs, four more
# model families' jobs, the two-node cluster, measurement exclusivity, coordinator restart and standby (marker `soak`).
test-soak: $(STAMP)
	$(PY) -m pytest -ra --durations=5 -m soak

test-bf16: $(STAMP)  # OpenVINO bf16 for real (a host with AVX512-BF16 or AMX; elsewhere they skip): see marker bf16_native
	$(PY) -m pytest -ra --durations=5 -m bf16_native

test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow"

clean:
	rm -rf $(VENV) hwnas-data .pytest_cache

# Optional: the DeepSparse runtime (workers/runtimes/deepsparse.py) in a venv of its own, .venv-deepsparse
# (numpy<2, old deps; DeepSparse 1.8 is end-of-life, evaluation licence, x86-64 Linux). Nothing else needs it.
deepsparse-venv:
	test -x .venv-deepsparse/bin/python || python3.11 -m venv .venv-deepsparse
	.venv-deepsparse/bin/python -m pip install --quiet -r requirements-deepsparse.txt
	NM_DISABLE_ANALYTICS=1 .venv-deepsparse/bin/python -c "import deepsparse; print('DeepSparse', deepsparse.__version__, 'ready in .venv-deepsparse')"
