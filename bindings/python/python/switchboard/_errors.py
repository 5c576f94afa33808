"""The exceptions switchboard raises: one class per error code of the core.

Each class also extends the built-in exception a Python programmer would catch for that
kind of failure, so ``except TimeoutError`` and ``except ConnectionError`` work as well
as ``except switchboard.Timeout``. The native module creates its exceptions through
:func:`_from_native`, so these are the only definitions.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "SwitchboardError",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "FailedPrecondition",
    "Unavailable",
    "Timeout",
    "Cancelled",
    "IoError",
    "InternalError",
    "Unauthenticated",
    "PermissionDenied",
]


class SwitchboardError(Exception):
    """Base class of every switchboard error.

    ``code`` is the stable name shared by every language (``"SB_TIMEOUT"``, ...): the C
    status name and Node's ``err.code``. ``str(err)`` says what was wrong and what would
    be right.
    """

    code: ClassVar[str] = "SB_INTERNAL"


class InvalidArgument(SwitchboardError, ValueError):
    """Bad configuration, details or input (``SB_INVALID_ARGUMENT``)."""

    code: ClassVar[str] = "SB_INVALID_ARGUMENT"


class NotFound(SwitchboardError, LookupError):
    """Unknown id or name (``SB_NOT_FOUND``)."""

    code: ClassVar[str] = "SB_NOT_FOUND"


class ResourceExhausted(SwitchboardError):
    """A limit was reached, e.g. too many callers waiting (``SB_RESOURCE_EXHAUSTED``)."""

    code: ClassVar[str] = "SB_RESOURCE_EXHAUSTED"


class FailedPrecondition(SwitchboardError):
    """The object's state does not allow the call, e.g. a released lease
    (``SB_FAILED_PRECONDITION``)."""

    code: ClassVar[str] = "SB_FAILED_PRECONDITION"


class Unavailable(SwitchboardError, ConnectionError):
    """Endpoint down, breaker open, or the manager or pool is closed
    (``SB_UNAVAILABLE``). ``errno`` is set when the OS reported one."""

    code: ClassVar[str] = "SB_UNAVAILABLE"


class Timeout(SwitchboardError, TimeoutError):
    """A deadline passed (``SB_TIMEOUT``)."""

    code: ClassVar[str] = "SB_TIMEOUT"


class Cancelled(SwitchboardError):
    """The caller cancelled (``SB_CANCELLED``)."""

    code: ClassVar[str] = "SB_CANCELLED"


class IoError(SwitchboardError, OSError):
    """An operating-system error (``SB_IO``); ``errno`` is set when there is one."""

    code: ClassVar[str] = "SB_IO"


class InternalError(SwitchboardError):
    """A bug in switchboard (``SB_INTERNAL``); please report it."""

    code: ClassVar[str] = "SB_INTERNAL"


class Unauthenticated(SwitchboardError, PermissionError):
    """The authenticate hook refused a token (``SB_UNAUTHENTICATED``)."""

    code: ClassVar[str] = "SB_UNAUTHENTICATED"


class PermissionDenied(SwitchboardError, PermissionError):
    """The authorize hook refused a topic (``SB_PERMISSION_DENIED``)."""

    code: ClassVar[str] = "SB_PERMISSION_DENIED"


_BY_CODE: dict[str, type[SwitchboardError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        ResourceExhausted,
        FailedPrecondition,
        Unavailable,
        Timeout,
        Cancelled,
        IoError,
        InternalError,
        Unauthenticated,
        PermissionDenied,
    )
}

for _cls in (SwitchboardError, *_BY_CODE.values()):
    # Shown in tracebacks as switchboard.Timeout rather than switchboard._errors.Timeout.
    _cls.__module__ = "switchboard"
del _cls


def _from_native(code: str, message: str, errno: int | None) -> SwitchboardError:
    """Called by the native module to build the exception for a core error."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return InternalError(f"{code}: {message}")
    exc = cls(message)
    if errno is not None and isinstance(exc, OSError):
        # Only errno: setting strerror too would make str(exc) "[Errno n] ..." and hide
        # the message, which already includes the OS's text.
        exc.errno = errno
    return exc
