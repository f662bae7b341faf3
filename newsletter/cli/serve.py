"""`newsletter serve`: the web endpoints (newsletter/web/) under uvicorn."""


import logging
from collections.abc import Callable
from typing import Annotated, Any

import typer

from newsletter.console import err_console


def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on [default: NEWSLETTER_SERVE_HOST or 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on [default: NEWSLETTER_SERVE_PORT or 8000]."),
    ] = None,
) -> None:
    """Run the web endpoints: one-click unsubscribe, confirm links, the signup form,
    SendGrid Inbound Parse and Event Webhook, and the archive.

    Needs NEWSLETTER_SECRET_KEY (it signs the links). Put it behind a TLS-terminating
    reverse proxy at NEWSLETTER_PUBLIC_URL (deploy/Caddyfile) and name that proxy in
    NEWSLETTER_TRUSTED_PROXIES; the access log never shows tokens.
    """
    import uvicorn

    from newsletter.config import load_settings
    from newsletter.web import RedactTokens, create_app
    from newsletter.web.server import raise_file_limit, server_config, share_interpreter_lock

    settings = load_settings(serve_host=host, serve_port=port)
    app = create_app(settings)  # ConfigError without NEWSLETTER_SECRET_KEY
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    app_log = logging.getLogger("newsletter")
    app_log.setLevel(logging.INFO)
    if not app_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        app_log.addHandler(handler)
    where = f"http://{settings.serve_host}:{settings.serve_port}"
    err_console.print(
        f"serving {where} (public URL: {settings.public_url or 'not set'}); Ctrl-C stops"
    )
    if not settings.public_url:
        err_console.print(
            "warning: NEWSLETTER_PUBLIC_URL is not set: emails carry no unsubscribe link to here",
            style="yellow",
        )
    elif settings.public_url.startswith("https://") and not settings.trusted_proxies:
        err_console.print(
            "warning: NEWSLETTER_TRUSTED_PROXIES is not set: behind a proxy every visitor "
            "counts as the proxy's address (set it to the proxy's, e.g. 127.0.0.1)",
            style="yellow",
        )
    raise_file_limit()  # every open connection is a file
    share_interpreter_lock()  # the event loop gets the lock back within 1 ms
    config = server_config(
        app,
        host=settings.serve_host,
        port=settings.serve_port,
        trusted_proxies=settings.trusted_proxies,
        log_level="info",
    )
    uvicorn.Server(config).run()


COMMANDS: list[Callable[..., Any]] = [serve]
