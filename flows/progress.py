"""Progress on stderr: live rich bars when a person watches a terminal, plain lines (or nothing) otherwise."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import ExitStack, contextmanager
from typing import IO, Sequence


def _progress(stream: IO[str], *columns, transient: bool):
    """A rich Progress drawing on `stream` (a terminal); stdout is redirected above it only if it is a terminal too."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), *columns,
                    console=Console(file=stream), transient=transient, redirect_stdout=sys.stdout.isatty())


class _PrintAbove(logging.Handler):
    """Stands in for a terminal log handler while bars are live: prints its records above the bars."""

    def __init__(self, console, replaced: logging.Handler):
        super().__init__(replaced.level)
        self.setFormatter(replaced.formatter)
        self.filters = list(replaced.filters)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


@contextmanager
def _logs_above_bars(bar, terminal: IO[str]):
    """While `bar` is live, log handlers writing to `terminal` (Prefect's console handler) print
    through the bar's console instead, above the bars rather than into them."""
    loggers = [logging.getLogger(), *(item for item in logging.Logger.manager.loggerDict.values() if isinstance(item, logging.Logger))]
    swaps = [(logger, handler, _PrintAbove(bar.console, handler)) for logger in loggers for handler in logger.handlers
             if isinstance(handler, logging.StreamHandler) and handler.stream is terminal]
    for logger, handler, stand_in in swaps:
        logger.removeHandler(handler)
        logger.addHandler(stand_in)
    try:
        yield
    finally:
        for logger, handler, stand_in in swaps:
            logger.removeHandler(stand_in)
            logger.addHandler(handler)


@contextmanager
def progress_bar(description: str, total: int):
    """Yield a callback `advance(n)`; draws a rich progress bar on a terminal, nothing otherwise."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    from rich.progress import TimeRemainingColumn

    terminal = sys.stderr
    with _progress(terminal, TimeRemainingColumn(), transient=True) as bar, _logs_above_bars(bar, terminal):
        task = bar.add_task(description, total=total)
        yield lambda advance: bar.update(task, advance=advance)


class StageStep:
    """One running stage: its wall clock and, on a terminal, its bar."""

    def __init__(self, label: str, bar, stream: IO[str]):
        self.label, self._bar, self._stream = label, bar, stream
        self._total = 1
        self._task = bar.add_task(label, total=self._total) if bar is not None else None
        self._started = time.perf_counter()

    def expect(self, steps: int) -> None:
        """The stage has `steps` steps in all (shards, then the merge); the bar's total."""
        self._total = max(steps, 1)
        if self._bar is not None:
            self._bar.update(self._task, total=self._total)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=steps)

    def finish(self, detail: str) -> float:
        """End the stage: fill its bar, or write its one plain line; return its wall time in seconds."""
        seconds = time.perf_counter() - self._started
        line = f"{self.label}: {detail}, {seconds:.1f} s"
        if self._bar is not None:
            self._bar.update(self._task, description=line, completed=self._total)
        else:
            print(line, file=self._stream, flush=True)
        return seconds


class StageProgress:
    """A run's stages in order: on a terminal a live bar per stage; elsewhere one plain line per finished stage."""

    def __init__(self, command: str, stages: Sequence[str], stream: IO[str] | None = None):
        self.command, self.stages = command, list(stages)
        self.stream = stream or sys.stderr
        self._bar = None
        self._live = ExitStack()

    def __enter__(self) -> StageProgress:
        if self.stream.isatty():
            from rich.progress import TimeElapsedColumn

            self._bar = self._live.enter_context(_progress(self.stream, TimeElapsedColumn(), transient=False))
            self._live.enter_context(_logs_above_bars(self._bar, self.stream))
        return self

    def __exit__(self, *_) -> None:
        self._live.close()

    def stage(self, name: str) -> StageStep:
        """Start `name`'s clock (and its bar); call `finish` on the result when the stage is done."""
        label = f"{self.command} {self.stages.index(name) + 1}/{len(self.stages)} {name}"
        return StageStep(label, self._bar, self.stream)
