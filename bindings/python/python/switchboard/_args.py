"""Argument helpers the package's modules share: Python values turned into what the
native module takes, refusing with :class:`InvalidArgument` what its conversion would
refuse with a bare ``TypeError`` or ``OverflowError``. The checks on the values
themselves are the core's."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Optional

from ._errors import InvalidArgument

if TYPE_CHECKING:  # typing.TypeGuard is 3.10+; annotations are not evaluated
    from typing_extensions import TypeGuard

#: Ids, counters and cursors cross to the native module as ``u64``.
U64 = 1 << 64


def is_u64(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool) the native module takes as a ``u64``."""
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value < U64


def seconds(what: str, value: object) -> Optional[float]:
    """A timeout or duration in seconds (a number or a ``timedelta``), or ``None``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(
            f"{what} must be a number of seconds, a datetime.timedelta or None, "
            f"got {type(value).__name__} {value!r}"
        )
    return float(value)


def opt_str(what: str, value: object) -> Optional[str]:
    """A ``str`` or ``None``."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidArgument(f"{what} must be a str or None, got {type(value).__name__} {value!r}")


def running_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The event loop running on this thread, if one is: the loop a call's async
    callbacks will run on."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
