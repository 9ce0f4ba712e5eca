"""Progress of long work, as the user's tools show it: tqdm bars on a terminal and in JupyterLab, plain lines
elsewhere, one summary line per finished step, nothing with ``--quiet``.

Two sides:

* **Library code** (the training loop, feature extraction) asks for a bar with :func:`progress_bar`, which takes
  tqdm's arguments and returns a tqdm object that fits where the code runs: a widget bar in a Jupyter kernel
  (``tqdm.auto``), a live bar on a terminal (stderr), plain throttled lines on stdout when stdout is not a
  terminal (a CI log, a pipe: no carriage returns or escape codes), or events for ``medlib run`` when the code
  runs inside the notebook that the CLI executes (the kernel cannot draw on the user's terminal).
* **The CLI** holds a :class:`Console`: :meth:`Console.step` times a step and prints its summary line,
  :meth:`Console.follow` shows the events the notebook's kernel writes (``MEDLIB_PROGRESS_EVENTS`` names the
  file, one JSON object a line), and :meth:`Console.notebook_hooks` turns the executing notebook's ``##``
  sections into steps.

``MEDLIB_QUIET=1`` (set by ``--quiet``) turns every bar and step line off. tqdm is used rather than a
hand-written bar: it already knows terminals, notebooks and rate estimates; this module only chooses the
output and formats a plain line.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from tqdm.std import tqdm as _std_tqdm

__all__ = ["EVENTS_ENV", "QUIET_ENV", "Console", "format_seconds", "plain_warnings", "progress_bar", "quiet"]

EVENTS_ENV = "MEDLIB_PROGRESS_EVENTS"
QUIET_ENV = "MEDLIB_QUIET"
#: Plain lines: at most one per bar every this many seconds (a kernel's bar: also one per tenth of its total)
#: and always the last; events: one a second.
PLAIN_INTERVAL = 10.0
EVENT_INTERVAL = 1.0
#: A step still running after FIRST_BEAT seconds says so, then every BEAT seconds (plain lines).
FIRST_BEAT = 10.0
BEAT = 30.0
_PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}]{postfix}"
_PLAIN_NO_TOTAL = "{desc}: {n_fmt} {unit} [{elapsed}]{postfix}"
#: The consoles whose step is running in this process (innermost last): progress_bar draws through them.
_ACTIVE: list["Console"] = []


def quiet() -> bool:
    """True when ``--quiet`` (``MEDLIB_QUIET=1``) asked for no progress at all."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def _one_line_warning(message: Any, category: type, filename: str, lineno: int, line: str | None = None) -> str:
    return f"{category.__name__}: {' '.join(str(message).split())}\n"


def plain_warnings() -> None:
    """Show warnings as one line, ``UserWarning: message``, without the file path and source line Python adds:
    the path would put a folder of the user's machine into an executed report (``medlib run`` sets this in the
    notebook's kernel) and the code line means nothing to a reader."""
    import warnings

    warnings.formatwarning = _one_line_warning


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``12.3 s``, ``2 min 05 s``, ``1 h 02 min``: how a summary line says a duration."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _in_jupyter() -> bool:
    """A Jupyter kernel (JupyterLab, or papermill without ``medlib run``'s events file)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


def _is_tty(stream: IO[str] | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False


class _Null(io.TextIOBase):
    """Where a line-writing bar sends tqdm's own drawing (nothing)."""

    def write(self, text: str) -> int:
        return len(text)


class _LineBar(_std_tqdm):
    """A tqdm bar that writes whole lines (through ``emit``) instead of redrawing one: the first state, then at
    most one line per ``mininterval`` seconds, then the last state when it closes."""

    def __init__(self, *args: Any, emit: Callable[["_LineBar", bool], None], **kwargs: Any) -> None:
        self._emit = emit
        self._shown_n: int | float | None = None
        kwargs.update(file=_Null(), dynamic_ncols=False, ncols=None, ascii=True)
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:  # tqdm's hook
        if msg is None and self._shown_n != self.n:  # msg='' is tqdm clearing the line on close
            self._shown_n = self.n
            self._emit(self, False)
        return True

    def close(self) -> None:
        if not self.disable and not getattr(self, "_closed_once", False):
            self._closed_once = True
            self._emit(self, True)
        super().close()

    def plain_line(self) -> str:
        """The bar as one plain line: ``train: 3/10 epoch [00:12<00:28], loss=0.512``."""
        fmt = dict(self.format_dict)
        fmt["bar_format"] = _PLAIN_FORMAT if fmt.get("total") else _PLAIN_NO_TOTAL
        fmt["ncols"] = None
        return self.format_meter(**fmt)


def _plain_emit(stream: IO[str], prefix: str = "") -> Callable[[_LineBar, bool], None]:
    def emit(bar: _LineBar, closing: bool) -> None:
        if closing and bar._shown_n == bar.n:
            return  # the last state was shown already
        bar._shown_n = bar.n
        stream.write(prefix + bar.plain_line() + "\n")
        stream.flush()
    return emit


def _event_emit(path: str) -> Callable[[_LineBar, bool], None]:
    def emit(bar: _LineBar, closing: bool) -> None:
        event = {"id": f"{os.getpid()}-{id(bar)}", "desc": bar.desc, "n": bar.n, "total": bar.total,
                 "unit": bar.unit, "postfix": bar.postfix or "", "elapsed": bar.format_dict["elapsed"],
                 "closed": closing, "line": bar.plain_line()}
        with open(path, "a", encoding="utf-8") as f:  # one short append per event: lines never interleave
            f.write(json.dumps(event) + "\n")
    return emit


def progress_bar(iterable: Any = None, *, disable: bool = False, **kwargs: Any) -> _std_tqdm:
    """A tqdm bar that fits where the code runs (see the module docstring); tqdm's arguments.

    ``disable=True`` or ``--quiet`` gives a silent bar (still a tqdm object: ``update`` and ``set_postfix``
    work). ``leave`` defaults to False: a finished step is summarised by its caller, not by a full bar.
    """
    kwargs.setdefault("leave", False)
    if disable or quiet():
        return _std_tqdm(iterable, disable=True, **kwargs)
    events = os.environ.get(EVENTS_ENV, "")
    if events:
        return _LineBar(iterable, emit=_event_emit(events), mininterval=EVENT_INTERVAL, **kwargs)
    if _in_jupyter():
        from tqdm.auto import tqdm as auto_tqdm

        return auto_tqdm(iterable, **kwargs)
    if _ACTIVE:  # inside a step of a command: its console draws the bar (lane prefix, indented under the step)
        return _ACTIVE[-1].bar(iterable, **kwargs)
    if _is_tty(sys.stderr) and _is_tty(sys.stdout):
        return _std_tqdm(iterable, file=sys.stderr, **kwargs)
    return _LineBar(iterable, emit=_plain_emit(sys.stdout), mininterval=PLAIN_INTERVAL, **kwargs)


class Console:
    """What a command prints while it works: step summaries and progress (stdout), bars on a terminal (stderr).

    Args:
        quiet: print nothing (errors still reach stderr through the CLI).
        lane: a name put before every line (``medlib demo`` runs studies side by side); with it each line also
            carries the lane's elapsed time.
        out: where lines go (default stdout); bars use stderr when both are terminals.
        live: draw live tqdm bars; default: when stdout and stderr are terminals and there is no lane.
    """

    def __init__(self, *, quiet: bool = False, lane: str = "", out: IO[str] | None = None,
                 live: bool | None = None) -> None:
        self.quiet = quiet
        self.lane = lane
        self.out = out or sys.stdout
        self.live = (_is_tty(self.out) and _is_tty(sys.stderr) and not lane) if live is None else live
        self.started = time.perf_counter()
        self._lock = threading.Lock()

    @property
    def prefix(self) -> str:
        if not self.lane:
            return ""
        minutes, secs = divmod(int(time.perf_counter() - self.started), 60)
        return f"[{self.lane} {minutes:02d}:{secs:02d}] "

    def line(self, text: str) -> None:
        """Print one line (with the lane's prefix) unless quiet."""
        if self.quiet:
            return
        with self._lock:
            self.out.write(self.prefix + text + "\n")
            self.out.flush()

    def done(self, name: str, seconds: float, detail: str = "") -> None:
        """The summary line of a finished step: ``done  Models and training (45.2 s)``."""
        self.line(f"done  {name}{': ' + detail if detail else ''} ({format_seconds(seconds)})")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[dict[str, str]]:
        """Time a step and print its summary line when it ends without an error; the yielded dict's
        ``"detail"`` is added to the line (``done  cohort: 120 cases (0.8 s)``). While it runs, a long step
        says so (:class:`_Heartbeat`), and bars that library code opens with :func:`progress_bar` are drawn by
        this console."""
        info = {"detail": ""}
        beat = self.begin(name)
        _ACTIVE.append(self)
        try:
            yield info
        finally:
            _ACTIVE.remove(self)
            beat.stop()
        self.done(name, beat.seconds, info["detail"])

    def begin(self, name: str) -> "_Heartbeat":
        """Start timing a step (its heartbeat runs until ``stop()``; the caller prints :meth:`done`)."""
        return _Heartbeat(self, name)

    def bar(self, iterable: Any = None, **kwargs: Any) -> _std_tqdm:
        """A progress bar for work done in this process (tqdm's arguments): live on a terminal, else plain
        lines indented under the step."""
        kwargs.setdefault("leave", False)
        if self.quiet or kwargs.pop("disable", False):
            return _std_tqdm(iterable, disable=True, **kwargs)
        if self.live:
            return _std_tqdm(iterable, file=sys.stderr, **kwargs)
        return _LineBar(iterable, emit=_plain_emit(_Prefixed(self), "  "), mininterval=PLAIN_INTERVAL, **kwargs)

    @contextlib.contextmanager
    def follow(self, path: Path, *, every: float = 0.25) -> Iterator[None]:
        """Show the progress events a notebook kernel appends to ``path`` while the block runs."""
        if self.quiet:
            yield
            return
        reader = _EventReader(path, self)
        stop = threading.Event()
        thread = threading.Thread(target=reader.run, args=(stop, every), name="medlib-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            reader.close()

    def notebook_hooks(self, cells: list[dict[str, Any]]) -> "NotebookSteps":
        """Hooks for nbclient (``on_cell_start``) that make each ``##`` section of a notebook a step."""
        return NotebookSteps(self, cells)


class _Heartbeat:
    """While a step runs: on a terminal a transient line with its name and elapsed time (stderr); elsewhere a
    plain line after :data:`FIRST_BEAT` seconds, then every :data:`BEAT` seconds, so no long step is silent."""

    def __init__(self, console: Console, name: str) -> None:
        self.console, self.name = console, name
        self.start = time.perf_counter()
        self.end: float | None = None
        self._stop = threading.Event()
        self._bar = None
        self._thread = None
        if console.quiet:
            return
        if console.live:
            self._bar = _std_tqdm(total=None, desc=name, bar_format="{desc} [{elapsed}]", file=sys.stderr,
                                  leave=False)
        self._thread = threading.Thread(target=self._run, name="medlib-heartbeat", daemon=True)
        self._thread.start()

    @property
    def seconds(self) -> float:
        return (self.end or time.perf_counter()) - self.start

    def _run(self) -> None:
        wait = 1.0 if self._bar is not None else FIRST_BEAT
        while not self._stop.wait(wait):
            if self._bar is not None:
                self._bar.refresh()
            else:
                self.console.line(f"...   {self.name}: running for {format_seconds(self.seconds)}")
                wait = BEAT

    def stop(self) -> None:
        self.end = self.end or time.perf_counter()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._bar is not None:
            self._bar.close()


class _Prefixed(io.TextIOBase):
    """A stream that writes through a Console (its lane prefix is added per line)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.console.line(line)
        return len(text)


class _EventReader:
    """Reads new lines of the events file and shows them: as live bars on a terminal, else as plain lines."""

    def __init__(self, path: Path, console: Console) -> None:
        self.path, self.console = Path(path), console
        self.offset = 0
        self.bars: dict[str, _std_tqdm] = {}
        self.shown: dict[str, Any] = {}

    @staticmethod
    def _worth_a_line(event: dict[str, Any], last: tuple[float, float] | None) -> bool:
        """As plain lines a bar shows its first state, then a line for each tenth of its total or each
        ``PLAIN_INTERVAL`` seconds, whichever comes first (every epoch of a short training; about a dozen lines
        for minutes of radiomics), then its last state once."""
        if last is None:
            return True
        n, elapsed = last
        if event["closed"]:
            return event["n"] != n
        total = event["total"] or 0
        return event["elapsed"] - elapsed >= PLAIN_INTERVAL or (total > 0 and event["n"] - n >= total / 10)

    def run(self, stop: threading.Event, every: float) -> None:
        while not stop.wait(every):
            self.poll()
        self.poll()

    def poll(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        for text in complete.splitlines():
            try:
                self.show(json.loads(text))
            except (ValueError, KeyError, TypeError):
                continue  # not an event of ours: skipped, never fatal

    def show(self, event: dict[str, Any]) -> None:
        if not self.console.live:
            if self._worth_a_line(event, self.shown.get(event["id"])):
                self.console.line("  " + event["line"])
                self.shown[event["id"]] = (event["n"], event["elapsed"])
            return
        bar = self.bars.get(event["id"])
        if bar is None:
            bar = self.bars[event["id"]] = _std_tqdm(total=event["total"], desc=event["desc"], unit=event["unit"],
                                                    file=sys.stderr, leave=False)
        bar.total = event["total"]
        bar.n = event["n"]
        bar.set_postfix_str(event["postfix"], refresh=False)
        bar.refresh()
        if event["closed"]:
            bar.close()
            del self.bars[event["id"]]

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


class NotebookSteps:
    """The steps of an executing notebook: its ``##`` sections, each summarised when the next one starts.

    Pass :attr:`hooks` to papermill (``execute_notebook(..., **hooks)``; nbclient calls ``on_cell_start``) and
    call :meth:`finish` after it returns. The cells before the first section are the set-up (the kernel's start,
    imports, reading the params).
    """

    def __init__(self, console: Console, cells: list[dict[str, Any]]) -> None:
        self.console = console
        self.section_of = _sections(cells)
        self.current: str | None = None
        self.beat: _Heartbeat | None = None

    @property
    def hooks(self) -> dict[str, Callable[..., None]]:
        return {"on_cell_start": self.on_cell_start}

    def on_cell_start(self, cell: Any = None, **_: Any) -> None:
        """nbclient's hook: a cell of a new section closes the previous section's step. Cells are matched by
        id (papermill inserts its parameters cell, so indices shift); an unknown cell stays in the section."""
        section = self.section_of.get(_cell_key(cell or {}), self.current)
        if section != self.current:
            self._close()
            self.current = section
            self.beat = self.console.begin(section) if section is not None else None

    def finish(self) -> None:
        """The last section's summary (after papermill returns)."""
        self._close()
        self.current = None

    def stop(self) -> None:
        """Stop the running section's heartbeat without a summary (the notebook failed)."""
        if self.beat is not None:
            self.beat.stop()
            self.beat = None

    def _close(self) -> None:
        if self.beat is not None:
            self.beat.stop()
            self.console.done(self.beat.name, self.beat.seconds)
            self.beat = None


def _cell_key(cell: Any) -> str:
    source = cell.get("source", "")
    return str(cell.get("id") or ("".join(source) if isinstance(source, list) else str(source)))


def _sections(cells: list[dict[str, Any]]) -> dict[str, str]:
    """Cell (by id) -> the ``##`` section it lies in ("notebook set-up" before the first)."""
    out, name = {}, "notebook set-up (kernel, imports, params)"
    for cell in cells:
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") == "markdown":
            for line in text.splitlines():
                if line.startswith("## "):
                    name = line[3:].strip()
                    break
        out[_cell_key(cell)] = name
    return out
