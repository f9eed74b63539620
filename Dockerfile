# The hotline service (`ivr serve`): FastAGI, AudioSocket, ARI client, HTTP API and /metrics.
# Asterisk and Redis run in their own containers (compose.yaml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOTLINE_CONFIG_DIR=/etc/hotline
WORKDIR /app

# libgomp1: onnxruntime (piper); ffmpeg: the recordings' Opus/MP3 (pydub); the rest of the
# stack is pure Python wheels.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 ffmpeg \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml README.md ./
COPY ivr ./ivr
COPY hotline ./hotline
COPY api ./api
COPY access ./access
COPY routing ./routing
COPY callbacks ./callbacks
COPY callerid ./callerid
COPY events ./events
COPY audit ./audit
COPY workorders ./workorders
COPY recordings ./recordings
COPY privacy ./privacy
COPY screens ./screens
COPY webhooks ./webhooks
COPY testbed ./testbed
RUN pip install --no-cache-dir '.[voices,recordings]'

COPY config /etc/hotline
RUN useradd --system --home /var/lib/hotline hotline \
    && mkdir -p /var/lib/hotline/sounds /var/lib/hotline/spool \
    && chown -R hotline /var/lib/hotline
USER hotline

# FastAGI, AudioSocket, HTTP API + /metrics
EXPOSE 4573 9092 8090
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/health', timeout=2)"
ENTRYPOINT ["ivr"]
CMD ["serve"]
