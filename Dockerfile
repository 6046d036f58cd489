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
ENV DJANGO_STATIC_MANIFEST=1 PORT=8000
EXPOSE 8000
CMD ["gunicorn", "cdp_crm.wsgi", "--bind=0.0.0.0:8000", "--workers=4", "--threads=4", "--access-logfile=-"]
