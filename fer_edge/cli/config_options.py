"""Command-line options built from a config dataclass (train/config.py), so each option is declared once.

Each field's metadata gives its help, bounds, choices and names; the command also takes `--config FILE` (a
run's config.json, or any JSON of the same fields) whose values the options given on the command line
override.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import MISSING, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from fer_edge.cli.options import choice_enum
from fer_edge.errors import UsageError

_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}


def _parameter(f) -> inspect.Parameter:
    meta = f.metadata
    default = f.default_factory() if f.default is MISSING else f.default
    kind = str(f.type)
    if meta.get("multiple") or (kind == "list[str]" and not meta.get("comma")):
        item = Path if meta.get("path") else str
        py_type, default_value = Optional[list[item]], None
    elif kind == "list[str]":  # comma-separated on the command line
        py_type, default_value = Optional[str], None
    elif meta.get("path"):
        py_type, default_value = Optional[Path], (Path(default) if default else None)
    elif meta.get("choices"):
        py_type = choice_enum(f.name.title().replace("_", ""), meta["choices"])
        default_value = py_type(default)
    else:
        py_type, default_value = _SCALARS[kind], default
    bounds = {k: meta[k] for k in ("min", "max") if k in meta}
    if meta.get("argument"):
        info = typer.Argument(help=meta["help"], show_default=False)
        default_value = inspect.Parameter.empty
    else:
        flags = meta.get("flags") or (f"--{f.name.replace('_', '-')}" + (f"/--no-{f.name.replace('_', '-')}" if kind == "bool" else ""),)
        info = typer.Option(*flags, help=meta["help"], **bounds)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default_value,
                             annotation=Annotated[py_type, info])


def _to_config_value(f, value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if value is None:
        return f.default_factory() if f.default is MISSING else f.default
    if str(f.type) == "list[str]" and f.metadata.get("comma"):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return value


def config_command(config_cls: type, run: Callable[..., None], extra: list[inspect.Parameter]) -> Callable:
    """A function typer turns into a command: `extra` parameters first (passed to `run` by name), then one
    option per field of `config_cls`, then --config. run(config, **extra) is called with the config built
    from --config (when given) and the options set on the command line; also with ctx, the typer Context,
    when run takes one."""
    cfg_fields = [f for f in fields(config_cls) if f.metadata.get("cli", True)]
    arguments = [f for f in cfg_fields if f.metadata.get("argument")]
    options = [f for f in cfg_fields if not f.metadata.get("argument")]
    config_opt = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[
        Optional[Path], typer.Option("--config", help="Start from this JSON config (a run's config.json); the options given here override it.")])

    def command(**given: Any) -> None:
        ctx = given.pop("ctx")
        if passes_ctx:
            given["ctx"] = ctx
        values = _read_config(config_cls, given.pop("config"))
        for f in cfg_fields:
            value = given.pop(f.name)
            source = ctx.get_parameter_source(f.name)
            if f.name in values and (source is None or source.name == "DEFAULT"):
                continue  # the config file's value stands
            value = _to_config_value(f, value)
            spill = f.metadata.get("multiple")
            if isinstance(spill, str) and isinstance(value, list):  # --data A --data B: data A, extra_data [B]
                value, values[spill] = (value[0], value[1:]) if value else ("", [])
            values[f.name] = value
        run(config_cls.from_dict(values), **given)

    # the context tells an option given on the command line from its default
    passes_ctx = "ctx" in inspect.signature(run).parameters
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
    params = [ctx_param, *extra, *(_parameter(f) for f in arguments), *(_parameter(f) for f in options), config_opt]
    command.__signature__ = inspect.Signature(params)
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = run.__doc__
    command.__name__ = run.__name__
    return command


def _read_config(config_cls: type, path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        values = json.loads(Path(path).read_text())
    except OSError as e:
        raise UsageError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise UsageError(f"--config {path}: not JSON ({e})") from None
    if not isinstance(values, dict):
        raise UsageError(f"--config {path}: not a JSON object of options")
    known = {f.name for f in fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"--config {path}: unknown option {unknown[0]!r} (it holds {len(unknown)} this version does not know)")
    return values
