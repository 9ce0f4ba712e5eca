"""Progress (medlib.progress): plain lines without control characters when not on a terminal, step summaries,
--quiet, the events a notebook kernel writes and the CLI shows, and the notebook's sections as steps."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest

from medlib import progress
from medlib.progress import Console, format_seconds, progress_bar

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # anything but \t and \n: \r, escape codes, backspace


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def plain_env(monkeypatch):
    """Not a terminal, not a notebook, no events file, not quiet."""
    for name in (progress.EVENTS_ENV, progress.QUIET_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(progress, "_in_jupyter", lambda: False)


def test_plain_lines_when_not_on_a_terminal(plain_env, monkeypatch, capsys):
    monkeypatch.setattr(progress, "PLAIN_INTERVAL", 0.0)
    with progress_bar(total=3, desc="train", unit="epoch") as bar:
        for epoch in range(3):
            bar.set_postfix(loss=f"{1 / (epoch + 1):.3f}", refresh=False)
            bar.update(1)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert not CONTROL.search(out) and err == ""
    assert lines[0].startswith("train: 0/3 epoch")
    assert lines[-1].startswith("train: 3/3 epoch") and "loss=0.333" in lines[-1]
    assert [int(re.match(r"train: (\d)/3", line).group(1)) for line in lines] == [0, 1, 2, 3]


def test_plain_lines_are_throttled_but_the_last_state_is_shown(plain_env, capsys):
    with progress_bar(total=50, desc="probe", unit="file") as bar:  # 10 s between lines: no line in between
        for _ in range(50):
            bar.update(1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[1] for line in lines] == ["0/50", "50/50"]


def test_quiet_prints_nothing(plain_env, monkeypatch, capsys):
    monkeypatch.setenv(progress.QUIET_ENV, "1")
    with progress_bar(total=2, desc="train") as bar:
        bar.update(2)
    console = Console(quiet=True)
    with console.step("something"):
        pass
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_a_live_bar_on_stderr(plain_env, monkeypatch, capsys):
    monkeypatch.setattr(progress, "_is_tty", lambda stream: True)
    bar = progress_bar(total=2, desc="train")
    assert type(bar) is progress._std_tqdm and not bar.disable
    bar.close()


def test_bars_inside_a_step_are_drawn_by_its_console(plain_env, capsys):
    out = io.StringIO()
    with Console(out=out, lane="onfh").step("checked the cohort"):
        with progress_bar(total=4, desc="reading every image once", unit="file") as bar:
            bar.update(4)
    lines = out.getvalue().splitlines()
    assert capsys.readouterr().out == ""
    assert re.match(r"\[onfh 00:00\]   reading every image once: 0/4 file", lines[0])
    assert "4/4 file" in lines[1] and "done  checked the cohort" in lines[2]


def test_step_summary_line_and_lane_prefix():
    out = io.StringIO()
    console = Console(out=out, lane="nec")
    with console.step("Models and training") as step:
        step["detail"] = "2 models"
    line = out.getvalue().strip()
    assert re.fullmatch(r"\[nec 00:0\d\] done  Models and training: 2 models \(\d\.\d s\)", line), line


def test_a_failed_step_prints_no_summary():
    out = io.StringIO()
    with pytest.raises(RuntimeError):
        with Console(out=out).step("training"):
            raise RuntimeError("boom")
    assert out.getvalue() == ""


@pytest.mark.parametrize("seconds, text", [(0.44, "0.4 s"), (59.94, "59.9 s"), (125, "2 min 05 s"),
                                           (3720, "1 h 02 min")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.fixture
def kernel_events(plain_env, monkeypatch, tmp_path) -> tuple[Path, io.StringIO, Console]:
    """A kernel's events file (every state written, no interval) and the plain console of an ``ich`` lane."""
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv(progress.EVENTS_ENV, str(events))
    monkeypatch.setattr(progress, "EVENT_INTERVAL", 0.0)
    out = io.StringIO()
    return events, out, Console(out=out, lane="ich", live=False)


def test_kernel_events_reach_the_console_as_lines(kernel_events):
    """The kernel side (MEDLIB_PROGRESS_EVENTS set) writes JSON lines; the CLI side prints them, prefixed."""
    events, out, console = kernel_events
    with console.follow(events, every=0.01):
        with progress_bar(total=2, desc="train", unit="epoch") as bar:
            bar.update(1)
            time.sleep(0.05)
            bar.update(1)
    written = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["n"] for e in written] == [0, 1, 2, 2] and written[-1]["closed"]
    shown = out.getvalue().splitlines()
    assert [re.search(r"train: (\d)/2", line).group(1) for line in shown] == ["0", "1", "2"]  # the last once
    assert all(line.startswith("[ich 00:0") and "train: " in line for line in shown)
    assert not CONTROL.search(out.getvalue())


def test_a_long_bar_from_the_kernel_prints_a_line_per_tenth(kernel_events):
    """A bar of many quick steps (minutes of radiomics, one event a second) prints its first state, a line per
    tenth of its total and its last state, not one line per event."""
    events, out, console = kernel_events
    with console.follow(events, every=0.01):
        with progress_bar(total=100, desc="radiomics", unit="case") as bar:
            for _ in range(100):
                bar.update(1)
    assert len(events.read_text().splitlines()) == 102  # every state was written
    shown = [int(re.search(r"radiomics: (\d+)/100", line).group(1)) for line in out.getvalue().splitlines()]
    assert shown == list(range(0, 101, 10))


def test_notebook_sections_become_steps():
    out = io.StringIO()
    cells = [{"id": "p", "cell_type": "code", "source": "x = 1"},
             {"id": "h1", "cell_type": "markdown", "source": ["## Cohort and split\n", "text"]},
             {"id": "c1", "cell_type": "code", "source": "prepare()"},
             {"id": "h2", "cell_type": "markdown", "source": "### a subsection\n"},
             {"id": "c2", "cell_type": "code", "source": "table()"},
             {"id": "h3", "cell_type": "markdown", "source": "## Models and training"},
             {"id": "c3", "cell_type": "code", "source": "fit()"}]
    steps = Console(out=out).notebook_hooks(cells)
    for cell in [{"id": "injected", "source": "x = 2"}] + [c for c in cells if c["cell_type"] == "code"]:
        steps.hooks["on_cell_start"](cell=cell, cell_index=0)
    steps.finish()
    names = [re.sub(r" \(.*\)$", "", line.removeprefix("done  ")) for line in out.getvalue().splitlines()]
    assert names == ["notebook set-up", "Cohort and split", "Models and training"]


def test_a_long_step_is_never_silent(monkeypatch):
    monkeypatch.setattr(progress, "FIRST_BEAT", 0.05)
    monkeypatch.setattr(progress, "BEAT", 0.1)
    out = io.StringIO()
    with Console(out=out, live=False).step("notebook set-up"):
        time.sleep(0.3)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("...   notebook set-up: running for 0.")
    assert 2 <= len(lines) - 1 <= 4 and lines[-1].startswith("done  notebook set-up (0.3 s)")
