# Victoria SIP on Debian 12 (bookworm-slim), as a non-root user.
# SIP and RTP need the host's network for real PBX use: docker run --network host ...
#   docker build -t victoria-sip .
#   docker run --network host -v /etc/victoria-sip:/config:ro -v victoria-data:/var/lib/victoria-sip victoria-sip

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY victoria_sip ./victoria_sip
RUN python3 -m venv /opt/victoria \
 && /opt/victoria/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 espeak-ng \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/victoria-sip victoria
COPY --from=build /opt/victoria /opt/victoria
COPY media /opt/victoria/media
COPY config/victoria.example.toml /config/victoria.toml
USER victoria
ENV VICTORIA_DATABASE_URL=sqlite:////var/lib/victoria-sip/victoria.db \
    VICTORIA_MEDIA_DIR=/opt/victoria/media
VOLUME ["/var/lib/victoria-sip"]
EXPOSE 5060/udp 40000-40999/udp
ENTRYPOINT ["/opt/victoria/bin/victoria-sip"]
CMD ["serve", "--config", "/config/victoria.toml"]
