# hedger: slim, multi-stage image installing exactly what uv.lock pins (through
# requirements.lock, which `make lock` exports from it with hashes).
#
# Offline / reproducible build (what deploy/docker/build-image.sh does): the host puts
# hash-verified wheels of requirements.lock plus a wheel of the project into wheels/, and pip
# installs from there with --no-index. With an empty wheels/ the build falls back to the
# package index (still --require-hashes) and builds the project from source.
#
# BASE_IMAGE must be a Debian-like image with python3 >= 3.11 and the venv module: the public
# python:3.11-slim-bookworm (python in /usr/local/bin) or a debootstrap'ed bookworm with
# python3 + python3-venv imported as hedger-base:bookworm (python in /usr/bin, no pip).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- build: the venv at /opt/hedger, and the image's default config -----------------------
FROM ${BASE_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY requirements.lock ./
COPY wheels/ /wheels/
# The dependencies, from the lock, every file checked against its pinned hash; binary wheels
# only, so nothing compiles here and no compiler is needed.
RUN set -eu; \
    if ls /wheels/*.whl >/dev/null 2>&1; then index="--no-index --find-links /wheels"; \
    else index=""; echo "wheels/ is empty: installing from the package index"; fi; \
    python3 -m venv /opt/hedger; \
    /opt/hedger/bin/python -m pip install $index --only-binary=:all: --require-hashes \
        -r requirements.lock
COPY pyproject.toml README.md ./
COPY hedger/ hedger/
# The project itself, without dependencies (they are all in the lock): its prebuilt wheel if
# wheels/ has exactly one, else built from the source just copied. pip and setuptools are
# dropped afterwards: nothing installs anything at run time.
RUN set -eu; \
    set -- /wheels/hedger-*.whl; \
    if [ "$#" -gt 1 ]; then echo "several hedger wheels in wheels/: $*" >&2; exit 1; fi; \
    if [ -e "$1" ]; then /opt/hedger/bin/python -m pip install --no-index --no-deps "$1"; \
    else /opt/hedger/bin/python -m pip install --no-deps .; fi; \
    /opt/hedger/bin/python -m pip uninstall --yes pip setuptools; \
    /opt/hedger/bin/hedger --version
# The image's config: config/paper.yaml with the HTTP port on all interfaces (so -p works) and
# the journal on the volume. Fails loudly if paper.yaml's lines change shape, then validates.
COPY config/paper.yaml ./paper.yaml
COPY deploy/docker/healthcheck.py /opt/hedger/healthcheck.py
RUN set -eu; \
    mkdir -p /etc/hedger; \
    { echo "# Generated at image build from config/paper.yaml: http.host 0.0.0.0 (published with -p),"; \
      echo "# journal on the /var/lib/hedger volume. Set HEDGER_HTTP_TOKEN: the port is reachable."; \
      sed -e 's|^journal: {path: [^}]*}|journal: {path: /var/lib/hedger/hedger.sqlite}|' \
          -e 's|^http: {host: 127\.0\.0\.1,|http: {host: 0.0.0.0,|' paper.yaml; \
    } > /etc/hedger/config.yaml; \
    grep -q '^journal: {path: /var/lib/hedger/hedger.sqlite}' /etc/hedger/config.yaml; \
    grep -q '^http: {host: 0.0.0.0, port: 9184,' /etc/hedger/config.yaml; \
    /opt/hedger/bin/hedger check-config /etc/hedger/config.yaml >/dev/null

# ---- runtime: the base, a user, the venv and the config; nothing else ----------------------
FROM ${BASE_IMAGE}
ENV PATH=/opt/hedger/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
# uid/gid 10001, no home, no shell. /var/lib/hedger is created owned by it, so a named volume
# mounted there starts out writable by the daemon (docker copies the ownership on first use).
RUN groupadd --system --gid 10001 hedger \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin hedger \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/hedger
COPY --from=build /opt/hedger /opt/hedger
COPY --from=build /etc/hedger/config.yaml /etc/hedger/config.yaml
# The only place the daemon writes (the journal; relative paths in a mounted config land here
# too). With --read-only the root filesystem stays read-only; give /tmp a tmpfs for matplotlib.
VOLUME ["/var/lib/hedger"]
WORKDIR /var/lib/hedger
USER 10001:10001
# As the user it will run as: the entrypoint resolves and the config validates.
RUN ["hedger", "check-config", "/etc/hedger/config.yaml"]
EXPOSE 9184
# /healthz with python's urllib (slim images have no curl). Containers running another
# subcommand (paper-venue, backtest, ...) have no such endpoint and report healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "/opt/hedger/healthcheck.py"]
# Exec form: hedger is PID 1 and gets SIGTERM from `docker stop` directly. `run` and
# `paper-venue` install SIGTERM/SIGINT handlers (SIGHUP reloads `run`'s config) and fork no
# children, so no init is needed to forward signals or reap zombies (`docker run --init` adds
# one if ever wanted; neither base ships tini).
ENTRYPOINT ["hedger"]
CMD ["run", "--config", "/etc/hedger/config.yaml"]
