"""The web page in a real browser (Playwright driving Debian's Chromium) against a real server
running the embedded model: a task streams text, a cell's output, a figure and the answer; the
stop button stops a task; the code cell runner runs cells. A screenshot is saved on failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_api
import pytest
from server_helpers import LiveServer

from codeloop.server.app import ServerSettings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM = shutil.which("chromium")


@pytest.fixture
def browser_page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run 'bash scripts/setup.sh --dev' (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            yield page
            assert not errors, f"JavaScript errors on the page: {errors}"
        except BaseException:
            shot = (
                Path(os.environ.get("CODELOOP_TEST_SCREENSHOTS", tmp_path))
                / f"{request.node.name}-failure.png"
            )
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failure: {shot}")
            raise
        finally:
            browser.close()


def _screenshot(page: object, name: str, tmp_path: Path) -> None:
    """Keep a screenshot of a good state when asked (CODELOOP_TEST_SCREENSHOTS=DIR), to look at."""
    directory = os.environ.get("CODELOOP_TEST_SCREENSHOTS")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


@pytest.mark.model
def test_the_page_runs_a_task_stops_one_and_runs_cells(
    assembled_default: Path, browser_page: object, tmp_path: Path
) -> None:
    page = browser_page
    expect = playwright_api.expect
    server = LiveServer(ServerSettings(model=f"gguf:{assembled_default}"))
    try:
        page.goto(server.url + "/")  # type: ignore[attr-defined]
        expect(page.locator("#history")).to_contain_text("No runs yet")  # type: ignore[attr-defined]

        # a task on the embedded model: streamed text, highlighted code, the cell's output, a figure, the answer
        page.fill(
            "#task",
            "Draw a bar chart of the squares of 1 to 5 with matplotlib, then print the sum of those squares.",
        )  # type: ignore[attr-defined]
        page.click("#send")  # type: ignore[attr-defined]
        expect(page.locator("#stop")).to_be_enabled()
        expect(page.locator(".msg.assistant .model-text").first).not_to_be_empty(timeout=120_000)
        answer = page.locator(".msg.assistant .answer")  # type: ignore[attr-defined]
        expect(answer).to_be_visible(timeout=300_000)
        expect(answer).to_contain_text("55")
        expect(page.locator(".msg.assistant pre.code .tok-keyword").first).to_be_visible()  # type: ignore[attr-defined]
        expect(page.locator(".msg.assistant .cell-output pre.stdout").first).to_contain_text("55")  # type: ignore[attr-defined]
        figure = page.locator(".msg.assistant img.figure").first  # type: ignore[attr-defined]
        expect(figure).to_be_visible()
        assert figure.evaluate("img => img.complete && img.naturalWidth > 100")
        expect(page.locator("#send")).to_be_enabled()  # type: ignore[attr-defined]
        expect(page.locator("#stop")).to_be_disabled()  # type: ignore[attr-defined]
        # the run is in the history list, and opens from it
        item = page.locator("#history .history-item").first  # type: ignore[attr-defined]
        expect(item).to_contain_text("Draw a bar chart")
        _screenshot(page, "task", tmp_path)
        item.click()
        expect(page.locator("#messages .ipynb")).to_be_visible()  # type: ignore[attr-defined]
        expect(page.locator("#messages img.figure").first).to_be_visible()  # type: ignore[attr-defined]

        # the stop button ends a running task
        page.fill("#task", "Write a long essay about prime numbers, then list the first 200 primes.")  # type: ignore[attr-defined]
        page.click("#send")  # type: ignore[attr-defined]
        expect(page.locator(".msg.assistant .model-text").last).not_to_be_empty(timeout=120_000)
        page.click("#stop")  # type: ignore[attr-defined]
        expect(page.locator(".msg.assistant").last).to_contain_text("Stopped.")
        expect(page.locator("#send")).to_be_enabled()  # type: ignore[attr-defined]
        # the loop stops at the model's next token (a prompt being read cannot be cut short)
        for _ in range(600):
            if not server.state.tasks:
                break
            page.wait_for_timeout(100)  # type: ignore[attr-defined]
        assert not server.state.tasks, "the server kept running the stopped task"
        page.click("#history-refresh")  # type: ignore[attr-defined]
        expect(page.locator("#history .history-item").first).to_contain_text("interrupted")  # type: ignore[attr-defined]

        # the plain code cell runner: state persists, values, errors and figures show
        page.click("#tab-cell")  # type: ignore[attr-defined]
        page.fill("#code", "x = 6 * 7\nx")  # type: ignore[attr-defined]
        page.click("#run-cell")  # type: ignore[attr-defined]
        expect(page.locator(".cell-run pre.value").first).to_have_text("42", timeout=60_000)
        page.fill("#code", "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nprint(x + 1)")  # type: ignore[attr-defined]
        page.click("#run-cell")  # type: ignore[attr-defined]
        latest = page.locator(".cell-run").first  # type: ignore[attr-defined]
        expect(latest.locator("pre.stdout")).to_have_text("43\n", timeout=60_000)
        expect(latest.locator("img.figure")).to_be_visible()
        page.fill("#code", "1 / 0")  # type: ignore[attr-defined]
        page.click("#run-cell")  # type: ignore[attr-defined]
        expect(page.locator(".cell-run").first.locator("pre.error")).to_contain_text(
            "ZeroDivisionError", timeout=60_000
        )
        _screenshot(page, "cells", tmp_path)
    finally:
        server.stop()
    assert len(server.state.sessions) == 0
