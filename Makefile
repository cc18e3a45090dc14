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
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	mkdir -p $(DEMO)
	for name in lena2 boat goldhill2; do \
	  $(QPV) encode $(DATA)/waterloo/$$name.png --bpp 0.2 -o $(DEMO)/$$name.qpv && \
	  $(QPV) decode $(DEMO)/$$name.qpv -o $(DEMO)/$$name.png || exit 1; \
	done
	$(QPV) encode $(DATA)/kodak/kodim23.png --bpp 0.25 -o $(DEMO)/kodim23.qpv
	$(QPV) decode $(DEMO)/kodim23.qpv -o $(DEMO)/kodim23.png
	$(QPV) bench rd --images $(DATA)/waterloo/lena2.png $(DATA)/waterloo/boat.png $(DATA)/waterloo/goldhill2.png \
	  --bpp 0.1,0.15,0.2,0.25 --out $(DEMO)/rd
	@echo "previews and RD results in $(DEMO)/"

test: $(VENV)/.installed
	$(PY) -m pytest -q

# Retrain the seed models (deterministic; rewrites models/ with identical files).
models: $(VENV)/.installed
	$(PY) -m export.train --out models

clean:
	rm -rf build $(VENV)
