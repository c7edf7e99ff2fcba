"""How the command line shows its help and its usage errors: plain help that lists arguments by name, choices
and defaults, and every usage error as one `error:` line, as every other error is."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.core
from rich.markup import escape

from mdn.cli.report import console

try:  # typer vendors click from 0.2x on; before, it used click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError

EXIT_USAGE = 2
"""The command line itself is wrong: bad option, no inputs."""


EXAMPLE = "Example:"
"""A help paragraph that starts so is one command line, shown whole on its own line (never wrapped in the middle)."""


def format_help_text(text: str | None, formatter: Any) -> None:
    """A command's help text as click writes it, but for its examples (`EXAMPLE`): consecutive ones under one
    heading, each command on one line of its own, however narrow the terminal (a command broken across lines
    cannot be pasted)."""
    paragraphs = [p for p in inspect.cleandoc(text or "").partition("\f")[0].split("\n\n") if p.strip()]
    if not paragraphs:
        return
    examples = [" ".join(p.removeprefix(EXAMPLE).split()) for p in paragraphs if p.startswith(EXAMPLE)]
    formatter.write_paragraph()
    with formatter.indentation():
        for index, paragraph in enumerate(p for p in paragraphs if not p.startswith(EXAMPLE)):
            if index:
                formatter.write_paragraph()
            formatter.write_text(paragraph)
        if examples:
            formatter.write_paragraph()
            formatter.write_text("Examples:" if len(examples) > 1 else EXAMPLE)
            with formatter.indentation():
                for line in examples:
                    formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


def _option_record(param: Any, record: tuple[str, str], room: int) -> tuple[str, str]:
    """An option's help row as it reads best: a default given in words without the brackets click puts around
    it (`[default: balanced]`), and choices too many for the first column (`room` characters) listed in the
    help instead (`--type <type>  ... [choices: a, b, ...]`)."""
    names, words = record
    shown = getattr(param, "show_default", None)
    if isinstance(shown, str):
        words = words.replace(f"[default: ({shown})", f"[default: {shown}")
    metavar = param.metavar or ""
    if len(names) > room and metavar.startswith("<") and "|" in metavar:
        name = max(param.opts, key=len).lstrip("-")
        names = names.replace(metavar, f"<{name}>")
        words = f"{words}  [choices: {', '.join(metavar[1:-1].split('|'))}]"
    return names, words


class Command(typer.core.TyperCommand):
    """A command whose help names its arguments as their metavar says (`IMAGES`), without a type beside it, and
    lists each help panel's options (`rich_help_panel`, e.g. Research) after the everyday ones; its examples
    one command a line, defaults as given, long choices in the help (all of it within 80 columns)."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        """The usage line's pieces, a required argument as its plain name (`NAME`, not typer's `{NAME}`)."""
        pieces = super().collect_usage_pieces(ctx)
        return [piece[1:].replace("}", "", 1) if piece.startswith("{") else piece for piece in pieces]

    def format_options(self, ctx: typer.Context, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {"Arguments": [], "Options": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                sections["Arguments"].append((param.metavar or (param.name or "").upper(), record[1]))
            else:
                record = _option_record(param, record, formatter.width - formatter.current_indent - 2)
                sections.setdefault(getattr(param, "rich_help_panel", None) or "Options", []).append(record)
        for title, records in sections.items():
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)

    def format_help_text(self, ctx: typer.Context, formatter: Any) -> None:
        format_help_text(self.help, formatter)


class Group(typer.core.TyperGroup):
    """The app: a usage error (an unknown option, a bad value, a missing argument) is one line naming the
    command's help, on stderr, with exit status 2; a command given nothing at all (`mdn denoise`, as `mdn denoise
    $FILES` runs with no files) prints its help there and exits 2 too, as click does, so that a script sees it
    fail."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as shown:
            typer.echo(shown.format_message(), err=True)
            status = shown.exit_code
        except ClickException as error:
            context = getattr(error, "ctx", None)
            hint = f" (see {context.command_path} --help)" if context is not None else ""
            console.print(f"[red]error[/]: {escape(error.format_message() + hint)}", soft_wrap=True)
            status = error.exit_code
        except typer.Abort:
            status = 1
        if not standalone_mode:
            return status
        sys.exit(status if isinstance(status, int) else 0)


class ShowGroup(typer.core.TyperGroup):
    """A command group whose `show NAME` prints one thing (`mdn models`): a word that is no subcommand is taken as
    a NAME the user meant to show, and the usage error says how."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands and "show" in self.commands:
            raise UsageError(f"no command {args[0]!r}; to show a card: {ctx.command_path} show {args[0]}", ctx)
        return super().resolve_command(ctx, args)

    def format_help_text(self, ctx: typer.Context, formatter: Any) -> None:
        format_help_text(self.help, formatter)
