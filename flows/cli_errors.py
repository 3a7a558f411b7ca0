"""How `pdap` ends: exit codes, and one line on stderr for every expected failure (docs/cli.md).

0 ok; 1 a data contract failed; 2 bad input, configuration or command line; 3 locked (another
refresh holds the state folder); 130 interrupted; anything else (70) is a bug. `pdap --debug ...`
prints the traceback before the line.
"""

from __future__ import annotations

import itertools
import logging
import sys
import traceback
from typing import Any

from typer.core import TyperGroup

DEBUG = False  # `pdap --debug`: set as the command line is read
OK, CONTRACT_FAILED, BAD_INPUT, LOCKED, BUG, INTERRUPTED = 0, 1, 2, 3, 70, 130

# By class name, so that judging an error never imports the modules that define them (Great Expectations),
# and command-line errors are known whichever click (typer's own copy or click itself) raised them.
EXIT_CODES = {
    "ContractViolation": CONTRACT_FAILED,
    "ConfigError": BAD_INPUT, "InputError": BAD_INPUT, "SamplingError": BAD_INPUT, "ResourceMissing": BAD_INPUT,
    "CheckFailed": BAD_INPUT, "ClickException": BAD_INPUT, "Unavailable": BAD_INPUT, "RunIdInUse": BAD_INPUT,
    "RefreshLocked": LOCKED,
}


class Unavailable(RuntimeError):
    """Something the command needs outside pdap is not there (a Prefect server that does not start)."""


def _is(error: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(error).__mro__)


def exit_code(error: BaseException) -> int:
    """The documented exit code of `error`: by the nearest class in its MRO named in EXIT_CODES, else BUG."""
    for cls in type(error).__mro__:
        if cls.__name__ in EXIT_CODES:
            return EXIT_CODES[cls.__name__]
    return BUG


def one_line(error: BaseException) -> str:
    """`error: <file or key>: <problem>` on one line; a bug says so and how to see its traceback."""
    text = error.format_message() if _is(error, "ClickException") else str(error)
    message = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if _is(error, "UsageError") and getattr(error, "ctx", None) is not None:
        return f"error: {message} (see {error.ctx.command_path} --help)"
    if exit_code(error) == BUG:
        return f"error: internal error ({type(error).__name__}: {message}); rerun with --debug for the traceback and report it"
    return f"error: {message}"


def report(error: BaseException, debug: bool) -> int:
    """Print `error` as one stderr line (with --debug, its traceback first); return its exit code."""
    if debug and not _is(error, "ClickException"):
        traceback.print_exception(error, file=sys.stderr)
    print(one_line(error), file=sys.stderr, flush=True)
    return exit_code(error)


class _WithoutTraceback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def quiet_prefect_tracebacks() -> None:
    """Without --debug, Prefect's console lines keep their message and lose the traceback: an expected
    failure inside a flow (a contract that fails) ends as pdap's one line, not 150 lines of traceback."""
    if DEBUG:
        return
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            if type(handler).__name__ == "PrefectConsoleHandler" and not any(isinstance(f, _WithoutTraceback) for f in handler.filters):
                handler.addFilter(_WithoutTraceback())


class ErrorReportingGroup(TyperGroup):
    """The `pdap` group: runs a command and turns whatever it raises into a line and an exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        args = sys.argv[1:] if args is None else list(args)
        debug = "--debug" in itertools.takewhile(lambda arg: arg.startswith("-"), args)  # the global options
        global DEBUG
        DEBUG = debug
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else OK  # typer.Exit(n) comes back as n
        except Exception as error:  # noqa: BLE001 - every failure ends here, as one line and a code
            if _is(error, "NoArgsIsHelpError"):  # `pdap` alone: the help is printed already
                code = error.exit_code
            elif _is(error, "Abort"):
                print("error: interrupted", file=sys.stderr)
                code = INTERRUPTED
            else:
                code = report(error, debug)
        sys.exit(code)
