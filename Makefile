# The two set-up commands of the README. Each creates .venv and installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: paper test install install-dev browser default-model

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[train]'

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

# The main job: train the paper's CNN with the paper's settings, write the report.
paper: install
	$(BIN)/digitrec train

# Debian's chromium for the browser test (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
	  || echo "warning: could not install chromium; the browser test will fail"

test: install-dev browser
	$(BIN)/python -m pytest -q

# Regenerate a bundled model (src/digitrec/assets/NAME.onnx + NAME.json; NAME default or ocr)
# from a checkpoint: make default-model CKPT=runs/paper/best.pt TRAIN_CMD="digitrec train --out runs/paper"
CKPT ?= runs/paper/best.pt
TRAIN_CMD ?= digitrec train --out runs/paper
NAME ?= default
default-model: install
	$(BIN)/python scripts/default_model.py $(CKPT) --name $(NAME) --train-command "$(TRAIN_CMD)"
