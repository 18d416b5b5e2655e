# One virtual environment, created or updated idempotently from pinned versions (constraints.txt).
# torch comes from the local CPU wheel (torch==2.13.0); everything else from PyPI through the pins.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= ros,sim,text,kernels,pretrained,dev
STAMP := $(VENV)/.installed-$(shell cat constraints.txt setup.py Makefile | sha1sum | cut -c1-12)
export MUJOCO_GL ?= egl
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: venv demo test test-slow lint format bench gpu-check constraints system-deps clean mmdet test-mmdet

venv: $(STAMP)

$(STAMP): constraints.txt setup.py Makefile | system-deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel 'setuptools>=77.0.3,<82'
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-*
	touch $@

# Headless rendering (MuJoCo through EGL on Mesa) needs these system libraries.
system-deps:
	@if ! ldconfig -p | grep -q 'libEGL.so.1' || ! ldconfig -p | grep -q 'libGL.so.1'; then \
		echo "installing libegl1 libgl1 libgl1-mesa-dri (headless rendering)"; \
		apt-get update -qq && apt-get install -y -qq libegl1 libgl1 libgl1-mesa-dri; \
	fi

demo: venv
	$(VENV)/bin/vid2robot-demo

# kernels in their own process: the Triton CPU interpreter (TRITON_INTERPRET) is process-wide state that
# other areas' imports of the kernels (BiFormer, Plain-DETR) would otherwise fix too early.
# `make test`: everything but the slow tests (~9 minutes on 2 cores); `make test-slow`: the training runs, the
# multi-process and full-size ROS chains (~9 minutes more). CI runs both.
test: venv
	$(PY) -m pytest -m "not slow" --ignore=tests/kernels --ignore=tests/mmdet_integration
	$(PY) -m pytest tests/kernels

test-slow: venv
	$(PY) -m pytest -m slow --ignore=tests/kernels --ignore=tests/mmdet_integration

# The optional mmdetection extra (detection/mmdet_plugin.py): mmcv 2.1.0 has no wheel for this torch, so pip
# compiles it with its CPU ops (21-34 min on 2 cores, once; pip caches the wheel). Quick when they import.
mmdet: venv
	@if $(PY) -c "import mmcv.ops, mmdet.models" 2>/dev/null; then echo "mmdet extra: installed"; else \
		MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=$$(nproc) \
		$(PY) -m pip install --no-build-isolation -c constraints.txt -e '.[mmdet]' && \
		$(PY) -c "import mmcv.ops, mmdet.models"; \
	fi

test-mmdet: mmdet
	$(PY) -m pytest tests/mmdet_integration

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Full-size settings on a GPU; the --quick sizes on CPU (the full ones take too long there).
bench: venv
	$(PY) -m kernels.bench $$($(PY) -c "import torch; print('' if torch.cuda.is_available() else '--quick')") --out docs/bench

# On one CUDA GPU (H100/H200): every measurement of docs/gpu_check.md in under 9 minutes, results under
# docs/gpu_check/ (its CPU dry run, --dry-run, runs in make test). No venv prerequisite: the venv pins the CPU
# torch wheel, so a GPU machine brings its own CUDA torch (PY=python to use it).
gpu-check:
	$(PY) -m vid2robot.gpu_check --out docs/gpu_check

# Re-resolve the pins after changing setup.py's requirements (then commit constraints.txt).
constraints: venv
	{ echo "# Pinned versions of every dependency (direct and transitive), as resolved together on Python 3.11."; \
	  echo "# Regenerate with: make constraints"; \
	  $(PY) -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt

clean:
	rm -rf $(VENV) build install log
