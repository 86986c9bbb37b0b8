# The two commands: `make run` serves the site, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
MANAGE := $(BIN)/python manage.py
# Defined before the first rule that names it (a prerequisite list is expanded when it is read).
NODE_STAMP := node_modules/.installed

.PHONY: run serve test lint guard-model test-real-model setup test-setup browser audio postgres redis nginx check-migrations clean css css-check fonts lighthouse messages

# The site and the worker (image and background jobs) together; Ctrl-C (or the end of daphne) stops both.
run: setup
	@$(MANAGE) worker & worker=$$!; \
	trap 'kill -TERM $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(BIN)/daphne -b 127.0.0.1 -p $(PORT) guyue.asgi:application

# Every core: WEB_PROCESSES daphne processes (default: the core count) on one socket plus the worker,
# under supervisord (docs/deploy.md). More than one process needs REDIS_URL.
serve: setup
	$(MANAGE) serve --port $(PORT)

test: test-setup lint check-migrations css-check
	$(BIN)/python -m pytest

# A real OpenAI-compatible server (llama.cpp + Gemma 3 270M) in its own venv; the build takes minutes.
LLAMA_VENV := .venv-llama
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AVX_VNNI=OFF

$(LLAMA_VENV)/.installed: requirements-llama.txt
	$(PYTHON) -m venv $(LLAMA_VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(LLAMA_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-llama.txt
	touch $@

test-real-model: test-setup $(LLAMA_VENV)/.installed
	LLAMA_PYTHON=$(abspath $(LLAMA_VENV))/bin/python $(BIN)/python -m pytest -m real_model tests/real_model

# Lint and import order (ruff.toml); part of `make test`.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

# --- setup ---------------------------------------------------------------------------------------
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

.env: | $(VENV)/.installed
	$(BIN)/python guyue/lib/make_env.py .env

setup: $(VENV)/.installed .env
	$(MANAGE) migrate --noinput
	$(MANAGE) seedpersonas
	$(MANAGE) envcredentials --check
	$(MANAGE) collectstatic --noinput --verbosity 0

test-setup: setup $(VENV)/.installed-test browser postgres redis nginx audio $(NODE_STAMP)

# Browser tests drive Debian's Chromium (Playwright never downloads a browser here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

# The dictation browser test plays a wav spoken by espeak-ng into Chromium's fake microphone (sox as a fallback).
audio:
	@test -x /usr/bin/espeak-ng -a -x /usr/bin/sox || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox >/dev/null; }

# The PostgreSQL tests start a throwaway server from Debian's postgresql package.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# The Redis tests (tests/redis) start a throwaway server from Debian's redis-server package.
redis:
	@test -x /usr/bin/redis-server || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }

# The cluster tests (tests/cluster) put Debian's nginx, run as the test's own process, in front of two daphne.
nginx:
	@test -x /usr/sbin/nginx || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }

# --- front end: build-time only; the built CSS and font slices are committed ----------------------
# Node is needed to change the look, never to run the site.
TAILWIND := node_modules/.bin/tailwindcss -i frontend/site.css --minify

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Copy the body font's unicode-range slices and cut the title font down to what titles use.
fonts: $(NODE_STAMP)
	node frontend/build-fonts.mjs

css: $(NODE_STAMP)
	$(TAILWIND) -o static/css/site.css 2>/dev/null

# Fails when static/css/site.css is not what frontend/ and the templates compile to.
css-check: $(NODE_STAMP)
	@tmp=$$(mktemp --suffix=.css); $(TAILWIND) -o $$tmp 2>/dev/null; \
	if cmp -s $$tmp static/css/site.css; then rm -f $$tmp; echo "css-check: static/css/site.css is up to date"; \
	else rm -f $$tmp; echo "css-check: static/css/site.css is stale: run make css and commit it" >&2; exit 1; fi

# Lighthouse (npm) in Debian's Chromium against a live daphne; prints a JSON summary last.
lighthouse: test-setup
	$(BIN)/python bench/lighthouse.py

# Retrain the guard's learned classifier (scikit-learn, a test requirement) and rewrite its committed JSON;
# deterministic: the same training files give the same file (docs/guard.md, "The learned classifier").
guard-model: $(VENV)/.installed-test
	$(BIN)/python -m chat.guard.train

check-migrations: $(VENV)/.installed
	$(MANAGE) makemigrations --check --dry-run

clean:
	rm -rf $(VENV) $(LLAMA_VENV) staticfiles

# The admin strings Django's own catalogue leaves in English (GNU gettext's msgfmt; the .mo is committed).
messages:
	msgfmt -o locale/zh_Hans/LC_MESSAGES/django.mo locale/zh_Hans/LC_MESSAGES/django.po
