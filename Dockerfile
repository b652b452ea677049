# Slim, multi-stage image installing exactly what uv.lock pins (via requirements.lock, which
# `make lock` exports from it with hashes). BASE_IMAGE lets an offline build use a local base;
# wheels/ (optional) lets pip install with --no-index where no index is reachable.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY wheels/ /wheels/
ARG PIP_OFFLINE=""
RUN python3 -m venv /opt/hedger \
 && /opt/hedger/bin/pip install --no-cache-dir --require-hashes ${PIP_OFFLINE:+--no-index --find-links /wheels} -r requirements.lock
COPY hedger/ hedger/
RUN /opt/hedger/bin/pip install --no-cache-dir --no-deps ${PIP_OFFLINE:+--no-index --find-links /wheels} .

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --home-dir /app hedger
COPY --from=build /opt/hedger /opt/hedger
COPY config/ /app/config/
WORKDIR /app
ENV PATH=/opt/hedger/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
ENTRYPOINT ["hedger"]
CMD ["check-config", "config/paper.yaml"]
