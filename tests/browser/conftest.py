"""Browser tests: the real admin, served by pytest-django's live server, driven in Chromium.

Chromium is Debian's (/usr/bin/chromium), driven by Playwright for Python; Playwright's own
browser downloads are never used. Without /usr/bin/chromium these tests are skipped with
the reason, and the rest of the suite runs as usual; CI sets TRIGGERHUB_REQUIRE_CHROMIUM=1
so that a missing browser fails them instead.

Tests take ``page`` (a fresh browser context per test, at the live server's address) and
``screenshot`` (a PNG of the page at a step, kept in var/screenshots/<database vendor>/, printed
at the end of the run; a failing test leaves one of the page as it failed).
"""

import itertools
import os
import shutil
from pathlib import Path

import pytest
from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium calls home, and a closed network refuses it.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = pytest.StashKey[Path]()
PHASE_REPORTS = pytest.StashKey[dict]()


@pytest.fixture(scope="package")
def browser():
    """Chromium, started once for the browser tests and closed after the last of them.

    Package scope, not session: Playwright's sync API keeps its event loop running in this
    thread while it is open, and Django refuses the ORM wherever it sees a running loop.
    Nothing here is async, so the check is switched off while Chromium is open, and only then.
    """
    if not CHROMIUM.exists():
        missing = f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install -y chromium)"
        if os.environ.get("TRIGGERHUB_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{missing}; TRIGGERHUB_REQUIRE_CHROMIUM=1 makes that a failure")
        pytest.skip(missing)

    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def page(browser, live_server, screenshot_folder, request):
    """A new page in a browser context of this test's own (no cookies from other tests)."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    call = request.node.stash.get(PHASE_REPORTS, {}).get("call")
    if call is not None and call.failed:
        page.screenshot(path=screenshot_folder / request.node.name / "failed.png", full_page=True)
    context.close()


@pytest.fixture(scope="session")
def screenshot_folder(request):
    """var/screenshots/<database vendor>/ in the checkout (or TRIGGERHUB_SCREENSHOTS), emptied at the
    start of a run: CI's two suites each leave theirs where the run can be inspected afterwards."""
    from django.db import connection

    root = Path(os.environ.get("TRIGGERHUB_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
    folder = root / connection.vendor
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    request.config.stash[SCREENSHOTS] = folder
    return folder


@pytest.fixture
def screenshot(page, screenshot_folder, request):
    """``screenshot("step")`` saves the whole page as <folder>/<test>/NN-step.png and returns its path."""
    numbers = itertools.count(1)

    def take(step: str) -> Path:
        path = screenshot_folder / request.node.name / f"{next(numbers):02d}-{step}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(PHASE_REPORTS, {})[report.when] = report
    return report


def pytest_terminal_summary(terminalreporter, config):
    folder = config.stash.get(SCREENSHOTS, None)
    if folder is not None and any(folder.iterdir()):
        terminalreporter.write_line(f"browser test screenshots: {folder}")
