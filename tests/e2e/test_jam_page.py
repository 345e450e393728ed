"""The jam page in a real browser: two Chromium pages with fake microphones
playing a generated tone join one room on the live server, and each hears the
other (and not itself: the personal mix leaves each player out)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import write_audio

from .conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser

TONE_DB = -12.0


@pytest.fixture(scope="module")
def tone_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jam-audio") / "tone.wav"
    # 16-bit PCM WAV is what Chromium's fake capture device reads; it loops.
    return write_audio(
        path, seconds=5.0, rate=48000, channels=1, freq=440.0, level_db=TONE_DB, subtype="PCM_16"
    )


@pytest.fixture(scope="module")
def jam_browser(browser: Any, tone_wav: Path) -> Iterator[Any]:
    """A Chromium whose fake microphone plays the tone (a launch flag, so a
    browser of its own)."""
    b = browser.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={tone_wav}"],
    )
    yield b
    b.close()


def sign_up(page: Any, live_server_url: str) -> str:
    name = f"jam-{uuid.uuid4().hex[:8]}"
    page.goto(f"{live_server_url}/signup/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password1]", "Correct-Horse-77")
    page.fill("input[name=password2]", "Correct-Horse-77")
    page.click("button[type=submit]")
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    return name


def add_member(page: Any, project_id: int, username: str, role: str) -> None:
    status = page.evaluate(
        """async ([url, username, role]) => {
            const token = document.cookie.split('; ').find((c) => c.startsWith('csrftoken='))?.split('=')[1]
                ?? document.querySelector('input[name=csrfmiddlewaretoken]')?.value;
            const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRFToken': token},
                                        body: JSON.stringify({username, role})});
            return r.status;
        }""",
        [f"/api/projects/{project_id}/members", username, role],
    )
    assert status == 201


def remote_level(page: Any) -> float:
    return float(page.evaluate("window.roomtoneJam.remoteLevelDb"))


def test_two_players_join_one_room_and_each_hears_the_other(
    jam_browser: Any, live_server_url: str
) -> None:
    contexts = [jam_browser.new_context() for _ in range(2)]
    try:
        alice, bob = (c.new_page() for c in contexts)
        for p in (alice, bob):
            p.set_default_timeout(30_000)
        sign_up(alice, live_server_url)
        bob_name = sign_up(bob, live_server_url)
        alice.fill("input[name=name]", "Jam band")
        alice.click("text=Create project")
        expect(alice).to_have_url(re.compile(r"/projects/\d+/$"))
        project_id = int(re.search(r"/projects/(\d+)/", alice.url).group(1))  # type: ignore[union-attr]
        add_member(alice, project_id, bob_name, "editor")

        alice.click("#jam-link")
        expect(alice).to_have_url(f"{live_server_url}/projects/{project_id}/jam/")
        bob.goto(f"{live_server_url}/projects/{project_id}/jam/")
        expect(alice.locator("#jam-app")).to_be_visible()

        alice.click("button#jam-join")
        expect(alice.locator("#jam-status")).to_have_text("connected")
        expect(alice.locator("li.jam-player[data-participant]")).to_have_count(1)
        # Alone in the room, Alice's mix is silent: her own tone is left out.
        alice.wait_for_function("window.roomtoneJam.receiving")
        alice.wait_for_timeout(1000)
        assert remote_level(alice) < -60

        bob.click("button#jam-join")
        expect(bob.locator("#jam-status")).to_have_text("connected")
        for p in (alice, bob):
            expect(p.locator("li.jam-player[data-participant]")).to_have_count(2)
            # Each hears the other's tone (about -15 dBFS RMS for a -12 dBFS sine).
            p.wait_for_function("window.roomtoneJam.remoteLevelDb > -30", timeout=20_000)
            # Both players' meters move, from the server's per-player levels.
            p.wait_for_function(
                """() => [...document.querySelectorAll('li.jam-player meter.jam-level')]
                        .filter((m) => m.value > 0.5).length === 2""",
                timeout=20_000,
            )
            expect(p.locator("#jam-latency")).to_contain_text(re.compile(r"\d+ ms"))
        names = alice.evaluate("window.roomtoneJam.players.map((p) => p.name)")
        assert bob_name in names and len(names) == 2

        # One button records both players; stopping adds their takes to the project.
        alice.select_option("#jam-count-in", "0")
        alice.click("button#jam-record")
        expect(bob.locator("#jam-record-status")).to_contain_text("Recording")
        expect(alice.locator("button#jam-record")).to_have_text("Stop recording")
        alice.wait_for_timeout(1500)
        alice.click("button#jam-record")
        for p in (alice, bob):
            expect(p.locator("#jam-record-status")).to_contain_text(
                "Saved 2 takes as new tracks", timeout=60_000
            )
        document = alice.evaluate(
            "async (id) => (await (await fetch(`/api/projects/${id}/document`)).json()).document",
            project_id,
        )
        assert sorted(t["name"] for t in document["tracks"]) == sorted(names)
        assert [c["start"] for t in document["tracks"] for c in t["clips"]] == [0.0, 0.0]

        bob.click("button#jam-leave")
        expect(alice.locator("li.jam-player[data-participant]")).to_have_count(1)
        alice.wait_for_function("window.roomtoneJam.remoteLevelDb < -60", timeout=20_000)
    finally:
        for c in contexts:
            c.close()


def test_a_refused_microphone_is_explained(jam_browser: Any, live_server_url: str) -> None:
    context = jam_browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        # What a browser does when the person clicks "Block".
        page.add_init_script(
            """navigator.mediaDevices.getUserMedia = () =>
                   Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));"""
        )
        sign_up(page, live_server_url)
        page.fill("input[name=name]", "Quiet band")
        page.click("text=Create project")
        page.click("#jam-link")
        page.click("button#jam-join")
        expect(page.locator("#jam-app .error[role=alert]")).to_contain_text(
            "Microphone access was refused"
        )
        expect(page.locator("#jam-status")).to_have_text("not joined")
        expect(page.locator("button#jam-join")).to_be_visible()
    finally:
        context.close()
