"""Former spellings of `mdn` options, still taken on the command line with a one-line warning each."""

from __future__ import annotations

from collections.abc import Iterator

import typer
from rich.markup import escape

from mdn.cli.report import console
from mdn.cli.usage import Command

FORMER: dict[str, dict[str, tuple[str, ...]]] = {
    "denoise": {"--batch": ("--tile-batch",)},
    "train": {
        "--bf16": ("--precision", "bf16"),
        "--input-mask": ("--input-mask-range",),
        "--attention-mask": ("--attention-mask-ratio",),
        "--out": ("--output",),
    },
    "bench": {"--train-batch": ("--batch",)},
}
"""Command -> former option -> what it is now (the option, and for a former flag its value)."""


def current(command: str, args: list[str]) -> Iterator[str]:
    """`args` of `command` with former option names replaced by today's, warning once per replacement."""
    former = FORMER.get(command, {})
    for index, arg in enumerate(args):
        if arg == "--":
            yield from args[index:]
            return
        name, equals, value = arg.partition("=")
        if name not in former:
            yield arg
            continue
        now = former[name]
        console.print(f"[yellow]warning[/]: {escape(name)} is now {escape(' '.join(now))}", soft_wrap=True)
        yield from (*now[:-1], now[-1] + equals + value)


class FormerOptions(Command):
    """A command that still takes its options' former names (see `FORMER`)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, list(current(self.name or "", args)))
