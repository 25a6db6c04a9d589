"""Tables on a terminal and in a pipe alike."""

from __future__ import annotations


def print_table(console, table) -> None:
    """Print at the table's own width when the output is not a terminal: rich would otherwise cut every
    column to fit 80 characters ("fram…", "neut…") in a log file or a CI run."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.measure(table, options=console.options.update_width(400)).maximum
    before = console.width
    console.width = max(width, before)
    try:
        console.print(table)
    finally:
        console.width = before


def status_console(quiet: bool = False):
    """The console for status lines on stderr: each line stays one line when stderr is a pipe or a log (rich
    would otherwise hard-wrap it at 80 columns, and a grep would see fragments). Tables go through print_table."""
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True, quiet=quiet)

