"""`python -m spoke_agent`: the `fleetplane agent` command, with its options parsed by argparse.

The options are the ones `spoke_agent.cli.agent_command` declares (flags, environment variables,
defaults, help): this module reads them from its signature, parses `sys.argv` with the standard
library and calls the same function. Not typer's parser, deliberately: typer (0.29) converts
each option with a pydantic TypeAdapter, and loading pydantic for that cost the agent process
8.5 MiB of RSS for its whole life, a fifth of an idle simulated agent (docs/agent.md, "Footprint").
`fleetplane agent` (the hub's typer CLI) still runs the same function through typer.
"""

from __future__ import annotations

import argparse
import enum
import inspect
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

import typer

from .cli import agent_command

_TRUE = {"1", "true", "yes", "on"}


def _value_type(annotation: Any) -> Any:
    """`str | None` → str; the other annotations are used as they are."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _choices(tp: Any) -> list[str]:
    members: list[enum.Enum] = list(tp)
    return [str(m.value) for m in members]


def _converter(tp: Any) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            if tp is bool:
                return text.strip().lower() in _TRUE
            return tp(text)
        except ValueError as e:
            choices = f" (one of: {', '.join(_choices(tp))})" if isinstance(tp, enum.EnumMeta) else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {tp.__name__}{choices}") from e

    convert.__name__ = getattr(tp, "__name__", "value")
    return convert


def build_parser(command: Callable[..., Any] = agent_command) -> tuple[argparse.ArgumentParser, dict[str, Any]]:
    """An argparse parser for a typer command's options, and each option's typer OptionInfo."""
    parser = argparse.ArgumentParser(
        prog="python -m spoke_agent", description=inspect.getdoc(command), allow_abbrev=False
    )
    hints = typing.get_type_hints(command)
    infos: dict[str, Any] = {}
    for name, param in inspect.signature(command).parameters.items():
        info = param.default
        if not isinstance(info, typer.models.OptionInfo):
            raise TypeError(f"{command.__name__}: parameter {name} is not a typer.Option")
        infos[name] = info
        flags = [d for d in info.param_decls or () if d.startswith("-")] or [f"--{name.replace('_', '-')}"]
        tp = _value_type(hints[name])
        envvar = info.envvar if isinstance(info.envvar, str) else None
        text = info.help or ""
        if envvar:
            text += f" [env: {envvar}]"
        if tp is bool:
            parser.add_argument(*flags, dest=name, action="store_true", default=None, help=text)
            continue
        metavar = "|".join(_choices(tp)) if isinstance(tp, enum.EnumMeta) else name.upper()
        parser.add_argument(*flags, dest=name, type=_converter(tp), metavar=metavar, help=text)
    return parser, infos


def parse(argv: Sequence[str], command: Callable[..., Any] = agent_command) -> dict[str, Any]:
    """Keyword arguments for `command` from the command line, then its environment variables,
    then its defaults, as typer would pass them."""
    parser, infos = build_parser(command)
    given = vars(parser.parse_args(list(argv)))
    hints = typing.get_type_hints(command)
    out: dict[str, Any] = {}
    for name, info in infos.items():
        value = given.get(name)
        envvar = info.envvar if isinstance(info.envvar, str) else None
        if value is None and envvar and os.environ.get(envvar):
            tp = _value_type(hints[name])
            try:
                value = _converter(tp)(os.environ[envvar])
            except argparse.ArgumentTypeError as e:
                parser.error(f"${envvar}: {e}")
        if value is None:
            if info.default is ...:
                flag = next((d for d in info.param_decls or () if d.startswith("--")), f"--{name}")
                parser.error(f"missing option {flag}" + (f" (or ${envvar})" if envvar else ""))
            value = info.default
        out[name] = value
    return out


def main(argv: Sequence[str] | None = None) -> None:
    kwargs = parse(sys.argv[1:] if argv is None else argv)
    try:
        agent_command(**kwargs)
    except typer.Exit as e:
        sys.exit(e.exit_code)
