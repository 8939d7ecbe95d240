"""Progress of a long run: which case is running, how many of how many
are done, and an estimate of the time left.

On a terminal it is one line, rewritten in place; otherwise (a pipe, a
log file) one plain line per step.  The estimate assumes the steps left
take as long as the steps done so far, on average: pyperf gives every
benchmark the same number of processes, values and minimum time, so
that holds within a phase.
"""
from __future__ import annotations

import shutil
import sys
import time
from typing import Callable, Protocol, TextIO


class Progress(Protocol):
    """What a run reports its progress to."""

    def start(self, phase: str, total: int) -> None:
        """A phase of `total` steps begins."""

    def step(self, name: str) -> None:
        """The next step, named, begins."""

    def finish(self) -> None:
        """The phase is over."""


def duration(seconds: float) -> str:
    """'2 min 05 s', '45 s'."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    return f"{s // 60} min {s % 60:02d} s"


class Reporter:
    """Progress written to a stream (stderr by default)."""

    def __init__(self, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = clock
        self.phase, self.total, self.done = "", 0, 0
        self.started = 0.0
        self.width = 0               # of the line on the terminal

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done = phase, total, 0
        self.started = self.clock()

    def line(self, name: str) -> str:
        """`phase k/total name, T left` for the step `name` beginning."""
        k = self.done + 1
        text = f"{self.phase} {k}/{self.total} {name}"
        if self.done:
            per_step = (self.clock() - self.started) / self.done
            text += f", about {duration(per_step * (self.total - self.done))} left"
        return text

    def step(self, name: str) -> None:
        text = self.line(name)
        self.done += 1
        if self.tty:
            # a line longer than the terminal would wrap, and \r could
            # no longer rewrite it
            columns = shutil.get_terminal_size().columns - 1
            if len(text) > columns:
                text = text[:max(columns - 3, 0)] + "..."
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        self.width = 0
        self.phase, self.total, self.done = "", 0, 0
