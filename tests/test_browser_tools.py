"""The browser-test plumbing on a tiny file:// page: a download, a WAV that plays, axe-core checks."""
import json
import math
import wave
from array import array

import pytest

from browser import axe_violations, needs_browser, wait_for, wait_for_download

pytestmark = needs_browser

NOTES = "alt text and audio, reviewed\n"
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Browser tools check</title></head>
<body>
<main>
  <h1>Browser tools check</h1>
  <button type="button" id="save">Download notes</button>
  <audio controls src="tone.wav"></audio>
</main>
<script>
  document.getElementById("save").addEventListener("click", () => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([%s], {type: "text/plain"}));
    link.download = "notes.txt";
    document.body.append(link);
    link.click();
    link.remove();
  });
</script>
</body>
</html>
""" % json.dumps(NOTES)
# A strict Content-Security-Policy too: axe is injected through WebDriver, which CSP does not block.
NO_ALT = """<!doctype html>
<html lang="en">
<head><meta http-equiv="Content-Security-Policy" content="default-src 'none'"><title>No alt</title></head>
<body><main><h1>No alt</h1><img src="missing.png"></main></body>
</html>
"""


def write_tone(path, seconds=0.5, rate=16000, hz=440):
    """A mono 16-bit WAV of a sine tone."""
    frames = range(int(seconds * rate))
    samples = array("h", (int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in frames))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def test_page_downloads_plays_audio_and_passes_axe(driver, downloads, tmp_path):
    write_tone(tmp_path / "tone.wav")
    (tmp_path / "page.html").write_text(PAGE, encoding="utf-8")
    driver.get((tmp_path / "page.html").as_uri())

    driver.find_element("css selector", "#save").click()
    assert wait_for_download(downloads, "notes.txt").read_text() == NOTES

    audio = driver.find_element("css selector", "audio")
    driver.execute_script("return arguments[0].play()", audio)  # the returned promise is awaited
    playing = "const a = arguments[0]; return a.currentTime > 0 && [a.duration, a.currentTime]"
    duration, position = wait_for(driver, playing, audio)
    assert duration == pytest.approx(0.5, abs=0.01) and position > 0

    assert axe_violations(driver) == []


def test_axe_reports_an_image_without_alt(driver, tmp_path):
    (tmp_path / "no_alt.html").write_text(NO_ALT, encoding="utf-8")
    driver.get((tmp_path / "no_alt.html").as_uri())
    violations = axe_violations(driver)
    assert [v["id"] for v in violations] == ["image-alt"], violations
    assert violations[0]["nodes"][0]["html"].startswith("<img")
