"""The ``emolens`` command line: a thin shell over the Python API.

Each sub-module adds its commands with ``register(app)`` and imports its heavy dependencies
inside the command functions, so ``emolens analyze`` never imports torch. Errors raised at the core
(:class:`~emolens.errors.EmolensError`) become one clear line on stderr and the exit code the error
class names; so does an ``OSError`` that escaped the core (a full or read-only disk: exit code 9);
nothing else is caught, so real bugs still show their traceback.
"""

from __future__ import annotations

import errno
import sys

import typer

from ..errors import EmolensError, exit_code_for
from . import (
    analyze,
    campaign,
    data,
    evaluate,
    export,
    export_triton,
    keypoints,
    models,
    norms,
    serve,
    train,
    tune,
    video,
)

app = typer.Typer(
    name="emolens",
    help="Read emotions from faces: train, evaluate and export models; analyze photos; serve an API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (data, train, tune, evaluate, export, export_triton, keypoints, models, analyze, video, campaign, norms,
                serve):
    _module.register(app)


def _click_exceptions() -> tuple[type[Exception], ...]:
    """click's ClickException, and typer's bundled copy of it (typer >= 0.29 vendors click)."""
    found: list[type[Exception]] = []
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # typer >= 0.29 vendors click and no longer installs it
        pass
    try:
        from typer._click.exceptions import ClickException as vendored

        found.append(vendored)
    except ImportError:
        pass
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    try:
        rv = app(args=argv, prog_name="emolens", standalone_mode=False)
    except EmolensError as err:
        typer.echo(f"error: {err}", err=True)
        return exit_code_for(err)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except ImportError as err:  # a command's optional package is not installed: name the extra
        from ..extras import missing_extra

        args = sys.argv[1:] if argv is None else argv
        missing = missing_extra(err, next((a for a in args if not a.startswith("-")), None))
        if missing is None:
            raise
        typer.echo(f"error: {missing}", err=True)
        return exit_code_for(missing)
    except typer.Exit as e:
        return int(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 1
    except OSError as err:  # a file operation the core did not wrap: a full or read-only disk, ...
        from ..fsio import OutputError, reason

        typer.echo(f"error: {err.filename or 'a file'}: {reason(err)}", err=True)
        return OutputError.exit_code if err.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT) else 1
    except Exception as e:  # usage errors arrive as ClickException in non-standalone mode
        if isinstance(e, _click_exceptions()):
            e.show()  # type: ignore[attr-defined]
            return int(e.exit_code)  # type: ignore[attr-defined]
        raise
    # In non-standalone mode click returns the code of a typer.Exit instead of raising it.
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
