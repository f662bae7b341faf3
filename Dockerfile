# `newsletter serve` as a container image. The newsletter's home (issues/, subscribers/,
# templates/, .newsletter/) is a volume at /data; settings come from the environment.
#
#   docker build -t newsletter .
#   docker run -d --name newsletter --env-file /srv/newsletter/.env \
#     -e NEWSLETTER_TRUSTED_PROXIES=172.17.0.1 \
#     -v /srv/newsletter:/data -p 127.0.0.1:8000:8000 newsletter
#
# Put Caddy (deploy/Caddyfile) in front; NEWSLETTER_TRUSTED_PROXIES is the address the
# proxy's connections arrive from inside the container (Docker's bridge gateway above).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package reads its built-in templates from beside itself (/app/templates), so it
# is installed in place rather than copied into site-packages.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY newsletter ./newsletter
COPY templates ./templates
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /data newsletter \
    && mkdir -p /data && chown newsletter:newsletter /data

USER newsletter
WORKDIR /data
VOLUME ["/data"]
ENV NEWSLETTER_SERVE_HOST=0.0.0.0 \
    NEWSLETTER_SERVE_PORT=8000
EXPOSE 8000
# loopback names are accepted from the container itself, whatever NEWSLETTER_PUBLIC_URL says
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/subscribe', timeout=4)"]
CMD ["newsletter", "serve"]
