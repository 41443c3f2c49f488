"""kvq.progress: what the bar and the ticker draw, and that they draw nothing off a terminal."""

from __future__ import annotations

import io
import time

from kvq.progress import ProgressBar, Ticker


def test_bar_counts_rate_and_remaining_time():
    out = io.StringIO()
    bar = ProgressBar(4, "encode", stream=out, enabled=True, interval=0)
    for status in ("done", "skipped", "failed"):
        bar.update(status)
    text = out.getvalue().split("\r")[-1]
    assert text.startswith("kvq encode [##################......] 3/4   75%")
    assert "files/s" in text and "left" in text and "1 skipped" in text and "1 failed" in text
    bar.write("a line above the bar")
    bar.update("done")
    bar.close()
    final = out.getvalue()
    assert "a line above the bar\n" in final and final.endswith("4/4  100%  " + final.split("100%  ")[-1])
    assert "left" not in final.split("\r")[-1] and final.endswith("\n")


def test_bar_off_a_terminal_draws_nothing_but_lines():
    out = io.StringIO()
    with ProgressBar(2, "decode", stream=out) as bar:  # StringIO is not a terminal
        bar.update("done")
        bar.write("verbose line")
        bar.update("done")
    assert out.getvalue() == "verbose line\n"


def test_ticker_names_the_step_after_its_delay():
    out = io.StringIO()
    with Ticker("encoding big.png", after=0.05, stream=out, enabled=True) as ticker:
        ticker.stage("quantizing")
        deadline = time.monotonic() + 10
        while "quantizing" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "\rkvq: encoding big.png: quantizing (0s)" in out.getvalue()
    assert out.getvalue().endswith("\r")  # the line is cleared when the job ends
    quick = io.StringIO()
    with Ticker("encoding small.png", after=5, stream=quick, enabled=True):
        pass
    assert quick.getvalue() == ""
