FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY triggerhub triggerhub
COPY customers customers
COPY messaging messaging
COPY activities activities
COPY templates templates
COPY manage.py ./
RUN pip install --no-cache-dir . \
    && TRIGGERHUB_MODE=production DJANGO_SECRET_KEY=build-only DJANGO_ALLOWED_HOSTS=build \
       python manage.py collectstatic --noinput \
    && useradd --create-home triggerhub
USER triggerhub
EXPOSE 8000
CMD ["gunicorn", "triggerhub.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
