"""Progress of long offline commands on stderr (Rich), shown only on a terminal, so stdout stays the
command's output (a table, JSON, markdown) and CI logs stay clean. Rich is imported only then."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def counting(description: str, total: int) -> Iterator[Callable[[str], None]]:
    """A bar of `total` steps; the callback advances it and says what was just done."""
    if not sys.stderr.isatty():
        yield lambda _: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, advance=1, description=f"{description}: {done}")


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with `message` while the block runs."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
