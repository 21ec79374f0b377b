# A slim image that runs the daemon as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY autoscaler ./autoscaler
COPY adapters ./adapters
RUN pip install --no-compile . && useradd --system --uid 10001 --home /app autoscaler
USER autoscaler
CMD ["autoscaler", "run"]
