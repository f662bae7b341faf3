"""`newsletter preview`: the built email at desktop and phone widths, on 127.0.0.1."""

from __future__ import annotations

import functools
import html
import http.server
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.console import console

if TYPE_CHECKING:
    from newsletter.compose.build import BuildResult

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Preview: {title}</title>
<style>
body {{ margin: 0; font-family: system-ui, sans-serif; background: #d9dee5; color: #1f2933; }}
header {{ padding: 12px 20px; background: #0b2545; color: #fff; }}
header a {{ color: #c9d6e8; margin-right: 14px; }}
main {{ display: flex; gap: 28px; padding: 20px; align-items: flex-start; flex-wrap: wrap; }}
figure {{ margin: 0; }}
figcaption {{ font-size: 13px; margin-bottom: 6px; }}
iframe {{ border: 1px solid #9aa5b1; background: #fff; height: 2400px; }}
</style></head><body>
<header><strong>{title}</strong> &nbsp; Subject: {subject} &nbsp;
<a href="email.html">HTML alone</a><a href="email.txt">Plaintext</a>
<a href="email.eml">.eml</a></header>
<main>
<figure><figcaption>Desktop, 600&nbsp;px content (800&nbsp;px window)</figcaption>
<iframe src="email.html" width="800" title="Desktop preview"></iframe></figure>
<figure><figcaption>Phone, 375&nbsp;px</figcaption>
<iframe src="email.html" width="375" title="Phone preview"></iframe></figure>
</main></body></html>
"""


def write_preview(result: BuildResult) -> Path:
    page = result.out_dir / "preview.html"
    page.write_text(
        PAGE.format(
            title=html.escape(f"{result.issue.series}, Vol {result.issue.volume}"),
            subject=html.escape(result.rendered.subject),
        ),
        encoding="utf-8",
    )
    return page


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_preview(folder: Path, *, port: int, open_browser: bool) -> None:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        url = f"http://127.0.0.1:{server.server_address[1]}/preview.html"
        console.print(f"previewing at {url}  (Ctrl-C to stop)", markup=False)
        if open_browser:
            threading.Timer(0.3, webbrowser.open, args=(url,)).start()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopped", markup=False)
