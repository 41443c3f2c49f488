"""Time the K slider of a ``kvq explore`` page in headless Chromium, and take the README's screenshot.

Usage, from the repository root::

    PYTHONPATH=. python benchmarks/explore_slider.py [--source ../shared/kodak/kodim01.png] [--rounds 5]
        [--out benchmarks/results/explore_slider.md] [--screenshot docs/explore.png]

(The README's screenshot, docs/explore.png, is made by ``--screenshot``: the page at K = 8, stored with a palette of
256 colours found by kvq.)

The page is made as a user makes it (``kvq explore SOURCE -k 2,4,...,256``), opened from disk, and once every K is
decoded the slider is moved with the arrow keys, one step at a time, across all K and back, ``--rounds`` times. The
page times each step itself with ``performance.now()``: ``work`` is the step's JavaScript (drawing the canvas,
numbers, chart, palette and table), ``frame`` runs until the frame that shows it has been produced (a task queued
from the next animation frame). Each K's first decode (kvq.js, in the page) is timed against ``kvq.decode`` (Python)
on the same file in the same run.

Needs Chromium, chromedriver and selenium (see tests/test_explore_browser.py).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KS = "2,4,8,16,32,64,128,256"


def start_browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))


def wait_for(driver, script: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := driver.execute_script(script)):
        if time.monotonic() > deadline:
            raise TimeoutError(script)
        time.sleep(0.01)
    return value


def save_screenshot(png: bytes, path: Path) -> None:
    """Store the screenshot as kvq stores images: a palette of 256 colours, written as PNG-8 (a third of the size)."""
    import io

    from PIL import Image

    import kvq

    with Image.open(io.BytesIO(png)) as shot:
        decoded = kvq.decode_indexed(kvq.encode(shot.convert("RGB"), k=256))
    image = Image.fromarray(decoded.indices, "P")
    image.putpalette(decoded.palette.tobytes())
    image.save(path, optimize=True)


def spread(values: list[float]) -> str:
    """Median, 95th percentile and maximum, as Markdown table cells."""
    return f"{statistics.median(values):.1f} ms | {percentile(values, 0.95):.1f} ms | {max(values):.1f} ms"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "kodak" / "kodim01.png")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write a Markdown report here")
    parser.add_argument("--screenshot", type=Path, default=None, help="save a screenshot of the page here")
    args = parser.parse_args(argv)

    from selenium.webdriver.common.keys import Keys

    import kvq
    from kvq.cli import main as kvq_main

    folder = Path(tempfile.mkdtemp(prefix="kvq-explore-bench-"))
    page = folder / "page.html"
    started = time.perf_counter()
    assert kvq_main(["explore", str(args.source), "-o", str(page), "--no-open", "-k", KS]) == 0
    build_s = time.perf_counter() - started

    driver = start_browser(1360, 1000)
    try:
        started = time.perf_counter()
        driver.get(page.as_uri())
        wait_for(driver, "return window.kvqExplore && window.kvqExplore.ready")
        ready_s = time.perf_counter() - started
        wait_for(driver, "return window.kvqExplore.allDecoded")
        entries = driver.execute_script(
            "return window.kvqExplore.state.entries.map((e) => [e.requestedK, e.image.width, e.image.height, e.decodeMs])"
        )
        count = len(entries)
        slider = driver.find_element("id", "k-slider")
        slider.send_keys(Keys.HOME)
        time.sleep(0.2)
        driver.execute_script("window.kvqExplore.timings.length = 0")
        for _ in range(args.rounds):
            for key in (Keys.ARROW_RIGHT, Keys.ARROW_LEFT):
                for _ in range(count - 1):
                    slider.send_keys(key)
                    time.sleep(0.03)
        time.sleep(0.3)
        load = os.getloadavg()[0]
        timings = driver.execute_script("return window.kvqExplore.timings")
        problems = [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        browser_version = driver.capabilities.get("browserVersion", "?")
        if args.screenshot:
            # K = 8: few enough colours for the difference to show at the page's size.
            driver.execute_script("document.activeElement.blur(); window.kvqExplore.show(arguments[0])", KS.split(",").index("8"))
            for _ in range(3):  # the window's chrome takes some height: grow it until the whole page is in view
                missing = driver.execute_script("return document.documentElement.scrollHeight - window.innerHeight")
                if missing <= 0:
                    break
                size = driver.get_window_size()
                driver.set_window_size(size["width"], size["height"] + missing)
            time.sleep(0.5)
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            save_screenshot(driver.get_screenshot_as_png(), args.screenshot)
    finally:
        driver.quit()

    # The files the page decoded, from its data block.
    html = page.read_text(encoding="utf-8")
    data_block = html.split('id="kvq-data">', 1)[1].split("</script>", 1)[0]
    files = [base64.b64decode(e["file"]) for e in json.loads(data_block)["entries"]]
    python_ms = []
    for data in files:
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            kvq.decode(data)
            runs.append(1000 * (time.perf_counter() - t0))
        python_ms.append(statistics.median(runs))

    work = [t["work"] for t in timings]
    frame = [t["frame"] for t in timings]
    width, height = entries[0][1], entries[0][2]
    lines = [
        "# The explore page's K slider, timed in the browser",
        "",
        f"`PYTHONPATH=. python benchmarks/explore_slider.py --rounds {args.rounds}`: `kvq explore {args.source.name} -k {KS}`,",
        f"{width} x {height} pixels, opened in headless Chromium ({browser_version}),",
        f"{platform.machine()}, {os.cpu_count()} cores (load average {load:.1f} when the slider moved),"
        f" Python {platform.python_version()}, kvq {kvq.__version__}.",
        "",
        f"- Page: {page.stat().st_size:,} bytes, written in {build_s:.1f} s; first K shown {ready_s * 1000:.0f} ms after `get()`.",
        f"- Slider steps timed by the page: {len(timings)} (every step across all {count} K and back, {args.rounds} times).",
        "",
        "| per step | median | 95th percentile | max |",
        "| --- | ---: | ---: | ---: |",
        f"| work (JavaScript: canvas, numbers, chart, palette, table) | {spread(work)} |",
        f"| until the next frame is produced | {spread(frame)} |",
        "",
        "Each K's first decode, kvq.js in the page (once, while the page loads) against `kvq.decode` in Python",
        "(median of 5) on the same file:",
        "",
        "| K | file bytes | kvq.js | kvq.decode | kvq.js / kvq.decode |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for (k, _, _, js_ms), data, py_ms in zip(entries, files, python_ms, strict=True):
        lines.append(f"| {k} | {len(data):,} | {js_ms:.1f} ms | {py_ms:.1f} ms | {js_ms / py_ms:.2f} |")
    lines += ["", f"Console warnings or errors: {len(problems)}." + ("" if not problems else f" {problems}")]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    shutil.rmtree(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
