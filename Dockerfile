# Production image: one image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.13-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 10001 app

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
# Hashed, compressed static files served by WhiteNoise; collectstatic needs no database.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=build-only-not-a-secret DJANGO_STATIC_MANIFEST=1 \
    python manage.py collectstatic --no-input \
 && chown -R app:app /app

USER app
# granian reads GRANIAN_* variables: set GRANIAN_WORKERS to the container's cores. Threads per
# worker let the tracking API's group commit gather concurrent requests; each thread may hold a
# database connection (workers x threads per container).
ENV DJANGO_STATIC_MANIFEST=1 PORT=8000 GRANIAN_WORKERS=4 GRANIAN_BLOCKING_THREADS=4
EXPOSE 8000
CMD ["granian", "--interface=wsgi", "cdp_crm.wsgi:application", "--host=0.0.0.0", "--port=8000", \
     "--no-ws", "--access-log", "--respawn-failed-workers"]
