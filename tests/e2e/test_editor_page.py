"""Two editors and a viewer on one project, each in their own browser context."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import write_audio
from tests.e2e.test_stems_page import sign_up

pytestmark = pytest.mark.browser

API_FETCH = """async ([url, method, body]) => {
    const csrf = document.cookie.split('; ').find(c => c.startsWith('csrftoken='));
    const r = await fetch(url, {
        method,
        headers: {'Content-Type': 'application/json',
                  'X-CSRFToken': csrf ? csrf.split('=')[1] : ''},
        body: body ? JSON.stringify(body) : undefined,
    });
    return [r.status, await r.text()];
}"""


def api(page, url, method="GET", body=None):
    status, text = page.evaluate(API_FETCH, [url, method, body])
    assert status < 300, text
    return text


def open_editor(page, base, project_id):
    page.goto(f"{base}/projects/{project_id}/editor/")
    expect(page.locator("#connection-status")).to_have_text(re.compile("connected"))


@pytest.fixture
def contexts(browser):
    made = [browser.new_context() for _ in range(3)]
    pages = [c.new_page() for c in made]
    for p in pages:
        p.set_default_timeout(30_000)
    yield pages
    for c in made:
        c.close()


def test_a_clip_moved_in_one_page_moves_in_the_other_and_a_viewer_cannot_edit(
    contexts, live_server_url, tmp_path
):
    owner, editor, viewer = contexts
    base = live_server_url
    sign_up(owner, base)
    editor_name = sign_up(editor, base)
    viewer_name = sign_up(viewer, base)

    owner.fill("input[name=name]", "Editor band")
    owner.click("text=Create project")
    expect(owner).to_have_url(re.compile(r"/projects/\d+/$"))
    project_id = int(re.search(r"/projects/(\d+)/", owner.url).group(1))
    api(
        owner,
        f"/api/projects/{project_id}/members",
        "POST",
        {"username": editor_name, "role": "editor"},
    )
    api(
        owner,
        f"/api/projects/{project_id}/members",
        "POST",
        {"username": viewer_name, "role": "viewer"},
    )

    wav = write_audio(tmp_path / "riff.wav", seconds=6.0, rate=48000, channels=1, freq=220.0)
    owner.set_input_files("input#stem-file", str(wav))
    owner.click("button#upload-button")
    expect(owner.locator("li.stem .stem-status")).to_have_text(
        re.compile("ready", re.I), timeout=60_000
    )

    open_editor(owner, base, project_id)
    open_editor(editor, base, project_id)
    open_editor(viewer, base, project_id)

    owner.locator("li.editor-stem button.add-stem-track").first.click()
    for page in (owner, editor, viewer):
        expect(page.locator(".lane .clip")).to_have_count(1)
        expect(page.locator(".clip canvas.clip-waveform[data-drawn='true']")).to_have_count(1)
    clip_id = owner.locator(".clip").first.get_attribute("data-clip-id")
    revision_before_move = int(owner.locator("#editor-revision").inner_text())

    # Drag the clip 40 px right in the owner's page: 2 s at 20 px/s.
    clip = owner.locator(f".clip[data-clip-id='{clip_id}']")
    box = clip.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    owner.mouse.move(x, y)
    owner.mouse.down()
    owner.mouse.move(x + 20, y, steps=4)
    owner.mouse.move(x + 40, y, steps=4)
    owner.mouse.up()
    for page in (owner, editor, viewer):
        expect(page.locator(f".clip[data-clip-id='{clip_id}']")).to_have_attribute(
            "data-start", "2"
        )
        expect(page.locator("#editor-revision")).to_have_text(str(revision_before_move + 1))

    # The other editor's page edits too: mute the track, seen by the owner.
    editor.locator(".track button.track-mute").first.click()
    expect(owner.locator(".track button.track-mute").first).to_have_attribute(
        "aria-pressed", "true"
    )

    # The viewer's controls are disabled and a drag changes nothing anywhere.
    expect(viewer.locator(".track input.track-gain").first).to_be_disabled()
    expect(viewer.locator(".track button.track-mute").first).to_be_disabled()
    revision = owner.locator("#editor-revision").inner_text()
    vclip = viewer.locator(f".clip[data-clip-id='{clip_id}']")
    box = vclip.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    viewer.mouse.move(x, y)
    viewer.mouse.down()
    viewer.mouse.move(x + 60, y, steps=6)
    viewer.mouse.up()
    # A round trip the viewer may make (a comment) proves the socket is live
    # and ordered after the drag: the clip is still at 2 s on every page.
    viewer.fill("form#comment-form textarea", "Love this riff")
    viewer.fill("form#comment-form input[name=time]", "1")
    viewer.locator("form#comment-form [type=submit]").click()
    for page in (owner, viewer):
        expect(page.locator("#comment-list .comment")).to_have_count(1)
        expect(page.locator("#editor-revision")).to_have_text(str(int(revision) + 1))
        expect(page.locator(f".clip[data-clip-id='{clip_id}']")).to_have_attribute(
            "data-start", "2"
        )
