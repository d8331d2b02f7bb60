# The engine's image: `playbook worker` by default; `playbook setup`, `playbook serve` (the gateway) and the
# other commands run from it too.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Code first, then the install: the package is the code (no separate requirements layer to keep in sync).
COPY pyproject.toml README.md worker.py ./
COPY model ./model
COPY config ./config
COPY store ./store
COPY runtime ./runtime
COPY workflows ./workflows
COPY activities ./activities
COPY starter ./starter
COPY gateway ./gateway
RUN pip install . && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin playbook

# The library is data, synced to the catalog on every worker start: rebuild (or mount over it) to change it.
COPY playbooks ./playbooks

USER playbook
ENV PLAYBOOKS_DIR=/app/playbooks \
    PLAYBOOK_METRICS_PORT=9464 \
    PLAYBOOK_LOG_FORMAT=json
EXPOSE 9464 8088
CMD ["playbook", "worker"]
