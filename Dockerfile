# The image of the web service and of both workers (see compose.yaml). The workers need CUDA
# torch; the web process never initialises CUDA, and one image keeps one build and one set of pins.
# Debian 12 named: the apt package names below are its own.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies before the code, so that a code change reuses this layer.
ARG REQUIREMENTS=requirements/gpu.txt
COPY requirements/ requirements/
RUN pip install -r "$REQUIREMENTS" -r requirements/ops.txt
# The hunyuan3d extra: hy3dgen without the dependencies it declares but the shape pipeline never
# imports (see requirements/hunyuan3d-no-deps.txt), and the system libraries that PyMeshLab links
# (libGL, libOpenGL, fontconfig; the rest come with them or are in the base image).
RUN case "$REQUIREMENTS" in *hunyuan3d*) \
        pip install --no-deps -r requirements/hunyuan3d-no-deps.txt \
        && apt-get update && apt-get install -y --no-install-recommends libgl1 libopengl0 libfontconfig1 \
        && rm -rf /var/lib/apt/lists/* ;; \
    esac

COPY . .
RUN python manage.py collectstatic --noinput --verbosity 0
RUN useradd --create-home --uid 1000 hydrilla && mkdir -p var && chown hydrilla var
USER hydrilla

EXPOSE 4000
# The web server (scripts/serve.sh web: its one command line); compose.yaml runs the workers.
ENV BIN=/usr/local/bin HOST=0.0.0.0
CMD ["scripts/serve.sh", "web"]
