"""Exit codes and the expected failures that map to them."""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """Stable, documented exit statuses (README "Exit status")."""

    OK = 0
    NOT_READY = 1  # check found a limit below the target, or a probe failed
    BAD_INPUT = 2  # same as the usage errors of the argument parser
    NEEDS_ROOT = 3
    CONFLICT = 4  # lock held, or drift since apply
    INTERNAL = 70  # EX_SOFTWARE: a bug; the traceback is shown
    INTERRUPTED = 130  # Ctrl-C or SIGTERM, as shells report 128 + SIGINT


class SysprepError(Exception):
    """Expected failure: one line on stderr, a distinct exit code, host unchanged."""

    exit_code: ClassVar[ExitCode] = ExitCode.INTERNAL


class BadInputError(SysprepError):
    """An argument, size or pid that cannot be used."""

    exit_code = ExitCode.BAD_INPUT


class NeedsRootError(SysprepError):
    """The command changes the host and the caller is not root."""

    exit_code = ExitCode.NEEDS_ROOT


class ConflictError(SysprepError):
    """Another sysprep holds the lock, or the host drifted since apply."""

    exit_code = ExitCode.CONFLICT


class GoneError(SysprepError):
    """The process being watched has exited, and nothing stands in its place."""

    exit_code = ExitCode.NOT_READY


class StoppedError(SysprepError):
    """Ctrl-C or SIGTERM: what was running was stopped and cleaned up."""

    exit_code = ExitCode.INTERRUPTED
