"""Encoding one event as one redacted JSON line (for :mod:`planwise_monitoring.events`).

    from planwise_monitoring._json_lines import encode_event

    doc, line = encode_event({"event": "tick", "fields": {"nan": float("nan"), "when": b"x"}})
    assert line == '{"event":"tick","fields":{"nan":null,"when":"x"}}'

JSON cannot hold everything a caller passes as a field: datetimes, enums, Decimals, numpy
scalars and arrays, sets, bytes, dataclasses and exceptions are coerced (:func:`_coerce`); NaN and
infinities become null, non-string keys strings, and structures deeper than 32 levels (or cyclic)
their ``str()``. A string that holds a secret is redacted (see :func:`encode_event`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import decimal
import enum
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .redaction import announces_secret, redact, secret_values

_MAX_DEPTH = 32  # deeper (or cyclic) structures are written as their str()


def encode_event(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``(clean, line)``: ``line`` is ``doc`` as compact JSON (no newline) with every secret
    masked; ``clean`` is ``doc`` itself when nothing needed changing, else the JSON-safe, redacted
    copy that ``line`` encodes (what log handlers other than ours should see).

        from planwise_monitoring.redaction import register_secret
        register_secret("tok-s3cr3t")
        clean, line = encode_event({"event": "login", "fields": {"msg": "bad tok-s3cr3t"}})
        assert clean["fields"]["msg"] == "bad ***" and "tok-s3cr3t" not in line

    The fast path serialises once and searches the text for the JSON-escaped secret values (an
    escaped secret occurs in the line iff the secret occurs in one of its strings) and for secrets
    that announce themselves; only then is every string passed through ``redact``."""
    try:
        text = _dumps(doc)
    except (ValueError, TypeError, RecursionError):  # NaN, odd keys, cycles: take the slow path
        doc = _sanitise(doc, _identity)
        text = _dumps(doc)
    if _may_hold_secret(text):
        doc = _sanitise(doc, _redact_str)
        text = _dumps(doc)
    return doc, text


_second_cache: tuple[int, str] = (-1, "")


def iso_timestamp(now: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds for ``now`` (epoch seconds; default: now).

        assert iso_timestamp(0.5) == "1970-01-01T00:00:00.500Z"

    The formatted second is reused while it lasts (cheaper)."""
    global _second_cache
    if now is None:
        now = time.time()
    second = int(now)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}Z"


def _coerce(value: Any) -> Any:
    """``default=`` for json.dumps: what JSON cannot hold natively."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (decimal.Decimal, uuid.UUID, Path)):
        return str(value)
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()  # scalars → Python scalars, arrays → lists
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


def _sanitise(value: Any, clean_str: Callable[[str], str], depth: int = 0) -> Any:
    """The slow path: a JSON-safe copy (NaN/inf → null, keys → str, cycles cut off), with every
    string passed through ``clean_str``."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean_str(str.__str__(value))  # a str Enum's value, as json.dumps writes it
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if depth >= _MAX_DEPTH:
        return clean_str(_safe_str(value))
    if isinstance(value, Mapping):
        return {clean_str(k if isinstance(k, str) else _key_str(k)): _sanitise(v, clean_str, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitise(v, clean_str, depth + 1) for v in value]
    try:
        coerced = _coerce(value)
    except Exception:
        coerced = _safe_str(value)
    if isinstance(coerced, str):
        return clean_str(coerced)
    return _sanitise(coerced, clean_str, depth + 1)  # a list/dict/scalar; depth bounds the recursion


def _key_str(key: Any) -> str:
    if isinstance(key, bool) or key is None:
        return json.dumps(key)  # as json.dumps would write it: "true", "null"
    if isinstance(key, (int, float)):
        return str(key)
    return _safe_str(_coerce(key))


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


# One encoder, reused: json.dumps with options builds a new one per call (a third of its cost).
_ENCODER = json.JSONEncoder(default=_coerce, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
_dumps = _ENCODER.encode
_ESCAPE = json.JSONEncoder(ensure_ascii=False)


def _identity(text: str) -> str:
    return text


def _redact_str(text: str) -> str:
    return redact(text) or text


# The secret values as they appear inside a JSON string, for the current secret_values() tuple
# (the same object until the secrets change, so identity tells when to recompute).
_escaped_cache: tuple[tuple[str, ...] | None, tuple[str, ...]] = (None, ())


def _may_hold_secret(text: str) -> bool:
    """False positives only cost the slow path. The announced-secret patterns match the JSON text
    wherever they match a string in it (escaping only lengthens what they accept)."""
    global _escaped_cache
    values = secret_values()
    cached_for, escaped = _escaped_cache
    if cached_for is not values:
        escaped = tuple(_ESCAPE.encode(v)[1:-1] for v in values)
        _escaped_cache = (values, escaped)
    return any(e in text for e in escaped) or announces_secret(text)
