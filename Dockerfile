# syntax=docker/dockerfile:1
# The initlab service: gunicorn serving initlab.web.wsgi:app on port 8000.
#   docker build -t initlab .
#   docker run --rm -p 8000:8000 initlab
# Settings are environment variables: see service/gunicorn.conf.py (BIND,
# WEB_CONCURRENCY, GUNICORN_TIMEOUT, ...) and initlab.web.config (INITLAB_*).

FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The locked requirements first, so that editing the code reuses this layer.
COPY requirements/service.txt requirements/service.txt
RUN pip install --no-cache-dir --requirement requirements/service.txt
COPY service/ service/
RUN pip install --no-cache-dir --no-deps ./service


FROM python:3.11-slim

# One BLAS thread per worker, set before Python starts (gunicorn.conf.py sets
# the same defaults, but only once it runs).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BIND=0.0.0.0:8000 \
    GUNICORN_WORKER_TMP_DIR=/dev/shm \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1

# A numeric id, so that runtimes which check for non-root need no passwd file.
RUN groupadd --system --gid 10001 initlab \
    && useradd --system --uid 10001 --gid initlab --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin initlab

COPY --from=builder /opt/venv /opt/venv
COPY service/gunicorn.conf.py /app/service/gunicorn.conf.py
WORKDIR /app

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ['BIND'].rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"]
CMD ["gunicorn", "--config", "/app/service/gunicorn.conf.py", "initlab.web.wsgi:app"]
