"""The storefront in a real Chromium (Debian's ``chromium``, driven by Playwright).

The shop runs as `pasar up` runs it: five real processes on the database that
``PASAR_TEST_DB`` picks. Without a Chromium on the machine these tests are skipped with
the command that installs one; CI installs it, so there they always run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from shoplib import RunningShop, database_env, free_base_port, start_shop

CHROMIUM = (
    os.environ.get("PASAR_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
    or ""
)
# No first-run work, no calls home: this machine has no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM:
        return
    if os.environ.get("PASAR_REQUIRE_BROWSER"):
        raise pytest.UsageError("PASAR_REQUIRE_BROWSER is set but no Chromium was found")
    skip = pytest.mark.skip(reason="Chromium is not installed (apt-get install chromium)")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningShop]:
    directory = tmp_path_factory.mktemp("browser-shop")
    with ExitStack() as stack:
        running = start_shop(directory / "var", free_base_port(), database_env(stack, directory))
        try:
            yield running
        finally:
            code = running.stop()
            assert code == 0, "".join(running.output[-50:])


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def new_context(browser: Browser, *, phone: bool = False) -> BrowserContext:
    """A fresh visitor from Indonesia (no cookies), on a desktop or a 360 px phone."""
    if phone:
        context = browser.new_context(
            viewport={"width": 360, "height": 780},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="id-ID",
        )
    else:
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="id-ID")
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())  # "Cancel this order?" -> yes
    yield tab
    context.close()


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = new_context(browser, phone=True)
    tab = context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    yield tab
    context.close()
