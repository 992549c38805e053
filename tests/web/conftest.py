"""Browser fixtures: the real server (``orchestrator serve``) on a free port and headless Chromium via Playwright.

One server per test module (start-up costs seconds, a demo mission minutes); one browser per module; a fresh
browser context per page so sessionStorage (the API key) never leaks between tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.servers import free_port, wait_healthy

CHROMIUM = Path("/usr/bin/chromium")
# Offline, no background traffic: the page must work from our server alone.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Screenshots for people to look at, kept after the run: $ORCH_TEST_ARTIFACTS, else a folder in the temp dir.
ARTIFACTS = Path(os.environ.get("ORCH_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "ml-orchestrator-test-artifacts")
SCREENSHOTS = ARTIFACTS / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
START_TIMEOUT_S = 60


@dataclass
class LiveServer:
    """A running ``orchestrator serve`` with its own home directory and an admin key."""

    url: str
    key: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def show(self, mission_id: str) -> dict[str, Any]:
        """``orchestrator missions show ID --json`` on this server's records, as a person would run it."""
        shown = subprocess.run([_cli(), "missions", "show", mission_id, "--json"], env=self.env, capture_output=True,
                               text=True, timeout=120, check=False)
        assert shown.returncode == 0, f"missions show failed:\n{shown.stdout}\n{shown.stderr}"
        return json.loads(shown.stdout)

    def create_key(self, role: str, name: str) -> str:
        """A new API key, made as an operator makes one: ``orchestrator keys create``."""
        return _create_key(self.env, role=role, name=name)

    @property
    def database(self) -> Path:
        """The SQLite file under ORCH_HOME (the default database)."""
        return self.home / "orchestrator.db"

    def raw(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
        """Call the API as the admin key (or ``key``) and hand back the response, whatever its status."""
        return httpx.request(method, f"{self.url}/api/v1{path}", timeout=30,
                             headers={"Authorization": f"Bearer {key or self.key}"}, **kwargs)

    def api(self, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> Any:
        """Call the API as the admin key (or ``key``); returns the JSON body and raises on an HTTP error."""
        response = self.raw(method, path, key=key, **kwargs)
        response.raise_for_status()
        return response.json()

    def wait_for_status(self, mission_id: str, statuses: set[str], *, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            mission = self.api("GET", f"/missions/{mission_id}")
            if mission["status"] in statuses:
                return mission
            if time.monotonic() > deadline:
                raise AssertionError(f"mission {mission_id} still {mission['status']!r} after {timeout_s}s; "
                                     f"wanted one of {sorted(statuses)}\n{self.tail()}")
            time.sleep(0.5)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "server log (tail):\n" + "\n".join(text.splitlines()[-lines:])


def _cli() -> str:
    return str(Path(sys.executable).parent / "orchestrator")


def _create_key(env: dict[str, str], *, role: str, name: str) -> str:
    created = subprocess.run([_cli(), "keys", "create", "--role", role, "--name", name], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, f"keys create failed:\n{created.stdout}\n{created.stderr}"
    return created.stdout.strip().splitlines()[-1].strip()


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Extra ``ORCH_`` settings for this module's server (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_env: dict[str, str]) -> Iterator[LiveServer]:
    """The real service, as a user starts it: a key from ``orchestrator keys create``, then ``orchestrator serve``."""
    home = tmp_path_factory.mktemp("orch-home")
    port = free_port()
    env = {**os.environ, "ORCH_HOME": str(home), "ORCH_HOST": "127.0.0.1", "ORCH_PORT": str(port),
           "ORCH_MODEL": "builtin", **server_env}
    env.pop("ORCH_DATABASE_URL", None)
    env.pop("ORCH_WORKSPACE_ROOTS", None)
    key = _create_key(env, role="admin", name="web-reviewer")
    log = home / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([_cli(), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    live = LiveServer(url=f"http://127.0.0.1:{port}", key=key, home=home, log=log, process=process, env=env)
    try:
        wait_healthy(live.url, process, live.tail, timeout=START_TIMEOUT_S)
        yield live
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium (Playwright cannot download browsers here)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Open a page in a fresh context (own sessionStorage); fails the test on any uncaught script error or any
    error in the console (a refused or failed request logs one: the page must not ask for what it may not have).
    ``failed_requests_ok=True`` is for the tests that make requests fail on purpose."""
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(viewport: dict[str, int] | None = None, *, failed_requests_ok: bool = False) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True)
        context.set_default_timeout(20_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(f"{page.url}: {err}"))

        def console(message: Any) -> None:
            if message.type != "error":
                return
            if failed_requests_ok and message.text.startswith("Failed to load resource"):
                return
            errors.append(f"{page.url}: console: {message.text}")

        page.on("console", console)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not errors, f"errors on the page: {errors}"


def sign_in(page: Any, server: LiveServer, key: str | None = None) -> None:
    """Open the page and enter the key in the sign-in form, as a person would."""
    page.goto(server.url + "/")
    page.get_by_label("API key", exact=True).fill(key if key is not None else server.key)
    page.get_by_role("button", name="Sign in").click()


def shoot(page: Any, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot under ``SCREENSHOTS`` for people to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
