from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.conftest import write_audio

pytestmark = pytest.mark.browser


def sign_up(page, live_server_url: str) -> str:
    username = f"e2e-{uuid.uuid4().hex[:8]}"
    page.goto(f"{live_server_url}/signup/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password1]", "Correct-Horse-77")
    page.fill("input[name=password2]", "Correct-Horse-77")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/signup/" not in url)
    return username


def test_sign_up_create_project_upload_and_see_waveform_and_loudness(
    page, live_server_url, tmp_path
):
    sign_up(page, live_server_url)
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()

    page.fill("input[name=name]", "Browser band")
    page.click("text=Create project")
    expect(page).to_have_url(re.compile(r"/projects/\d+/$"))
    expect(page.locator("#project-name")).to_have_text("Browser band")

    wav = write_audio(
        tmp_path / "lead.wav", seconds=4.0, rate=48000, channels=2, freq=997.0, level_db=-20
    )
    page.set_input_files("input#stem-file", str(wav))
    page.click("button#upload-button")

    stem = page.locator("li.stem").first
    expect(stem).to_contain_text("lead")
    expect(stem.locator(".stem-status")).to_have_text(re.compile("ready", re.I), timeout=60_000)
    expect(stem.locator("canvas.waveform[data-drawn='true']")).to_have_count(1)
    lufs = stem.locator(".stem-lufs").inner_text()
    # A 997 Hz sine at -20 dBFS on both channels measures -20 LUFS.
    value = float(re.search(r"-?\d+(\.\d+)?", lufs.replace("\u2212", "-")).group(0))
    assert value == pytest.approx(-20.0, abs=0.15)
    # The waveform has ink on it: a band of pixels that differ from the
    # background, as tall as a -20 dBFS signal is (a tenth of full scale).
    drawn = page.evaluate(
        """() => {
        const c = document.querySelector('li.stem canvas.waveform');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const bg = [d[0], d[1], d[2], d[3]];
        let ink = 0;
        for (let i = 0; i < d.length; i += 4)
            if (d[i] !== bg[0] || d[i+1] !== bg[1] || d[i+2] !== bg[2] || d[i+3] !== bg[3]) ink++;
        return ink / (c.width * c.height);
    }"""
    )
    assert 0.02 < drawn < 0.5


def test_bad_upload_shows_a_clear_error(page, live_server_url, tmp_path):
    sign_up(page, live_server_url)
    page.fill("input[name=name]", "Bad uploads")
    page.click("text=Create project")
    fake = tmp_path / "lyrics.wav"
    fake.write_text("not audio at all\n" * 100)
    page.set_input_files("input#stem-file", str(fake))
    page.click("button#upload-button")
    expect(page.locator("#stems .error[role=alert]")).to_contain_text("not an audio file")
    expect(page.locator("li.stem")).to_have_count(0)
