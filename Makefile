# Bootstraps uv (pinned) into .tools with plain pip, then installs the locked
# environment into .venv: a fresh machine needs only python3 (>= 3.11) and make.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
CONFIG ?= config/paper.yaml

.PHONY: run test bench clean lock promtool

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --all-extras --python $(PYTHON)
	touch $@

run: $(VENV)/.synced
	$(VENV)/bin/hedger check-config $(CONFIG)
	exec $(VENV)/bin/hedger run --config $(CONFIG)

# promtool tests the alert rules; Debian's prometheus package brings it. Installed here when
# missing and apt is usable as root (CI); elsewhere the rule tests skip with a loud reason.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null \
	      || echo "WARNING: could not install prometheus: alert rule tests will be skipped"; \
	  else echo "WARNING: promtool missing and apt unavailable: alert rule tests will be skipped"; fi; }

test: $(VENV)/.synced promtool
	$(VENV)/bin/ruff check hedger tests benchmarks
	$(VENV)/bin/ruff format --check hedger tests benchmarks
	$(VENV)/bin/mypy --strict hedger
	$(VENV)/bin/pytest -q -n auto --maxprocesses 4

bench: $(VENV)/.synced
	$(VENV)/bin/python benchmarks/bench_exposure.py

clean:
	rm -rf $(VENV) $(TOOLS)

# Re-resolve after editing pyproject.toml; requirements.lock is the same pins, hashed, for pip.
lock: $(UV)
	$(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.lock
