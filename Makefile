# robolearn developer targets. `make test` is what CI runs (.ci/run).
# Installs are stamped: `make install` is a no-op until pyproject.toml changes or .venv is new.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

export MUJOCO_GL := egl

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri libusb-1.0-0

.PHONY: venv sysdeps install demo test lint bench lerobot-venv

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# EGL + Mesa (headless MuJoCo rendering) and libusb (RealSense, serial arms).
# As root with apt-get, missing ones are installed; otherwise one line says how.
sysdeps:
	@missing=""; \
	cache="$$(ldconfig -p 2>/dev/null || true)"; \
	grep -q 'libEGL\.so\.1 ' <<<"$$cache" || missing="$$missing libEGL"; \
	grep -q 'libEGL_mesa\.so\.0 ' <<<"$$cache" || missing="$$missing libEGL_mesa"; \
	grep -q 'libGL\.so\.1 ' <<<"$$cache" || missing="$$missing libGL"; \
	grep -q 'libgallium' <<<"$$cache" || compgen -G '/usr/lib*/*/dri/swrast_dri.so' >/dev/null \
		|| compgen -G '/usr/lib*/dri/swrast_dri.so' >/dev/null || missing="$$missing mesa-dri"; \
	grep -q 'libusb-1\.0\.so\.0 ' <<<"$$cache" || missing="$$missing libusb-1.0"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "sysdeps: installing$$missing"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-upgrade $(APT_PACKAGES); } \
			|| echo "sysdeps: WARNING: apt-get failed; missing:$$missing (continuing)"; \
	else \
		echo "sysdeps: missing$$missing; fix: sudo apt-get update && sudo apt-get install -y $(APT_PACKAGES)"; \
	fi

install: $(STAMP)

# Everything (every hardware extra and the dev tools), with this machine's exact torch pair.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python sysdeps
	$(BIN)/python -m pip install -c constraints.txt -e '.[dev]'
	touch $@

demo: install
	$(BIN)/robolearn quickstart --out out/quickstart

test: install
	MUJOCO_GL=egl $(BIN)/python -m pytest -q

# What CI checks before the tests: lint, format, types, and the layer contracts of
# ARCHITECTURE.md ([tool.importlinter] in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m benchmarks.expert_success
	$(BIN)/python -m benchmarks.env_throughput

# Hugging Face LeRobot in its own Python 3.12 venv, for the compatibility check and the
# side-by-side dataset benchmarks (benchmarks/lerobot_*.py, benchmarks/data_throughput.py).
# torchcodec, LeRobot's video decoder, needs FFmpeg's shared libraries.
LEROBOT_PYTHON ?= $(shell command -v python3.12 || echo python3.12)
lerobot-venv:
	$(LEROBOT_PYTHON) -m venv .venv-lerobot
	.venv-lerobot/bin/python -m pip install "lerobot[dataset,diffusion]==0.6.1"
	@command -v ffmpeg >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq ffmpeg; } \
		|| echo "lerobot-venv: install FFmpeg for torchcodec: sudo apt-get install -y ffmpeg"
