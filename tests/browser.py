"""Browser-test helpers: headless Debian Chromium through selenium, axe-core checks, downloads.

`make setup` installs what they need (Debian's chromium and chromium-driver, selenium, npm's
axe-core into .venv/npm); tests marked `needs_browser` skip, naming what is missing, without it.
"""
import contextlib
import functools
import importlib.util
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


def missing() -> list[str]:
    """What the browser tests need and this machine lacks: empty when all is there."""
    lacks = [str(path) for path in (CHROMIUM, CHROMEDRIVER, AXE) if not path.is_file()]
    if importlib.util.find_spec("selenium") is None:
        lacks.append("selenium")
    return lacks


def _reason() -> str:
    return f"browser tests need {', '.join(missing()) or 'nothing'}: `make setup` installs them"


needs_browser = pytest.mark.skipif(bool(missing()), reason=_reason())


def skip_without_browser() -> None:
    """Skip the calling test (or, called at import, the module) when anything is missing."""
    if missing():
        pytest.skip(_reason(), allow_module_level=True)


@contextlib.contextmanager
def chrome(download_dir):
    """A headless Chromium webdriver whose downloads land in `download_dir` without a prompt.

    Debian's chromedriver is named in the Service, so Selenium Manager never runs (nothing is
    fetched). Audio may play without a user gesture and file:// pages may read sibling files.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(Path(download_dir).resolve()),
        "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


_RUN_AXE = """
const [tags, keep, done] = arguments;
axe.run(document, {runOnly: {type: "tag", values: tags}}).then(
  result => done(result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help, count: v.nodes.length,
    nodes: v.nodes.slice(0, keep).map(n => ({target: n.target, html: n.html})),
  }))),
  error => done([{id: "axe-error", impact: "critical", help: String(error), count: 0, nodes: []}]));
"""


def axe_violations(driver, tags=WCAG_TAGS, keep=3, timeout=30) -> list[dict]:
    """axe-core's violations of `tags` on the driver's current page, short enough to print.

    Each is {id, impact, help, count, nodes: the first `keep` of {target, html}}. The script is
    injected through WebDriver, so a page's Content-Security-Policy does not block it.
    """
    driver.set_script_timeout(timeout)
    driver.execute_script(_axe_source())
    return driver.execute_async_script(_RUN_AXE, list(tags), keep)


def wait_for(driver, script, *args, timeout=5):
    """Run `script` (a function body: `return ...`) until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while not (value := driver.execute_script(script, *args)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {value!r} after {timeout}s: {script}")
        time.sleep(0.05)
    return value


def wait_for_download(download_dir, name, timeout=10) -> Path:
    """The downloaded file `name` in `download_dir` once Chromium has finished writing it.

    Chromium saves a second download of the same name as "name (1).ext": give each its own name.
    """
    folder = Path(download_dir)
    path = folder / name
    deadline = time.monotonic() + timeout
    while not path.is_file() or any(folder.glob("*.crdownload")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no finished download {name!r} in {folder} after {timeout}s: "
                               f"{sorted(p.name for p in folder.iterdir())}")
        time.sleep(0.05)
    return path
