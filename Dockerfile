# watchkeeper as a container: `watchkeeper run` as a non-root user, read-only root filesystem
# friendly, config and credentials mounted, /healthz for the HEALTHCHECK and the probes.
#
#   docker build -t watchkeeper .
#   docker run --read-only --tmpfs /tmp -v ./config.toml:/etc/watchkeeper/config.toml:ro \
#     -v wk-state:/var/lib/watchkeeper -v ./secrets:/run/secrets/watchkeeper:ro watchkeeper
#
# The config must set [daemon] health_listen = "0.0.0.0:8787" for the HEALTHCHECK to pass.
# `secret:NAME` references read the file /run/secrets/watchkeeper/NAME (CREDENTIALS_DIRECTORY).

# -- build: the wheel of this tree and of every dependency ------------------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md _watchkeeper.py ./
COPY daemon ./daemon
COPY jobs ./jobs
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[postgresql,kubernetes,aws]"

# -- run: only the installed wheels ----------------------------------------------------------
FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin watchkeeper \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/watchkeeper
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "watchkeeper[postgresql,kubernetes,aws]" \
    && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WATCHKEEPER_CONFIG=/etc/watchkeeper/config.toml \
    WATCHKEEPER_DAEMON__STATE_DIR=/var/lib/watchkeeper \
    CREDENTIALS_DIRECTORY=/run/secrets/watchkeeper
USER 10001:10001
VOLUME ["/var/lib/watchkeeper"]
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8787/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["watchkeeper"]
CMD ["run"]
