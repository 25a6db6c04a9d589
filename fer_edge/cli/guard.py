"""Error mapping shared by every command."""

from __future__ import annotations

import functools
from typing import Callable

import typer

from fer_edge.errors import FerEdgeError


def guarded(fn: Callable) -> Callable:
    """Our errors become `error: <one line>` on stderr and their exit code; Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FerEdgeError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: everything written so far is kept", err=True)
            raise typer.Exit(130) from None

    return wrapper
