"""The web page at `/`, driven in Debian's headless Chromium against a real server on loopback.

One server with the real models serves the module (loading them is the slow part); the API-key test uses
the fake analyzer, since its point is the page's handling of 401/403. The page may reach the test
server's origin only (tests/browser.py), and its screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser import Watched, chromium, open_page, screenshot
from tests.service_helpers import (
    FakeFactory,
    live_server,
    make_settings,
    origin_server,
    wait_ready,
    wait_until,
)

RESULT_TIMEOUT_MS = 120_000  # the first analysis also warms the models up


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("web-ui-server")
    settings = make_settings(tmp, frames=4, device="cpu", cache_dir=str(tmp / "cache"))
    with live_server(settings, None) as url, httpx.Client(base_url=url) as http:
        wait_ready(http, 120)
        yield url


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of a coffee picture with espeak-ng speech: a transcript with timestamps."""
    from tests.labelled_clips import CLIPS, make_clip

    return make_clip(next(c for c in CLIPS if c.name == "espresso"), tmp_path_factory.mktemp("web-ui-clip"))


@pytest.fixture
def watched(browser: Browser, server: str) -> Iterator[Watched]:
    with open_page(browser, server) as page:
        yield page
        page.assert_clean()


def clock(seconds: float) -> str:
    """The page's time format: m:ss.s."""
    minutes, rest = divmod(max(0.0, seconds), 60)
    return f"{int(minutes)}:{rest:04.1f}"


def job_of(page: Page, base_url: str) -> dict[str, Any]:
    job_id = page.locator("#job-id").inner_text()
    assert job_id, "the page shows no job id"
    response = httpx.get(f"{base_url}/v1/jobs/{job_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def tab_order(page: Page, until: str, limit: int = 30) -> list[str]:
    """Ids of the elements Tab visits from the top of the page until `until`."""
    page.locator("body").focus()
    seen: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
        if seen[-1] == until:
            break
    return seen


def test_page_assets_and_headers(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        page = http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
        assert re.findall(r'(?:src|href)="(?!/|#)[^"]*"', page.text) == []  # same-origin paths only
        assert http.get("/ui/app.js").headers["content-type"].startswith("text/javascript")
        assert http.get("/ui/style.css").headers["content-type"].startswith("text/css")
        for bad in ("/ui/missing.js", "/ui/index.html", "/ui/..%2Fapp.py", "/ui/%2e%2e"):
            response = http.get(bad)
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found", bad
        assert "/" not in http.get("/openapi.json").json()["paths"]  # the page is not part of the API


def test_api_reference_renders_without_a_cdn(watched: Watched) -> None:
    page = watched.page
    page.goto("/docs")  # Swagger UI from the fastapi-offline wheel, reading this service's OpenAPI 3.1
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("reelsense")
    expect(page.locator(".opblock-summary-path", has_text="/v1/jobs/{job_id}").first).to_be_visible()
    assert page.request.get("/redoc").status == 404  # ReDoc would fetch its logo from a CDN


def test_upload_by_keyboard_shows_the_whole_result(watched: Watched, server: str, clip: Path) -> None:
    page = watched.page
    # Intercept file choosers from the start: Playwright turns interception on asynchronously when the
    # first listener appears, and a chooser opened before that is a native dialog the test never sees.
    page.on("filechooser", lambda _: None)
    page.goto("/")
    expect(page.locator("#service-status")).to_have_text("Service ready.")
    for label in ("Drop a video here", "Video URL (http or https)", "Custom labels (optional)", "API key"):
        expect(page.get_by_label(label)).to_have_count(1)

    order = tab_order(page, until="analyse")
    assert [i for i in order if i in ("file", "url", "labels", "analyse")] == [
        "file",
        "url",
        "labels",
        "analyse",
    ]
    page.get_by_label("Drop a video here").focus()
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")  # the drop zone's file input opens the chooser from the keyboard
    chooser.value.set_files(clip)
    expect(page.locator("#file-name")).to_contain_text(clip.name)
    page.locator("#analyse").focus()
    page.keyboard.press("Enter")

    expect(page.locator("#status-text")).to_have_text("succeeded · done · 100%", timeout=RESULT_TIMEOUT_MS)
    expect(page.locator("#result")).to_be_visible()
    job = job_of(page, server)
    result = job["result"]
    stages = page.locator("#stage-log li").evaluate_all("items => items.map(i => i.firstChild.textContent)")
    assert stages[0] == "upload" and stages[-1] == "done" and len(stages) >= 3, stages

    _check_category(page, result["category"])
    _check_sentiment(page, result["sentiment"])
    _check_timeline(page, result["segments"])
    _check_transcript(page, result["transcript"])
    expect(page.locator("#raw-json")).to_contain_text(job["id"])
    page.locator("#player").evaluate("v => { v.currentTime = 0; }")
    screenshot(page, "web-ui.png")


def _check_category(page: Page, category: dict[str, Any]) -> None:
    expect(page.locator("#category-label")).to_have_text(category["label"])
    expect(page.locator("#category-confidence")).to_have_text(f"{category['confidence'] * 100:.1f}%")
    top = sorted(category["scores"].items(), key=lambda item: -item[1])[:5]
    bars = page.locator("#top-labels li")
    expect(bars).to_have_count(len(top))
    for i, (name, p) in enumerate(top):
        assert _bar(bars.nth(i)) == (name, f"{p * 100:.1f}%"), i
        _assert_drawn_width(bars.nth(i), p)


def _bar(item: Locator) -> tuple[str, str]:
    return item.locator(".bar-name").inner_text(), item.locator(".bar-value").inner_text()


def _assert_drawn_width(item: Locator, p: float) -> None:
    """The fill's rendered width, as a share of its track, is the probability."""
    share = item.evaluate(
        "li => li.querySelector('.bar-fill').getBoundingClientRect().width"
        " / li.querySelector('.bar-track').getBoundingClientRect().width"
    )
    assert abs(share - p) < 0.01, (share, p)


def _check_sentiment(page: Page, sentiment: dict[str, Any]) -> None:
    expect(page.locator("#sentiment-label")).to_have_text(sentiment["label"])
    blocks = page.locator("#modalities .modality")
    expect(blocks).to_have_count(len(sentiment["by_modality"]))
    for name, scores in sentiment["by_modality"].items():
        block = page.locator(f'#modalities .modality[data-modality="{name}"]')
        if scores is None:
            expect(block.locator(".no-signal")).to_be_visible()
            continue
        bars = block.locator("li")
        expect(bars).to_have_count(len(scores))
        for i, (label, p) in enumerate(scores.items()):
            assert _bar(bars.nth(i)) == (label, f"{p * 100:.1f}%"), (name, label)
    assert sentiment["by_modality"]["text"] is not None  # the clip speaks: the text modality has a say


def _check_timeline(page: Page, segments: list[dict[str, Any]]) -> None:
    assert segments, "the result has no segments"
    for kind in ("category", "sentiment"):
        shown = page.locator(f"#track-{kind} .segment")
        expect(shown).to_have_count(len(segments))
        assert shown.all_inner_texts() == [s[kind]["label"] for s in segments]
    # The last window's button seeks to its start, like a transcript line.
    page.locator("#track-category .segment").last.click()
    assert _current_time(page) == pytest.approx(segments[-1]["start_s"], abs=0.05)


def _check_transcript(page: Page, transcript: dict[str, Any]) -> None:
    segments = transcript["segments"]
    assert segments, "the clip's speech was not transcribed"
    lines = page.locator("#transcript li")
    expect(lines).to_have_count(len(segments))
    for i, segment in enumerate(segments):
        expect(lines.nth(i).locator(".timestamp")).to_have_text(clock(segment["start_s"]))
        expect(lines.nth(i).locator(".transcript-text")).to_have_text(segment["text"])
    page.locator("#player").evaluate(
        "v => new Promise(ok => v.readyState >= 1 ? ok() : v.onloadedmetadata = ok)"
    )
    for i, segment in enumerate(segments):
        page.locator("#player").evaluate("v => { v.currentTime = v.duration - 0.2; }")  # somewhere else first
        button = lines.nth(i).locator(".timestamp")
        if i % 2:
            button.click()
        else:
            button.focus()
            page.keyboard.press("Enter")
        assert _current_time(page) == pytest.approx(segment["start_s"], abs=0.05), i


def _current_time(page: Page) -> float:
    return float(page.locator("#player").evaluate("v => v.currentTime"))


def test_a_bad_file_and_bad_labels_show_the_api_message(
    watched: Watched, server: str, tmp_path: Path, clip: Path
) -> None:
    page = watched.page
    page.goto("/")
    page.locator("#analyse").click()
    expect(page.locator("#error .error-message")).to_have_text("Choose a video file or paste its URL first.")

    bad = tmp_path / "notes.mp4"
    bad.write_text("this is a shopping list, not a video\n" * 20)
    page.get_by_label("Drop a video here").set_input_files(bad)
    page.locator("#analyse").click()
    message = page.locator("#error .error-message")
    expect(message).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    job = job_of(page, server)
    assert job["status"] == "failed"
    expect(message).to_have_text(job["error"]["message"])
    expect(page.locator("#error .error-code")).to_have_text(job["error"]["code"])
    expect(page.locator("#result")).to_be_hidden()
    screenshot(page, "web-ui-error.png")

    # Refused when the job is created (400): the message of the error body, as the API wrote it.
    page.get_by_label("Drop a video here").set_input_files(clip)
    page.get_by_label("Custom labels (optional)").fill("only-one")
    page.locator("#analyse").click()
    expect(message).to_have_text("a label set needs at least two labels")
    expect(page.locator("#error .error-code")).to_have_text("invalid_labels")
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and '{"error"' not in text


def test_api_key_is_asked_for_once(browser: Browser, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video bytes for the fake analyzer")
    settings = make_settings(tmp_path, api_keys="right-key")
    with (
        live_server(settings, FakeFactory()) as url,
        httpx.Client(base_url=url) as http,
        open_page(browser, url) as watched,
    ):
        wait_ready(http)
        page = watched.page
        page.goto("/")
        key_status = page.locator("#key-status")
        expect(key_status).to_have_text("an API key is required (X-API-Key or Authorization: Bearer)")
        expect(page.get_by_label("API key")).to_be_visible()  # the panel opened by itself

        page.get_by_label("Drop a video here").set_input_files(video)
        page.locator("#analyse").click()
        expect(page.locator("#error .error-message")).to_have_text(
            "an API key is required (X-API-Key or Authorization: Bearer)"
        )

        page.get_by_label("API key").fill("wrong-key")
        page.keyboard.press("Enter")
        page.locator("#analyse").click()
        expect(page.locator("#error .error-message")).to_have_text("this API key is not valid")

        page.get_by_label("API key").fill("right-key")
        page.keyboard.press("Enter")
        expect(page.locator("#key-summary")).to_have_text("(set)")
        page.locator("#analyse").click()
        expect(page.locator("#status-text")).to_have_text("succeeded · done · 100%")
        expect(page.locator("#error")).to_be_hidden()

        page.reload()  # entered once: the tab keeps it
        expect(page.locator("#key-summary")).to_have_text("(set)")
        expect(page.get_by_label("API key")).to_be_hidden()
        page.get_by_label("Drop a video here").set_input_files(video)
        page.locator("#analyse").click()
        expect(page.locator("#status-text")).to_have_text("succeeded · done · 100%")
        assert page.get_by_label("API key").input_value() == ""  # never written back into the page
        watched.assert_clean()


def test_progress_cancel_and_a_url_job(browser: Browser, tmp_path: Path) -> None:
    video = tmp_path / "slow.mp4"
    video.write_bytes(b"block")  # the fake analyzer waits on its gate after reporting a stage
    fake = FakeFactory()
    settings = make_settings(tmp_path, allow_networks="127.0.0.0/8")  # the URL below is on loopback
    with (
        origin_server() as origin,
        live_server(settings, fake) as url,
        httpx.Client(base_url=url) as http,
        open_page(browser, url) as watched,
    ):
        try:
            wait_ready(http)
            page = watched.page
            page.goto("/")
            page.get_by_label("Drop a video here").set_input_files(video)
            page.locator("#analyse").click()
            status = page.locator("#status-text")
            expect(status).to_contain_text("running · ")

            def page_shows_the_api_stage() -> bool:
                job = job_of(page, url)
                shown = f"{job['status']} · {job['stage']} · {int(job['progress'] * 100 + 0.5)}%"
                return bool(status.inner_text() == shown)

            wait_until(page_shows_the_api_stage, 10)  # whatever the stage is called, the page shows it
            page.get_by_role("button", name="Cancel the job").click()
            expect(page.locator("#error .error-message")).to_have_text("cancelled by the client")
            expect(page.locator("#error .error-code")).to_have_text("cancelled")
            expect(page.get_by_role("button", name="Cancel the job")).to_be_hidden()
            expect(page.locator("#analyse")).to_be_enabled()
        finally:
            fake.gate.set()  # frees the one worker for the next job (and the server to stop)

        # A URL replaces the chosen file; labels go as a JSON list; the player has nothing to play.
        origin.routes["/clip.mp4"] = (200, {"Content-Type": "video/mp4"}, b"z" * 1000)
        page.get_by_label("Video URL (http or https)").fill(f"http://127.0.0.1:{origin.server_port}/clip.mp4")
        expect(page.locator("#file-name")).to_have_text("No file chosen")
        page.get_by_label("Custom labels (optional)").fill("cats, dogs")
        page.locator("#analyse").click()
        expect(status).to_have_text("succeeded · done · 100%")
        job = job_of(page, url)
        assert job["source"].endswith("/clip.mp4") and job["result"]["evidence"]["labels"] == "custom"
        expect(page.locator("#player")).to_be_hidden()
        expect(page.locator("#no-player")).to_be_visible()
        expect(page.locator("#category-label")).to_have_text("none")  # the fake analyzer has no models
        watched.assert_clean()
    assert fake.backend.refused == []
