# Victoria SIP on Debian 12 (bookworm-slim), as a non-root user.
# SIP and RTP need the host's network (the SDP must carry an address the PBX can reach):
#   docker build -t victoria-sip .
#   docker run --network host --env-file victoria.env -v /etc/victoria-sip:/config:ro -v /srv/models:/models:ro \
#       -v victoria-data:/var/lib/victoria-sip victoria-sip
# or docker compose (docker-compose.yml: Victoria + Ollama + Prometheus, PostgreSQL with --profile postgres).
# Relative model paths in the config ("models/vosk-model-small-en-us-0.15") resolve under /models.

# The builder compiles PJSIP 2.17 exactly as ./scripts/setup.sh does (scripts/build_pjsip.py, config/pjsip/):
# the source is GitHub's release tarball, checked against config/pjsip/pjproject.pin; without access to GitHub pass
# a copy, e.g. --build-arg VICTORIA_PJPROJECT_SOURCE=http://host:8000/pjproject-2.17.tar.gz (about 2 minutes).
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential swig libssl-dev uuid-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY victoria_sip ./victoria_sip
COPY scripts/build_pjsip.py ./scripts/
COPY config/pjsip ./config/pjsip
ARG VICTORIA_PJPROJECT_SOURCE
RUN python3 -m venv /opt/victoria \
 && /opt/victoria/bin/python scripts/build_pjsip.py \
 && /opt/victoria/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 espeak-ng libssl3 libuuid1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/victoria-sip victoria \
 && mkdir -p /models /config
COPY --from=build /opt/victoria /opt/victoria
COPY media /opt/victoria/media
COPY config/victoria.example.toml /config/victoria.toml
# a fixed uid: volumes can be prepared on the host (chown 10001 /srv/victoria-data)
USER 10001:10001
WORKDIR /
ENV VICTORIA_DATABASE_URL=sqlite:////var/lib/victoria-sip/victoria.db \
    VICTORIA_MEDIA_DIR=/opt/victoria/media \
    HF_HUB_OFFLINE=1
VOLUME ["/var/lib/victoria-sip", "/models"]
# SIP, RTP ([sip] rtp_port .. + rtp_port_range), metrics and health
EXPOSE 5060/udp 40000-40999/udp 9100/tcp
# /readyz: registered, models loaded, database writable, Ollama up with the model (start-up loads models first)
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/opt/victoria/bin/python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9100/readyz', timeout=4).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/opt/victoria/bin/victoria-sip"]
CMD ["serve", "--config", "/config/victoria.toml"]
