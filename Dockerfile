# syntax=docker/dockerfile:1
# Build stage: wheels for the app and its dependencies.
FROM python:3.11-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends build-essential libpq-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY idp ./idp
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# Runtime stage: no compilers, non-root, gunicorn.
FROM python:3.11-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends xmlsec1 libpq5 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 authy2
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY --chown=authy2:authy2 wsgi.py ./
COPY --chown=authy2:authy2 migrations ./migrations
COPY --chown=authy2:authy2 templates ./templates
COPY --chown=authy2:authy2 static ./static
RUN mkdir -p /app/keys /app/instance && chown authy2:authy2 /app/keys /app/instance
USER authy2
ENV FLASK_APP=wsgi FLASK_ENV=production PYTHONUNBUFFERED=1 AUTHY2_HOME=/app KEYS_DIR=/app/keys
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys;sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/api/health',timeout=4).status==200 else 1)"
# Worker class, workers, threads, timeouts and the access log format (no query strings) live in
# idp/gunicorn_conf.py; GUNICORN_BIND, WEB_CONCURRENCY, GUNICORN_THREADS ... override them. Run it behind
# nginx (docs/deploy/nginx.conf), which waits for slow clients so no worker thread does.
# Measured choice (`bench/run.py --matrix`, bench/README.md): gthread, one worker per core, 4 threads,
# keep-alive 5 s, workers recycled every ~100000 requests.
CMD ["gunicorn", "-c", "python:idp.gunicorn_conf", "wsgi:app"]
