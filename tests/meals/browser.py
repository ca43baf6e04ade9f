"""Set-up of the browser tests: Debian's Chromium driven by Playwright's Python package, and the app
served from a thread against a database of its own.

This module is the one place that decides whether browser tests run (`chromium` fixture): where
the playwright package or Chromium is missing they are skipped with a message saying so — except
under CI=true, where that is a failure (.ci/run installs Debian's chromium package first).
Playwright never downloads a browser here: it launches the system's Chromium by path.

The usual tests run inside one rolled-back transaction on one connection (tests/conftest.py);
a server in another thread cannot see that, so the browser tests get a freshly migrated database
whose rows are really committed, and run outside the per-test transaction (`no_db`).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.serving import make_server

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """Debian's Chromium, or the one named by CANTEEN_CHROMIUM."""
    return os.environ.get("CANTEEN_CHROMIUM") or DEFAULT_CHROMIUM


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.lock)"
    path = chromium_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return f"Chromium not found at {path} (apt-get install chromium, or set CANTEEN_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Playwright's Chromium launcher bound to the system's Chromium; skips (fails under CI=true)
    where that is not possible."""
    problem = _missing()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true requires the browser tests: {problem}", pytrace=False)
        pytest.skip(f"browser tests skipped: {problem}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield Browser(playwright.chromium, chromium_path())


@dataclass
class Browser:
    launcher: Any
    executable: str

    @contextmanager
    def context(self, **options: Any) -> Iterator[Any]:
        """A new browser with a fresh profile (its own localStorage, cache and service workers)."""
        profile = tempfile.mkdtemp(prefix="canteen-chromium-")
        context = self.launcher.launch_persistent_context(
            profile, executable_path=self.executable, headless=True, args=CHROMIUM_ARGS, **options
        )
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class LiveServer:
    """The app on a free localhost port, served by werkzeug from a thread (one thread per request).

    `browser_network_down`: while set, every request from a browser has its connection cut
    without an answer, as if the tablet's network were down. Playwright's `set_offline` does
    that inside Chromium, but not watertight: around a reload a request of the page being
    unloaded can still slip out (rarely, and its answer is lost). A test proving that nothing
    is recorded while offline needs the network really down; the test process itself (urllib)
    still gets through.
    """

    def __init__(self, app) -> None:
        self.browser_network_down = False

        def network(environ, start_response):
            if self.browser_network_down and "Python-urllib" not in environ.get("HTTP_USER_AGENT", ""):
                environ["werkzeug.socket"].shutdown(socket.SHUT_RDWR)
                raise ConnectionAbortedError("the browser's network is down (test)")  # werkzeug: dropped
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, network, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="canteen-live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()
