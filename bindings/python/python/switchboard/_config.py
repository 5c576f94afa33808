"""Configuration values as the core's string settings: the one conversion the
manager, pools and resources share (numbers for durations are milliseconds, a
``timedelta`` exactly, ``bool`` ``"true"``/``"false"``, bytes as text with C escapes, a
mapping as the keys of one section). Checking the values is the core's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Mapping, Optional, Union

from ._errors import InvalidArgument

#: A configuration value. Numbers given for durations are milliseconds (as in every
#: language); a ``timedelta`` is converted exactly; ``bool`` becomes ``"true"``/``"false"``;
#: ``bytes`` (for ``probe_send``/``probe_expect``) becomes text with C escapes. A mapping
#: sets the keys of one section: ``breaker={"failure_threshold": 5}`` is
#: ``breaker_failure_threshold=5``.
ConfigValue = Union[str, int, float, bool, timedelta, bytes, Mapping[str, Any]]

#: A count setting: an ``int`` (or its text).
Count = Union[int, str]

#: A duration setting: milliseconds as a number, text such as ``"250ms"``, or a ``timedelta``.
Duration = Union[int, float, str, timedelta]

_SIMPLE_ESCAPES = {0x5C: "\\\\", 0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x00: "\\0"}


def escape_bytes(data: bytes) -> str:
    """Bytes as the core's text form with C escapes (``b"PING\\r\\n"`` -> ``"PING\\\\r\\\\n"``)."""
    out = []
    for b in data:
        if b in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[b])
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)

#: A timeout argument: seconds (``float``/``int``), a ``timedelta``, or ``None``.
Seconds = Union[float, timedelta, None]


def config_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        # Plain decimal notation (1e-05 -> "0.00001"): durations take no exponent.
        return format(Decimal(repr(float(value))), "f")
    if isinstance(value, timedelta):
        us = value // timedelta(microseconds=1)
        return f"{us // 1000}ms" if us % 1000 == 0 else f"{us}us"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return escape_bytes(bytes(value))
    raise InvalidArgument(
        f"configuration key {key!r} must be a str, int, float, bool, bytes or "
        f"datetime.timedelta, got {type(value).__name__} {value!r}"
    )


def config_pairs(
    config: Optional[Mapping[str, ConfigValue]], kwargs: Mapping[str, ConfigValue]
) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for source in (config or {}, kwargs):
        add_pairs(pairs, "", source)
    return pairs


def add_pairs(pairs: list[tuple[str, str]], prefix: str, source: Mapping[Any, Any]) -> None:
    for key, value in source.items():
        if not isinstance(key, str):
            raise InvalidArgument(
                f"configuration keys must be strings, got {type(key).__name__} {key!r}"
            )
        key = prefix + key
        if isinstance(value, Mapping):
            # A section given as a mapping: breaker={"failure_threshold": 5}.
            add_pairs(pairs, key + ".", value)
        else:
            pairs.append((key, config_value(key, value)))
