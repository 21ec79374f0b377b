# The daemon's image: `autoscaler run` as an unprivileged user, /healthz checked by Docker.
#
# Base: python:3.11.15-slim-bookworm, pinned to the digest of its linux/amd64 image manifest as
# published in docker-library/repo-info (repos/python/remote/3.11.15-slim-bookworm.md at commit
# 3effc3eac4f65a99767fd721667a1bf157496ba4; the multi-platform index is
# sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3). The digest was
# copied from that record, not verified by a pull. To move to a newer patch release, take both
# the tag and the amd64 digest from the same record (or `docker buildx imagetools inspect`).
FROM python:3.11.15-slim-bookworm@sha256:77923445c077d8eb971b14b2b114a1d9cd4a87edb4c75654820ca4832ee8cb15

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AUTOSCALER_METRICS_PORT=9100
WORKDIR /app

# The daemon's dependencies at the exact versions of constraints.txt (bash scripts/constraints
# regenerates it), in a layer of their own so that a code change does not reinstall them.
COPY constraints.txt ./
RUN pip install --no-compile --requirement constraints.txt

COPY pyproject.toml README.md ./
COPY autoscaler ./autoscaler
COPY adapters ./adapters
RUN pip install --no-compile --no-deps --constraint constraints.txt '.[daemon]' \
    && pip check \
    && useradd --system --uid 10001 --home /app autoscaler
USER autoscaler

# /healthz answers 503 when no tick has completed lately (docs/operations.md); the metrics
# server listens on 127.0.0.1 inside the container unless AUTOSCALER_METRICS_HOST says otherwise.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('AUTOSCALER_METRICS_PORT', '9100') + '/healthz', timeout=4)"]
CMD ["autoscaler", "run"]
