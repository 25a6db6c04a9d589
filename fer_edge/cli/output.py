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
