# Two commands do all set-up on a fresh machine:
#   make run   - demo on SQLite with fictional data at http://127.0.0.1:5000
#   make test  - the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEV_ENV := TRANSITIONS_ENV=development

.PHONY: run test assets pdf-fonts lint typecheck importlint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

static/govuk/la.css: node_modules/.installed static/scss/la.scss scripts/build_assets.sh
	npm run --silent build:assets

# The PDF fonts (DejaVu Sans, for the handover packs) come from the same build. This target rebuilds them on a
# checkout whose static/govuk/ predates them or lost them; after la.css has just been built it finds them and
# does nothing, so one `make` never builds twice (file targets for them would, as make counts a remade
# prerequisite as newer).
PDF_FONTS := static/govuk/pdf-fonts/DejaVuSans.ttf static/govuk/pdf-fonts/DejaVuSans-Bold.ttf
pdf-fonts: static/govuk/la.css
	@for font in $(PDF_FONTS); do [ -f "$$font" ] || { npm run --silent build:assets; break; }; done

assets: static/govuk/la.css pdf-fonts

run: $(VENV)/.installed assets
	$(DEV_ENV) $(BIN)/cla-transitions db upgrade
	$(DEV_ENV) $(BIN)/cla-transitions demo
	@# One round of the periodic work, so the demo's overdue confirmations and tasks are on the dashboards
	@# (in production cron or a systemd timer runs it every minute: README, Production set-up).
	$(DEV_ENV) $(BIN)/cla-transitions tick
	@echo ""
	@echo "CLA Transitions is starting at http://127.0.0.1:5000 - sign in with a demo account above."
	@echo "Add its secret to an authenticator app (or run: $(BIN)/python -c \"import pyotp; print(pyotp.TOTP('SECRET').now())\")."
	@echo "Emails go to the development mailbox: http://127.0.0.1:5000/dev/mailbox"
	$(DEV_ENV) $(BIN)/cla-transitions run --host 127.0.0.1 --port 5000

test: $(VENV)/.installed assets
	$(BIN)/pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check transitions tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

importlint: $(VENV)/.installed
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) node_modules static/govuk
