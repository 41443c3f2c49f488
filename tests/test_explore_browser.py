"""The page of ``kvq explore`` in a real browser: headless Chromium driven by Selenium.

The page decodes its embedded .kvq files with kvq/web/kvq.js; these tests read the pixels back from its canvases and
compare them with ``kvq.decode`` of the same files, move the slider as a user does, drop and pick .kvq files on the
page, and check that nothing is logged to the console.

Needs Chromium and its driver (Debian: ``apt-get install chromium chromium-driver``) and the ``selenium`` package
(the test extra). Without them the tests skip, except when ``KVQ_REQUIRE_BROWSER=1`` (``.ci/run`` sets it, after
installing them), where they fail. ``KVQ_CHROMIUM`` and ``KVQ_CHROMEDRIVER`` name other executables.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kvq
from kvq import coding
from kvq.cli import main
from kvq.metrics import psnr

READ_CANVAS = """
const canvas = document.getElementById(arguments[0]);
const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
let text = "";
for (let i = 0; i < data.length; i += 0x8000) text += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
return [canvas.width, canvas.height, btoa(text)];
"""

DROP = """
const files = arguments.length === 1 ? arguments[0] : [[arguments[0], arguments[1]]];
const transfer = new DataTransfer();
for (const [name, b64] of files) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  transfer.items.add(new File([bytes], name, { type: "application/octet-stream" }));
}
const target = document.querySelector("main");
for (const type of ["dragenter", "dragover", "drop"]) {
  target.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
}
"""


def _unavailable(reason: str) -> None:
    if os.environ.get("KVQ_REQUIRE_BROWSER") == "1":
        pytest.fail(f"KVQ_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install '.[test]')")
    browser = os.environ.get("KVQ_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p), None
    )
    chromedriver = os.environ.get("KVQ_CHROMEDRIVER") or shutil.which("chromedriver")
    if not browser or not chromedriver:
        _unavailable("Chromium or chromedriver is not installed (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager never downloads anything.
    chrome = webdriver.Chrome(options=options, service=Service(chromedriver))
    chrome.set_script_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


def console_problems(driver) -> list[str]:
    # Chromium's hint to use willReadFrequently answers the tests' own getImageData calls: the page never reads back.
    return [
        entry["message"] for entry in driver.get_log("browser")
        if entry["level"] in ("SEVERE", "WARNING") and "willReadFrequently" not in entry["message"]
    ]


def open_page(driver, page: Path) -> None:
    driver.get(page.resolve().as_uri())
    wait_for(driver, "return Boolean(window.kvqExplore && window.kvqExplore.allDecoded)")


def wait_for(driver, script: str, *args, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}\nconsole: {console_problems(driver)}")
        time.sleep(0.02)


def canvas_rgba(driver, canvas_id: str) -> np.ndarray:
    width, height, data = driver.execute_script(READ_CANVAS, canvas_id)
    return np.frombuffer(base64.b64decode(data), dtype=np.uint8).reshape(height, width, 4)


def as_rgba(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    if pixels.shape[2] == 3:
        pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return pixels


def text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def psnr_text(original: np.ndarray, decoded: np.ndarray) -> str:
    value = psnr(original.reshape(decoded.shape), decoded)
    return "∞" if value == float("inf") else f"{value:.2f} dB"


def entry_files(driver) -> list[bytes]:
    return [base64.b64decode(b) for b in driver.execute_script(
        "return window.kvqExplore.state.entries.map((e) => btoa(String.fromCharCode(...e.bytes)))"
    )]


def make_page(tmp_path: Path, image: np.ndarray, ks: str, name: str, *options: str) -> Path:
    source = tmp_path / f"{name}.png"
    Image.fromarray(image).save(source)
    out = tmp_path / f"{name}.html"
    assert main(["explore", str(source), "-o", str(out), "--no-open", "-k", ks, *options]) == 0
    return out


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image("china.jpg")[80:144, 180:276])  # 96 x 64


def test_slider_shows_each_k_exactly_as_kvq_decodes_it(driver, tmp_path, photo):
    from selenium.webdriver.common.keys import Keys

    page = make_page(tmp_path, photo, "1,3,16,257", "photo")
    open_page(driver, page)
    files = entry_files(driver)
    assert [kvq.read_header(f).k for f in files] == [1, 3, 16, 257]
    assert np.array_equal(canvas_rgba(driver, "canvas-original"), as_rgba(photo))
    # The page opens on the K closest to 16.
    assert text(driver, "decoded-title") == "K = 16"
    slider = driver.find_element("id", "k-slider")
    slider.send_keys(Keys.HOME)
    for position, file in enumerate(files):
        if position:
            slider.send_keys(Keys.ARROW_RIGHT)
        wait_for(driver, "return window.kvqExplore.state.current === arguments[0]", position)
        decoded = kvq.decode(file)
        assert np.array_equal(canvas_rgba(driver, "canvas-decoded"), as_rgba(decoded)), f"K = {kvq.read_header(file).k}"
        k = kvq.read_header(file).k
        assert text(driver, "decoded-title") == f"K = {k:,}"
        assert text(driver, "m-psnr") == psnr_text(photo, decoded)
        assert text(driver, "m-size-note") == f"{len(file):,} bytes"
        bars = text(driver, "bars")
        n = photo.shape[0] * photo.shape[1]
        assert f"{24 * n:,} bits" in bars
        assert f"{n * kvq.read_header(file).bits + 24 * k:,} bits" in bars
        assert f"{8 * len(file):,} bits" in bars
        swatches = driver.find_elements("css selector", "#swatches .swatch")
        assert len(swatches) == min(k, 256)
    timings = driver.execute_script("return window.kvqExplore.timings")
    assert len(timings) == 4 and all(t["cached"] for t in timings)  # Home, then three steps right
    rows = driver.find_elements("css selector", "#table tr")
    assert [r.find_elements("css selector", "td")[3].text for r in rows] == [f"{len(f):,}" for f in files]
    assert console_problems(driver) == []


def test_dropped_and_picked_kvq_files_are_shown(driver, tmp_path, photo):
    page = make_page(tmp_path, photo, "2,8", "drop")
    open_page(driver, page)
    grey = np.asarray(Image.fromarray(photo[:37, :53]).convert("L"))
    dropped = kvq.encode(grey, k=5)
    driver.execute_script(DROP, "grey.kvq", base64.b64encode(dropped).decode())
    wait_for(driver, "return window.kvqExplore.state.entries.length === 3 && window.kvqExplore.state.current === 2")
    assert text(driver, "decoded-title") == "grey.kvq"
    assert np.array_equal(canvas_rgba(driver, "canvas-decoded"), as_rgba(kvq.decode(dropped)))
    assert text(driver, "m-psnr") == "–"  # no original of this size
    assert text(driver, "m-size-note") == f"{len(dropped):,} bytes"
    assert "grey.kvq" in [b.text for b in driver.find_elements("css selector", "#ticks button")]

    # A broken file is refused with the rule it breaks, and nothing is added.
    broken = bytearray(dropped)
    broken[40] ^= 1
    driver.execute_script(DROP, "broken.kvq", base64.b64encode(bytes(broken)).decode())
    message = wait_for(driver, "const t = document.getElementById('toast'); return t.classList.contains('show') && t.textContent")
    assert "broken.kvq" in message and "rule 19" in message
    assert driver.execute_script("return window.kvqExplore.state.entries.length") == 3

    # The same through the file picker.
    rgba = kvq.encode(np.dstack([photo[:20, :30], np.full((20, 30), 128, np.uint8)]), k=7)
    path = tmp_path / "picked.kvq"
    path.write_bytes(rgba)
    driver.find_element("id", "file-input").send_keys(str(path))
    wait_for(driver, "return window.kvqExplore.state.entries.length === 4 && window.kvqExplore.state.current === 3")
    assert text(driver, "decoded-title") == "picked.kvq"
    shown = canvas_rgba(driver, "canvas-decoded")
    expected = kvq.decode(rgba)
    # Canvases hold premultiplied colour: at alpha 128, a channel may come back one off; alpha is exact.
    assert np.array_equal(shown[..., 3], expected[..., 3])
    assert np.abs(shown[..., :3].astype(int) - expected[..., :3]).max() <= 1
    assert console_problems(driver) == []


def _logo() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64].astype(np.float64)
    image = np.zeros((48, 64, 4), dtype=np.uint8)
    image[..., 0] = 30
    image[..., 1] = np.clip(x * 4, 0, 255)
    image[..., 2] = 200
    image[..., 3] = np.clip((20 - np.hypot(x - 24, y - 24)) * 80, 0, 255)
    image[30:40, 40:60] = (240, 60, 20, 255)
    return image


def test_logo_with_transparency_and_grey_image(driver, tmp_path, photo):
    logo = _logo()
    open_page(driver, make_page(tmp_path, logo, "4,64", "logo"))
    assert driver.execute_script("return document.getElementById('view-decoded').classList.contains('alpha')")
    assert driver.execute_script("return getComputedStyle(document.querySelector('#view-original .backdrop')).display") == "block"
    for position, file in enumerate(entry_files(driver)):
        driver.execute_script("window.kvqExplore.show(arguments[0])", position)
        decoded = kvq.decode(file)
        shown = canvas_rgba(driver, "canvas-decoded")
        assert np.array_equal(shown[..., 3], decoded[..., 3])
        opaque = decoded[..., 3] == 255
        assert np.array_equal(shown[opaque], decoded[opaque])
        assert text(driver, "m-psnr") == psnr_text(logo, decoded)
    assert console_problems(driver) == []

    grey = np.asarray(Image.fromarray(photo).convert("L"))
    open_page(driver, make_page(tmp_path, grey, "2,256", "grey"))
    assert not driver.execute_script("return document.getElementById('view-decoded').classList.contains('alpha')")
    for position, file in enumerate(entry_files(driver)):
        driver.execute_script("window.kvqExplore.show(arguments[0])", position)
        decoded = kvq.decode(file)
        assert np.array_equal(canvas_rgba(driver, "canvas-decoded"), as_rgba(decoded))
        assert text(driver, "m-psnr") == psnr_text(grey, decoded)
    assert np.array_equal(canvas_rgba(driver, "canvas-original"), as_rgba(grey))
    assert console_problems(driver) == []


def test_zoom_reaches_single_pixels_in_both_views(driver, tmp_path, photo):
    open_page(driver, make_page(tmp_path, photo, "8", "zoom"))
    for _ in range(8):
        driver.find_element("id", "zoom-in").click()
    transforms = driver.execute_script(
        "return ['canvas-original', 'canvas-decoded'].map((id) => document.getElementById(id).style.transform)"
    )
    assert transforms[0] == transforms[1] and "scale(64)" in transforms[0]
    assert driver.execute_script("return getComputedStyle(document.getElementById('canvas-decoded')).imageRendering") == "pixelated"
    assert text(driver, "zoom-label") == "6,400 %"
    driver.find_element("id", "zoom-fit").click()
    assert "scale(64)" not in driver.execute_script("return document.getElementById('canvas-decoded').style.transform")
    assert console_problems(driver) == []


def _bars_of(file: bytes) -> dict[str, str]:
    """The size in bits of each bar of an entropy coding, by its name: coding 1's (the default) and coding 2's."""
    decoded = kvq.decode_indexed(file)
    bars = {}
    for name, label in (("entropy", ".kvq, entropy-coded"), ("striped", ".kvq, entropy-coded in stripes")):
        same = coding.by_code(decoded.header.coding).name == name
        data = file if same else kvq.encode_indexed(palette=decoded.palette, indices=decoded.indices, coding=name)
        bars[label] = f"{8 * len(data):,} bits"
    return bars


def test_entropy_coded_size_gets_its_own_bar(driver, tmp_path, photo):
    from kvq import explore

    # The page charts the entropy-coded file the encoder wrote beside the fixed-width size its header implies; a page
    # in the default coding charts no other.
    page = tmp_path / "entropy.html"
    page.write_text(explore.build_page(photo, ks=(4, 64)), encoding="utf-8")
    open_page(driver, page)
    for position, file in enumerate(entry_files(driver)):
        driver.execute_script("window.kvqExplore.show(arguments[0])", position)
        bars = text(driver, "bars")
        assert kvq.read_header(file).coding == 1
        assert ".kvq, entropy-coded\nthis file" in bars
        assert "in stripes" not in bars
        assert f"{8 * len(file):,} bits" in bars
        assert f"{8 * kvq.read_header(file).fixed_file_size:,} bits" in bars
    assert console_problems(driver) == []


def test_a_page_of_coding_2_files(driver, tmp_path, photo):
    # kvq explore --coding striped: every K's file in coding 2, decoded by the page exactly as kvq.decode does it,
    # with its own bar and the stripe table apart in the accounting.
    tall = np.ascontiguousarray(np.tile(photo, (12, 1, 1)))  # 96 x 768: stripes of 682 rows, so 2 stripes
    open_page(driver, make_page(tmp_path, tall, "3,40,300", "striped", "--coding", "striped"))
    files = entry_files(driver)
    assert [kvq.read_header(f).coding for f in files] == [2, 2, 2]
    for position, file in enumerate(files):
        driver.execute_script("window.kvqExplore.show(arguments[0])", position)
        assert np.array_equal(canvas_rgba(driver, "canvas-decoded"), as_rgba(kvq.decode(file)))
        assert text(driver, "decoded-note").startswith("entropy-coded in stripes · decoded here in")
        bars = text(driver, "bars")
        for label, bits in _bars_of(file).items():
            assert label in bars and bits in bars, (label, bits, bars)
        assert "this file" in bars.split(".kvq, entropy-coded in stripes")[1]
        assert "128 stripe table (2 stripes)" in text(driver, "accounting")
        assert f"= {8 * len(file):,} bits." in text(driver, "accounting")
    # A coding-2 file dropped on a page is shown too.
    dropped = kvq.encode(np.ascontiguousarray(tall[:, :40]), k=9, coding="striped")
    driver.execute_script(DROP, "dropped.kvq", base64.b64encode(dropped).decode())
    wait_for(driver, "return window.kvqExplore.state.entries.length === 4 && window.kvqExplore.state.current === 3")
    assert np.array_equal(canvas_rgba(driver, "canvas-decoded"), as_rgba(kvq.decode(dropped)))
    assert console_problems(driver) == []


def test_viewer_page_of_a_kvq_file(driver, tmp_path, photo):
    file = tmp_path / "china.kvq"
    file.write_bytes(kvq.encode(photo, k=300))
    out = tmp_path / "viewer.html"
    assert main(["explore", str(file), "-o", str(out), "--no-open"]) == 0
    open_page(driver, out)
    assert text(driver, "decoded-title") == "china.kvq"
    assert np.array_equal(canvas_rgba(driver, "canvas-decoded"), as_rgba(kvq.decode(file.read_bytes())))
    # No original: one view, no PSNR.
    assert driver.execute_script("return getComputedStyle(document.querySelector('.pane.original')).display") == "none"
    assert text(driver, "m-psnr") == "–"
    assert len(driver.find_elements("css selector", "#swatches .swatch")) == 256  # the 256 most used of K
    assert "more entries" in text(driver, "palette-caption")
    assert console_problems(driver) == []


TOAST = "const t = document.getElementById('toast'); return t.classList.contains('show') ? t.textContent : ''"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_long_dropped_name_stays_on_its_card(driver, tmp_path, photo):
    open_page(driver, make_page(tmp_path, photo, "2,8", "long"))
    name = "holiday-photos-2024-the-beach-at-sunset-" * 5 + "k4.kvq"
    driver.execute_script(DROP, name, _b64(kvq.encode(photo[:20, :30], k=4)))
    wait_for(driver, "return window.kvqExplore.state.entries.length === 3 && window.kvqExplore.state.current === 2")
    # Every label of the slider inside the slider's card, and the image's title inside its pane.
    outside = driver.execute_script("""
        const out = [];
        const within = (node, box) => {
          const a = node.getBoundingClientRect(), b = box.getBoundingClientRect();
          if (a.left < b.left - 0.5 || a.right > b.right + 0.5) out.push([node.textContent.slice(0, 40), a.left, a.right, b.left, b.right]);
        };
        for (const tick of document.querySelectorAll("#ticks button")) within(tick, document.querySelector(".kbar"));
        within(document.getElementById("decoded-title"), document.querySelector(".pane.decoded .caption"));
        return out;
    """)
    assert outside == []
    assert driver.find_element("css selector", "#ticks button:last-child").get_attribute("title") == name
    assert console_problems(driver) == []


def test_an_error_message_goes_when_a_good_file_is_shown(driver, tmp_path, photo):
    open_page(driver, make_page(tmp_path, photo, "2,8", "toast"))
    good = kvq.encode(photo[:20, :30], k=4)
    broken = bytearray(good)
    broken[40] ^= 1
    driver.execute_script(DROP, "broken.kvq", _b64(bytes(broken)))
    assert "broken.kvq" in wait_for(driver, TOAST)
    driver.execute_script(DROP, "good.kvq", _b64(good))
    wait_for(driver, "return window.kvqExplore.state.entries.length === 3 && window.kvqExplore.state.current === 2")
    assert driver.execute_script(TOAST) == ""  # it stayed 7 s over the good file
    # Dropped together, the good one is shown and the message about the broken one stays.
    driver.execute_script(DROP, [["again.kvq", _b64(good)], ["broken2.kvq", _b64(bytes(broken))]])
    wait_for(driver, "return window.kvqExplore.state.entries.length === 4 && window.kvqExplore.state.current === 3")
    assert "broken2.kvq" in wait_for(driver, TOAST)
    # Moving to another K is a new action: the old message goes.
    driver.execute_script("document.getElementById('ticks').children[0].click()")
    assert driver.execute_script(TOAST) == ""
    assert console_problems(driver) == []


def _declared(width: int, height: int) -> bytes:
    """A valid K = 1 file of any declared size: its indices take no bits, so a few dozen bytes say it all."""
    from kvq import container

    return container.write(container.Header(width, height, 3, 1, 0), bytes([200, 30, 30]), b"")


def test_a_dropped_file_over_the_pages_pixel_limit_is_refused_before_decoding(driver, tmp_path, photo):
    source = tmp_path / "small.png"
    Image.fromarray(photo[:30, :40]).save(source)
    page = tmp_path / "limited.html"
    assert main(["explore", str(source), "-o", str(page), "--no-open", "-k", "4", "--max-pixels", "2000"]) == 0
    open_page(driver, page)
    driver.execute_script(DROP, "at-limit.kvq", _b64(_declared(40, 50)))
    wait_for(driver, "return window.kvqExplore.state.entries.length === 2 && window.kvqExplore.state.current === 1")
    driver.execute_script(DROP, "over.kvq", _b64(_declared(41, 50)))
    message = wait_for(driver, TOAST)
    assert "over.kvq: 41 x 50 image exceeds the limit of 2000 pixels [kvq spec rule 8]" in message
    assert "at most 2,000 pixels (kvq explore --max-pixels)" in message
    assert driver.execute_script("return window.kvqExplore.state.entries.length") == 2
    # The default page: a 169-megapixel file of 64 bytes is refused from its header, not decoded for seconds.
    open_page(driver, make_page(tmp_path, photo, "2", "default"))
    huge = _declared(13_000, 13_000)
    assert len(huge) < 100
    driver.execute_script(DROP, "huge.kvq", _b64(huge))
    assert "huge.kvq: 13000 x 13000 image exceeds the limit of 16777216 pixels" in wait_for(driver, TOAST)
    assert driver.execute_script("return window.kvqExplore.state.entries.length") == 1
    assert console_problems(driver) == []

