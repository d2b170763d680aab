"""The review page in a real browser (headless Chromium): records shown, filters, audio that plays,
an edit and an approval exported as corrections.jsonl, hostile names shown as text, axe-core clean."""
import json
import shutil

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from altvoice.pipelines import review
from browser import axe_violations, needs_browser, wait_for, wait_for_download
from testdata import HOSTILE_NAMES

pytestmark = needs_browser


@pytest.fixture(scope="module")
def page(captioned, tmp_path_factory):
    out = shutil.copytree(captioned, tmp_path_factory.mktemp("page") / "out")
    record = json.loads((out / "a.jpg.json").read_text())  # a record tampered with: markup in its alt text
    record["alt_text"] = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    (out / "a.jpg.json").write_text(json.dumps(record))
    review.run([str(out)])
    return out


def open_page(driver, root):
    driver.get((root / "review" / "index.html").as_uri())
    driver.execute_script("localStorage.clear()")
    driver.refresh()
    wait_for(driver, "return document.getElementById('status').textContent")


def names_shown(driver):
    return [h.text for h in driver.find_elements(By.CSS_SELECTOR, ".record h3")]


def choose(driver, value):
    driver.find_element(By.CSS_SELECTOR, f"input[name=filter][value={value}]").click()


def test_every_record_is_shown_and_the_filters_and_search_narrow_them(driver, page):
    open_page(driver, page)
    choose(driver, "all")
    assert sorted(names_shown(driver)) == sorted(["a.jpg", "sub/b.png", "broken.jpg", *HOSTILE_NAMES])
    choose(driver, "failed")
    assert names_shown(driver) == ["broken.jpg"]
    assert "decode: " in driver.find_element(By.CSS_SELECTOR, ".reasons").text
    choose(driver, "all")
    driver.find_element(By.ID, "search").send_keys("cheese")
    wait_for(driver, "return document.querySelectorAll('.record').length == 1")
    assert names_shown(driver) == [HOSTILE_NAMES[1]]
    assert "1 of 7 images match" in driver.find_element(By.ID, "status").text
    errors = driver.find_elements(By.CSS_SELECTOR, "#errors tbody tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in errors] == ["broken.jpg"]


def test_hostile_names_and_alt_texts_are_shown_as_text_never_run(driver, page):
    open_page(driver, page)
    choose(driver, "all")
    assert set(HOSTILE_NAMES) <= set(names_shown(driver))
    assert driver.execute_script("return window.pwned") is None
    card = next(c for c in driver.find_elements(By.CSS_SELECTOR, ".record") if c.find_element(By.TAG_NAME, "h3").text == "a.jpg")
    assert card.find_element(By.TAG_NAME, "textarea").get_attribute("value").startswith("<script>window.pwned")
    assert card.find_element(By.CSS_SELECTOR, ".thumb img").get_attribute("alt").startswith("<script>")
    assert not driver.find_elements(By.CSS_SELECTOR, ".records script, .body img")


def test_the_spoken_description_plays(driver, page):
    open_page(driver, page)
    choose(driver, "all")
    audio = driver.find_element(By.CSS_SELECTOR, ".record audio")
    driver.execute_script("return arguments[0].play()", audio)
    assert wait_for(driver, "return arguments[0].duration > 0 && arguments[0].currentTime > 0 && arguments[0].duration",
                    audio) > 0.3


def test_an_edit_and_an_approval_come_back_as_corrections(driver, page, downloads):
    open_page(driver, page)
    choose(driver, "all")
    driver.find_element(By.ID, "reviewer").send_keys("Ana", Keys.TAB)
    card = next(c for c in driver.find_elements(By.CSS_SELECTOR, ".record") if c.find_element(By.TAG_NAME, "h3").text == "sub/b.png")
    text = card.find_element(By.TAG_NAME, "textarea")
    text.clear()
    text.send_keys("A green square on a <b>white</b> wall.", Keys.TAB)
    card = next(c for c in driver.find_elements(By.CSS_SELECTOR, ".record") if c.find_element(By.TAG_NAME, "h3").text == "sub/b.png")
    card.find_element(By.XPATH, ".//button[text()='Approve']").click()
    card = next(c for c in driver.find_elements(By.CSS_SELECTOR, ".record") if c.find_element(By.TAG_NAME, "h3").text == "sub/b.png")
    assert card.find_element(By.XPATH, ".//button[contains(., 'Approve')]").get_attribute("aria-pressed") == "true"
    assert card.find_element(By.CSS_SELECTOR, ".thumb img").get_attribute("alt") == "A green square on a <b>white</b> wall."
    driver.find_element(By.ID, "export").click()
    lines = [json.loads(line) for line in wait_for_download(downloads, "corrections.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["time"]
    assert {k: v for k, v in lines[0].items() if k != "time"} == {
        "version": 1, "image": "sub/b.png", "alt_text": "A green square on a <b>white</b> wall.",
        "decision": "approved", "reviewer": "Ana"}
    driver.refresh()  # kept in the browser until exported and applied
    wait_for(driver, "return altvoiceReview.correctionsJsonl().includes('sub/b.png')")


def test_keyboard_alone_reaches_and_decides_an_image(driver, page):
    open_page(driver, page)
    choose(driver, "all")
    first = driver.find_element(By.CSS_SELECTOR, ".record article")
    first.send_keys("j")
    second = driver.switch_to.active_element
    assert second.get_attribute("data-index") == "1"
    second.send_keys("r")
    assert '"decision":"rejected"' in driver.execute_script("return altvoiceReview.correctionsJsonl()")


def test_the_page_passes_axe_core_with_records_and_without(driver, page, tmp_path):
    open_page(driver, page)
    choose(driver, "all")
    assert axe_violations(driver) == []
    (tmp_path / "empty").mkdir()
    review.run([str(tmp_path / "empty")])
    open_page(driver, tmp_path / "empty")
    assert "no image records yet" in driver.find_element(By.ID, "status").text
    assert axe_violations(driver) == []


def test_the_page_works_served_over_http_as_from_a_bucket(driver, page):
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/review/index.html")
        wait_for(driver, "return document.getElementById('status').textContent")
        choose(driver, "all")
        assert len(names_shown(driver)) == 7
        audio = driver.find_element(By.CSS_SELECTOR, ".record audio")
        driver.execute_script("return arguments[0].play()", audio)
        assert wait_for(driver, "return arguments[0].currentTime > 0 && arguments[0].duration", audio) > 0.3
        assert driver.execute_script("return Array.from(document.querySelectorAll('.thumb img')).every("
                                     "i => i.complete && i.naturalWidth > 0)")
    finally:
        server.shutdown()
