# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS ?= requirements/dev.txt
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt | sha1sum | cut -c1-12)

.PHONY: install run worker web demo test test-services test-embedded lint clean

install: $(STAMP)

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(REQUIREMENTS)
	rm -f $(VENV)/.installed-* && touch $@

## Serve the API on $PORT (default 4000) with its Celery workers, in the foreground.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	exec scripts/serve.sh

## Start the service on the embedded defaults, run a text-to-3D and an image-to-3D job through
## the HTTP API, and print where the GLB files are.
demo: install
	$(BIN)/python scripts/demo.py

## The whole suite against PostgreSQL, RabbitMQ, Redis and S3 (moto), then on the embedded defaults.
test: install test-services test-embedded

test-services:
	scripts/test-services.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

test-embedded:
	env -u DATABASE_URL -u CELERY_BROKER_URL -u S3_BUCKET $(BIN)/python -m pytest -m embedded $(PYTEST_ARGS)

clean:
	rm -rf var/broker var/media var/db.sqlite3*
