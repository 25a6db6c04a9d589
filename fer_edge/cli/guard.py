"""Error mapping shared by every command, and the signals that end a run the way Ctrl-C does."""

from __future__ import annotations

import functools
import signal
from typing import Callable

import typer

from fer_edge.errors import FerEdgeError, Interrupted


def interrupt_exit_code(e: KeyboardInterrupt) -> int:
    """128 + the signal: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(e, "signum", signal.SIGINT)


def install_signal_handlers() -> None:
    def handler(signum, _frame):
        for s in (signal.SIGTERM, signal.SIGHUP):  # once: a second signal must not cut the cleanup short
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)):
        if s is not None:
            signal.signal(s, handler)


def guarded(fn: Callable) -> Callable:
    """Our errors become `error: <one line>` on stderr and their exit code; Ctrl-C exits 130, SIGTERM 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FerEdgeError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt as e:
            what = f"stopped by {e.args[0]}" if isinstance(e, Interrupted) else "interrupted"
            typer.echo(f"{what}: everything written so far is kept", err=True)
            raise typer.Exit(interrupt_exit_code(e)) from None

    return wrapper
