"""A headless Chromium (Debian's, not a downloaded one) driven by Playwright, held to the loopback server.

Safety: every request a page makes goes through a route that lets the test server's origin through and
aborts (and records) anything else; the host resolver answers no name at all, so nothing leaves the
machine even if a route were missed. The profile is a fresh temporary directory (Playwright's own).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Route, sync_playwright

# Debian's package (CI installs it: scripts/install_sysdeps.sh --test); another path for other systems.
CHROMIUM = Path(os.environ.get("REELSENSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # gitignored; screenshots land here
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """The system Chromium, headless; fails (never skips) when it is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the web page tests need Debian's chromium "
            "(apt-get install chromium, or `bash scripts/install_sysdeps.sh --test`)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


def _launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


@dataclass
class Watched:
    """A page plus what it did that a test should not see: requests elsewhere, script errors, CSP hits."""

    page: Page
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.refused == [], f"the page asked for other hosts: {self.refused}"
        assert self.errors == [], f"the page logged errors: {self.errors}"


@contextlib.contextmanager
def open_page(browser: Browser, base_url: str) -> Iterator[Watched]:
    """A new context (own storage) with one page that may only reach `base_url`'s origin."""
    origin = urlsplit(base_url)
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    watched = Watched(context.new_page())

    def guard(route: Route) -> None:
        url = urlsplit(route.request.url)
        if (url.scheme, url.netloc) == (origin.scheme, origin.netloc):
            route.continue_()
        else:
            watched.refused.append(route.request.url)
            route.abort("blockedbyclient")

    def console(message: ConsoleMessage) -> None:
        # A failed API call (401, 415...) is logged by Chromium as a failed resource: that is expected.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            watched.errors.append(message.text)

    context.route("**/*", guard)
    watched.page.on("console", console)
    watched.page.on("pageerror", lambda error: watched.errors.append(f"script error: {error}"))
    try:
        yield watched
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
