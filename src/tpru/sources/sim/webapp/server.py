"""Serve a folder of static files on 127.0.0.1 from a background thread.

Example:
    >>> import urllib.request
    >>> from tpru.sources.sim.webapp import STATIC
    >>> with StaticServer(STATIC) as server:
    ...     page = urllib.request.urlopen(server.url + "/index.html").read()
    >>> b"tiles" in page
    True
"""

from __future__ import annotations

import functools
import logging
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)


class _QuietHandler(SimpleHTTPRequestHandler):
    """Static files, with request lines sent to `logging` (debug) instead of stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def end_headers(self) -> None:
        # Every page load must read the files as they are now (the app is edited in place).
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


class StaticServer:
    """An HTTP server for `root` on a free port of 127.0.0.1; `url` is its base address.

    Started by the constructor, stopped by `close` (or leaving a ``with`` block).
    """

    def __init__(self, root: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="tpru-webapp",
                                        daemon=True)
        self._thread.start()
        log.debug("serving %s at %s", root, self.url)

    def close(self) -> None:
        """Stop serving and free the port; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
