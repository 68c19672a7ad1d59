"""The live page in a real browser: headless Chromium (Debian's) with its fake camera playing frames of
vtest.avi, against a real `posekit serve` on 127.0.0.1.  Run with ``pytest -m browser``; needs chromium, ffmpeg
(apt), playwright (pip; never `playwright install`) and opencv-doc's vtest.avi.

Set POSEKIT_SCREENSHOT=path.png to keep a screenshot of the live page."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
MESSI = VTEST.with_name("messi5.jpg")
MODEL = "centernet+movenet-lightning"
#: The page's limb colour (#00ff66) and how near a pixel must be to count as skeleton (no frame of the clip has
#: a single such pixel); a person's limbs and id label make well over MIN_PIXELS of them.
LINE_RGB, TOLERANCE, MIN_PIXELS = np.array([0, 255, 102]), 40, 60


@pytest.fixture(scope="module")
def browser_setup(tmp_path_factory):
    for need, what in ((CHROMIUM, "apt install chromium"), (VTEST, "apt install opencv-doc")):
        if not need.exists():
            pytest.skip(f"{need} not found ({what})")
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg not found (apt install ffmpeg)")
    pw = pytest.importorskip("playwright.sync_api", reason="pip install playwright (never `playwright install`)")
    pytest.importorskip("fastapi")
    clip = tmp_path_factory.mktemp("camera") / "clip.y4m"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(VTEST), "-frames:v", "50", "-pix_fmt",
                    "yuv420p", str(clip)], check=True, timeout=120)
    return pw, clip


def chromium_args(clip: Path) -> list[str]:
    return ["--headless", "--no-sandbox", "--disable-gpu", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}",
            "--autoplay-policy=no-user-gesture-required", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]


def skeleton_pixels(png: bytes) -> int:
    import cv2

    rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return int((np.abs(rgb.astype(int) - LINE_RGB).max(axis=2) < TOLERANCE).sum())


def counter(page, element: str) -> float:
    return float(page.text_content(f"#{element}") or 0)


def test_live_page_draws_tracked_skeletons_and_reconnects_after_a_restart(browser_setup, tmp_path):
    from posekit.serve.launch import free_port, start_server

    pw, clip = browser_setup
    port = free_port()
    log = tmp_path / "server.log"
    server = start_server(["--model", MODEL], port=port, log=log)
    try:
        with pw.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(clip), headless=True)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(server.url + "/")
                page.wait_for_function("document.getElementById('status').textContent === 'connected'",
                                       timeout=30_000)
                # people are tracked: ids appear once a track is confirmed, a few frames in
                page.wait_for_function("+document.getElementById('frames').textContent >= 8 && "
                                       "+document.getElementById('people').textContent >= 1", timeout=90_000)
                shot = page.locator("#view").screenshot()
                if os.environ.get("POSEKIT_SCREENSHOT"):
                    Path(os.environ["POSEKIT_SCREENSHOT"]).write_bytes(page.screenshot())
                assert skeleton_pixels(shot) > MIN_PIXELS, "no skeleton drawn on the canvas"
                people = counter(page, "people")
                assert people >= 1
                assert float(page.text_content("#fps")) > 0 and float(page.text_content("#latency")) > 0
                assert not errors, errors

                # photo mode: an upload goes to /v1/pose and its people are drawn over the photo
                page.click("#mode-photo")
                page.set_input_files("#photo", str(MESSI))
                page.wait_for_function("document.getElementById('message').textContent.includes('people in')",
                                       timeout=60_000)
                assert counter(page, "people") >= 1
                assert skeleton_pixels(page.locator("#view").screenshot()) > MIN_PIXELS
                page.click("#mode-live")
                frames = counter(page, "frames")
                page.wait_for_function(f"+document.getElementById('frames').textContent > {frames}", timeout=60_000)

                # the server goes away and comes back on the same port: the page reconnects by itself
                server.stop()
                page.wait_for_function("document.getElementById('status').textContent === 'reconnecting'",
                                       timeout=15_000)
                before = counter(page, "frames")
                server = start_server(["--model", MODEL], port=port, log=log)
                page.wait_for_function(f"+document.getElementById('frames').textContent >= {before + 3}",
                                       timeout=90_000)
                assert page.text_content("#status") == "connected"
                assert counter(page, "reconnects") >= 1
                time.sleep(0.5)
                assert skeleton_pixels(page.locator("#view").screenshot()) > MIN_PIXELS
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.stop()
