"""Progress for long runs: one line per stage with its time, and bars for tiles.

Written to stderr with rich, so stdout stays clean for machine-readable output.
Disabled (silent) when ``enabled`` is False, e.g. inside tests.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@dataclass
class StageTimer:
    """Seconds a stage took, filled in when it ends."""

    seconds: float = 0.0


class StageProgress:
    """Announces stages and shows bars; silent when disabled."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(f"[dim]·[/dim] {text}")

    @contextlib.contextmanager
    def stage(self, name: str, what: str) -> Iterator[StageTimer]:
        timer = StageTimer()
        if self.enabled:
            self.console.print(f"[bold cyan]{name:>9}[/bold cyan] {what}")
        t0 = time.perf_counter()
        try:
            yield timer
        finally:
            timer.seconds = round(time.perf_counter() - t0, 2)
        if self.enabled:
            self.console.print(f"[dim]{'':>9} done in {timer.seconds:.1f} s[/dim]")

    @contextlib.contextmanager
    def bar(self, label: str, total: int) -> Iterator[Callable[[], None]]:
        if not self.enabled:
            yield lambda: None
            return
        with Progress(
            TextColumn(f"{'':>9} {label}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False,
        ) as bar:
            task = bar.add_task(label, total=total)
            yield lambda: bar.advance(task)
