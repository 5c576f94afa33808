"""Seed 004's JSON message envelope, made and read by core as in every language."""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Union

from . import _native
from ._args import opt_str
from ._errors import InvalidArgument

__all__ = ["envelope", "parse_envelope"]


def envelope(
    type: str,
    data: Any = None,
    topic: Optional[str] = None,
    error: Optional[str] = None,
) -> str:
    """Seed 004's JSON message envelope as text: ``{"type": ..., "topic": ...,
    "data": ..., "timestamp": "<RFC 3339, UTC>", "error": ...}`` (``None`` fields left
    out). ``data`` is any value ``json.dumps`` takes. Made by core, as in every
    language."""
    data_json = None if data is None else json.dumps(data)
    return _native.envelope_encode(type, opt_str("topic", topic), data_json, opt_str("error", error))


def parse_envelope(text: Union[str, bytes]) -> Dict[str, Any]:
    """Decodes an envelope into a dict with the keys ``type``, ``topic``, ``data``,
    ``timestamp`` and ``error`` (``None`` when absent). :class:`InvalidArgument` says
    what is wrong with text that is not one."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode()
        except UnicodeDecodeError as exc:
            raise InvalidArgument(f"an envelope must be UTF-8 JSON text: {exc}") from None
    if not isinstance(text, str):
        raise InvalidArgument(f"an envelope is JSON text (str), got {type(text).__name__}")
    kind, topic, data_json, timestamp, error = _native.envelope_decode(text)
    return {
        "type": kind,
        "topic": topic,
        "data": None if data_json is None else json.loads(data_json),
        "timestamp": timestamp,
        "error": error,
    }
