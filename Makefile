# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QPV := $(VENV)/bin/qpv
DATA ?= ../shared/data
DEMO := build/demo

.PHONY: demo test clean models

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,export,onnx,tflite]'
	touch $@

# demo: first the main job (the onboard daemon streams the sample images over a paced pty
# link into the ground decoder: firmware_py/onboard/demo.py), then the codec's RD table.
demo: $(VENV)/.installed
	mkdir -p $(DEMO)
	QPV_DATA_DIR=$(DATA) $(PY) -m firmware_py.onboard.demo --out $(DEMO)/link
	for name in lena2 boat goldhill2; do \
	  $(QPV) encode $(DATA)/waterloo/$$name.png --bpp 0.2 -o $(DEMO)/$$name.qpv && \
	  $(QPV) decode $(DEMO)/$$name.qpv -o $(DEMO)/$$name.png || exit 1; \
	done
	$(QPV) encode $(DATA)/kodak/kodim23.png --bpp 0.25 -o $(DEMO)/kodim23.qpv
	$(QPV) decode $(DEMO)/kodim23.qpv -o $(DEMO)/kodim23.png
	$(QPV) bench rd --images $(DATA)/waterloo/lena2.png $(DATA)/waterloo/boat.png $(DATA)/waterloo/goldhill2.png \
	  --bpp 0.1,0.15,0.2,0.25 --out $(DEMO)/rd
	@echo "previews and RD results in $(DEMO)/"

# QPV_REQUIRE_BACKENDS: the backend and export tests fail, not skip, without their packages.
test: $(VENV)/.installed
	QPV_REQUIRE_BACKENDS=1 $(PY) -m pytest -q

# Retrain the models from the training split, re-export them for the backends and
# re-measure them (deterministic: rewrites models/ with identical files; ~2 minutes).
# Each step updates only its own keys of models/manifest.json. docs/MODELS.md explains
# each. The klt upsampler, static Huffman sets and post-filter are frozen: the first two
# are named in stream fingerprints (retraining them makes every stream written so far
# undecodable), and the shipped ones and the post-filter were trained on encodes this
# encoder no longer makes (docs/MODELS.md, "Frozen artifacts").
models: $(VENV)/.installed
	$(PY) -m export.train --out models
	$(PY) -m export.train_v2 --out models
	$(PY) -m export --models models
	$(PY) -m export.packet_tables --out models
	$(PY) -m export.evaluate

clean:
	rm -rf build $(VENV)
