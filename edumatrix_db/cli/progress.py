"""Progress of long offline commands on stderr (Rich), shown only on a terminal, so stdout stays the
command's output (a table, JSON, markdown) and CI logs stay clean."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

STDERR = Console(stderr=True)


@contextmanager
def counting(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A bar of `total` steps; the callback advances it and says what was just done."""
    if not STDERR.is_terminal:
        yield lambda _: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=STDERR, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, advance=1, description=f"{description}: {done}")


@contextmanager
def status(message: str) -> Iterator[None]:
    if not STDERR.is_terminal:
        yield
        return
    with STDERR.status(message):
        yield
