# The ML Orchestrator service: one image for the API (`orchestrator serve`, the default command), the workers
# (`orchestrator worker`) and the migrations (`orchestrator db upgrade`). Build from the repository root:
#   docker build -t ml-orchestrator:0.1.0 .
# Compose and Kubernetes files that run it are in deploy/service/ (see the README, "From one machine to many").

FROM python:3.11.7-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY orchestrator/ orchestrator/
COPY agents/ agents/
COPY tools/ tools/
COPY migrations/ migrations/
COPY web/ web/
# The scale extra: on PostgreSQL the workers run missions as procrastinate jobs (orchestrator/jobs.py).
RUN /opt/venv/bin/pip install --no-cache-dir ".[scale]"

FROM python:3.11.7-slim-bookworm
# bubblewrap: the sandbox every shell command and workspace model runs in; git: the model registry records the
# workspace's commit. Versions are bookworm's: update them with the base image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap=0.8.0-2+deb12u1 git=1:2.39.5-0+deb12u3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --no-log-init orchestrator \
    && mkdir -p /var/lib/orchestrator/workspaces \
    && chown -R 10001:10001 /var/lib/orchestrator
COPY --from=build /opt/venv /opt/venv
# No HEALTHCHECK here: the same image runs workers, which serve no HTTP. The compose file and the Kubernetes
# manifests probe the API's /healthz and /readyz.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ORCH_HOME=/var/lib/orchestrator \
    ORCH_HOST=0.0.0.0 \
    ORCH_PORT=8700 \
    ORCH_LOG_JSON=true
WORKDIR /var/lib/orchestrator
USER 10001
EXPOSE 8700
ENTRYPOINT ["orchestrator"]
CMD ["serve"]
