"""The render panel on the project page, against a real server and browser."""

from __future__ import annotations

import json
import re

import pytest
import soundfile as sf
from playwright.sync_api import expect

from tests.conftest import write_audio
from tests.e2e.test_stems_page import sign_up

pytestmark = pytest.mark.browser


def test_render_from_the_page_shows_progress_and_downloads_audio(page, live_server_url, tmp_path):
    frames: list[dict] = []

    def watch(ws) -> None:
        ws.on("framereceived", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", watch)
    sign_up(page, live_server_url)
    page.fill("input[name=name]", "Browser renders")
    page.click("text=Create project")
    expect(page).to_have_url(re.compile(r"/projects/\d+/$"))
    project_id = int(re.search(r"/projects/(\d+)/", page.url).group(1))

    wav = write_audio(
        tmp_path / "pad.wav", seconds=30.0, rate=48000, channels=2, freq=220.0, level_db=-18
    )
    page.set_input_files("input#stem-file", str(wav))
    page.click("button#upload-button")
    stem = page.locator("li.stem").first
    expect(stem).to_have_attribute("data-stem-id", re.compile(r"\d+"))
    stem_id = int(stem.get_attribute("data-stem-id"))

    # A track and a clip, through the REST edits endpoint with the page's own
    # fetch helper (session cookie and CSRF header).
    edit = page.evaluate(
        """async ({ projectId, stemId }) => {
            const { api } = await import('/static/frontend/js/api.js');
            return api.post(`/api/projects/${projectId}/edits`, { ops: [
                { op: 'create', kind: 'track', id: 'pad', props: { name: 'Pad', order: 'V' } },
                { op: 'create', kind: 'clip', id: 'c1',
                  props: { track: 'pad', source: `stem:${stemId}`, start: 0.5, fade_in: 1.0 } },
            ] });
        }""",
        {"projectId": project_id, "stemId": stem_id},
    )
    revision = edit["revision"]

    # Every progress bar the panel ever shows, whatever its lifetime.
    page.evaluate(
        """() => {
            window.renderBars = [];
            new MutationObserver(() => {
                for (const bar of document.querySelectorAll('progress.render-progress'))
                    window.renderBars.push(Number(bar.value));
            }).observe(document.getElementById('renders'),
                       { subtree: true, childList: true, attributes: true });
        }"""
    )
    form = page.locator("form#render-form")
    form.locator("select[name=format]").select_option("flac24")
    form.locator("select[name=master]").select_option("streaming")
    expect(form.locator("input[name=stems][type=checkbox]")).not_to_be_checked()
    form.locator("button[type=submit]").click()

    item = page.locator("li.render").first
    expect(item).to_have_attribute("data-render-id", re.compile(r"\d+"))
    render_id = int(item.get_attribute("data-render-id"))
    expect(item).to_have_attribute("data-status", "done", timeout=60_000)
    link = item.locator("a.render-download")
    expect(link).to_be_visible()
    expect(item.locator("button.render-cancel")).to_have_count(0)

    progress = [
        f["progress"]
        for f in frames
        if f.get("type") == "render.progress" and f["render_id"] == render_id
    ]
    assert progress, "the page received no render.progress events"
    assert progress == sorted(progress) and progress[-1] <= 1.0
    assert page.evaluate("window.renderBars.length") > 0, "no progress bar was shown"

    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"Browser renders r{revision}.flac"
    audio, rate = sf.read(download.path())
    assert rate == 48000 and audio.shape == (round(30.5 * 48000), 2)
    # Mastered to -14 LUFS: about 4 dB above the -18 dBFS (peak 0.126) source.
    assert abs(audio).max() > 0.18

    # The same render again is served from the cache, at once.
    form.locator("button[type=submit]").click()
    expect(page.locator("li.render")).to_have_count(2)
    again = page.locator("li.render").first
    expect(again).to_have_attribute("data-status", "done")
    expect(again.locator(".render-cached")).to_have_text("cached")
    expect(again.locator("a.render-download")).to_be_visible()
