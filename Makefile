# Two commands on a fresh machine: `make demo` (the main job) and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
REQUIREMENTS ?= requirements/dev.txt
REQUIREMENTS_HASH := $(shell cat requirements/*.txt | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQUIREMENTS_HASH)
# The packages of a GPU image with the hunyuan3d extra (CUDA torch, hy3dgen), beside the CPU venv, to test them.
GPU_VENV := .venv-gpu
GPU_STAMP := $(GPU_VENV)/.installed-$(REQUIREMENTS_HASH)

.PHONY: install run flower demo test lint check-deploy test-services test-embedded test-gpu-packages clean

# (Re)make the virtualenv $(1) from the requirements files $(2), then those of $(3) without their
# dependencies, when a requirements file changed.
define make_venv
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet --upgrade pip
	$(1)/bin/pip install --quiet $(foreach file,$(2),-r $(file))
	$(if $(3),$(1)/bin/pip install --quiet --no-deps $(foreach file,$(3),-r $(file)))
	rm -f $(1)/.installed-* && touch $@
endef

install: $(STAMP)

$(STAMP):
	$(call make_venv,$(VENV),$(REQUIREMENTS))

$(GPU_STAMP):
	$(call make_venv,$(GPU_VENV),requirements/hunyuan3d.txt requirements/test.txt,requirements/hunyuan3d-no-deps.txt)

## Serve the API on $PORT (default 4000) with its Celery workers, in the foreground.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	exec scripts/serve.sh

## Flower, Celery's web monitor, for the local service's broker on http://127.0.0.1:5555
## (loopback only; set FLOWER_BASIC_AUTH=user:password to ask for a password there too).
flower: install
	exec $(BIN)/celery -A celery_app flower --address=127.0.0.1 --port=5555

## Start the service on the embedded defaults, run a text-to-3D and an image-to-3D job through
## the HTTP API, and print where the GLB files are.
demo: install
	$(BIN)/python scripts/demo.py

## Django's deployment checks on production-like settings, then the whole suite against PostgreSQL,
## RabbitMQ, Redis and S3 (moto), then on the embedded defaults, then the generation tests on the
## GPU image's packages.
test: install lint check-deploy test-services test-embedded test-gpu-packages

# What a deployment behind a TLS proxy sets (README, Security); the secret key is made afresh.
PRODUCTION_LIKE := ALLOWED_HOSTS=api.example.com CLERK_AUTHORIZED_PARTIES=https://app.example.com \
	CLERK_ISSUER=https://clerk.example.com SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https \
	SECURE_SSL_REDIRECT=true SECURE_HSTS_SECONDS=31536000 SECURE_HSTS_INCLUDE_SUBDOMAINS=true \
	SECURE_HSTS_PRELOAD=true

## Ruff's lint rules and formatter (pyproject.toml): the tree stays as `ruff format` writes it.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-deploy: install
	env -u DJANGO_DEBUG $(PRODUCTION_LIKE) \
		DJANGO_SECRET_KEY=$$($(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))") \
		$(BIN)/python manage.py check --deploy --fail-level WARNING

test-services:
	scripts/test-services.sh $(BIN)/python -m pytest -m "not embedded and not gpu_image" $(PYTEST_ARGS)

test-embedded:
	env -u DATABASE_URL -u CELERY_BROKER_URL -u S3_BUCKET $(BIN)/python -m pytest -m embedded $(PYTEST_ARGS)

# The generation tests, the real Hunyuan3D-2 pipeline's included, on the packages of the GPU image with
# the hunyuan3d extra, on this CPU. Importing hy3dgen first: a failed import would only skip its tests.
test-gpu-packages: $(GPU_STAMP)
	$(GPU_VENV)/bin/python -c "from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline"
	env -u DATABASE_URL -u CELERY_BROKER_URL -u S3_BUCKET $(GPU_VENV)/bin/python -m pytest -m gpu_image tests/generation $(PYTEST_ARGS)

clean:
	rm -rf var/broker var/media var/db.sqlite3*
