# The README's two commands: `make demo` and `make test` set everything up on a fresh machine.
# Set-up: Debian fonts (digits-printed renders from them), Fashion-MNIST (the `fashion` source)
# + a venv with the CPU build of torch. Without root, install the packages listed in APT_PACKAGES
# yourself (or skip: `make venv`; for Fashion-MNIST set XDOMAIN_FASHION_MNIST to a folder with
# the four IDX files from github.com/zalandoresearch/fashion-mnist).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
APT_PACKAGES := fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf \
	fonts-urw-base35 fonts-croscore fonts-roboto-unhinted fonts-open-sans fonts-lato \
	fonts-cantarell fonts-comic-neue fonts-crosextra-carlito fonts-crosextra-caladea \
	fonts-firacode fonts-hack fonts-inconsolata dataset-fashion-mnist

.PHONY: setup apt venv demo test lint bench clean

setup: apt venv

apt:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
		if [ -n "$$missing" ]; then \
			echo "installing: $$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	else \
		echo "note: not root; install these Debian packages (fonts, Fashion-MNIST): $(APT_PACKAGES)"; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

demo: setup
	$(VENV)/bin/xdomain train dtn-digits --out runs/demo --overwrite

test: setup
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs .pytest_cache
