"""Bounded reading and parsing of local input files: a size cap before parsing, and depth and number caps.

Every file a command reads (a roster, a config, a checkpoint, an image) goes through
:func:`read_limited`, so ``/dev/zero``, a FIFO nobody writes to, or a directory ends at once with one
line instead of hanging or filling memory. :func:`loads_json_limited` and :func:`loads_toml_limited`
refuse documents nested deeper than ``max_depth`` and numbers longer than ``max_number_digits``
(Python's own int-to-string limit is 4300 digits, far past anything a config holds, and turns into a
traceback) as :class:`~kgate.errors.InputError`.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from os import PathLike
from typing import Any

from kgate.errors import InputError

KiB = 1024
MiB = 1024 * KiB
MAX_DEPTH = 32
#: Decimal digits of the longest number a roster or config may hold (2**64 has 20).
MAX_NUMBER_DIGITS = 24
_CHUNK = 64 * KiB


def _size(limit: int) -> str:
    for unit, name in ((MiB, "MiB"), (KiB, "KiB")):
        if limit >= unit and limit % unit == 0:
            return f"{limit // unit} {name}"
    return f"{limit} bytes"


def _subject(path: str | PathLike[str], what: str) -> str:
    return f"{what} {os.fspath(path)}" if what else os.fspath(path)


def read_limited(path: str | PathLike[str], limit: int, what: str = "") -> bytes:
    """The bytes of the regular file at ``path``; refused unread when it is not one or is over ``limit``.

    The file is opened non-blocking, so a FIFO without a writer does not hang, and checked with
    ``fstat`` before a byte is read; at most ``limit + 1`` bytes are read, for files whose size lies
    (``/proc``, a file growing while read). ``what`` names the input in the message (``roster file``).
    """
    subject = _subject(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {subject}:", exc.strerror or str(exc)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(subject, "is not a regular file")
        if info.st_size > limit:
            raise InputError(subject, f"is larger than {_size(limit)}")
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, _CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise InputError(f"cannot read {subject}:", exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if left <= 0:
        raise InputError(subject, f"is larger than {_size(limit)}")
    return b"".join(chunks)


def decode_utf8(raw: bytes, what: str, kind: str = "text") -> str:
    """``raw`` as UTF-8 text, or :class:`InputError` naming the offset of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(what, f"is not UTF-8 {kind} (bad byte at offset {exc.start})") from None


def check_depth(doc: object, what: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed document whose lists and tables nest deeper than ``max_depth`` (no recursion)."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > max_depth:
            raise InputError(what, f"is nested deeper than {max_depth} levels")
        stack.extend((child, depth + 1) for child in children)


class _Refused(ValueError):
    """Raised by a parse hook; becomes an :class:`InputError`."""


def _int_hook(max_digits: int) -> Any:
    def parse_int(text: str) -> int:
        if len(text.lstrip("+-")) > max_digits:
            raise _Refused(f"holds a number longer than {max_digits} digits")
        return int(text)

    return parse_int


def _float_hook(max_digits: int) -> Any:
    def parse_float(text: str) -> float:
        if len(text) > max_digits + 8:  # sign, point, exponent
            raise _Refused(f"holds a number longer than {max_digits} digits")
        value = float(text)
        if not math.isfinite(value):
            raise _Refused(f"holds a number that is not finite ({text})")
        return value

    return parse_float


def _refuse_constant(text: str) -> Any:
    raise _Refused(f"holds {text}, which is not a JSON number")


def loads_json_limited(
    raw: bytes | str,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_number_digits: int = MAX_NUMBER_DIGITS,
) -> Any:
    """Parse JSON text, refusing invalid UTF-8, NaN/Infinity, long numbers and deep nesting."""
    text = decode_utf8(raw, what, "JSON") if isinstance(raw, bytes) else raw
    try:
        doc = json.loads(
            text,
            parse_int=_int_hook(max_number_digits),
            parse_float=_float_hook(max_number_digits),
            parse_constant=_refuse_constant,
        )
    except _Refused as exc:
        raise InputError(what, str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(what, f"is not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError(what, f"is nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # e.g. Python's int-to-string digit limit
        raise InputError(what, f"is not valid JSON: {exc}") from None
    check_depth(doc, what, max_depth)
    return doc


def loads_toml_limited(
    raw: bytes | str,
    what: str,
    *,
    max_depth: int = MAX_DEPTH,
    max_number_digits: int = MAX_NUMBER_DIGITS,
) -> dict[str, Any]:
    """Parse TOML text, refusing invalid UTF-8, nan/inf, long numbers and deep nesting."""
    text = decode_utf8(raw, what, "TOML") if isinstance(raw, bytes) else raw
    try:
        doc = tomllib.loads(text, parse_float=_float_hook(max_number_digits))
    except _Refused as exc:
        raise InputError(what, str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(what, f"is not valid TOML: {exc}") from None
    except RecursionError:
        raise InputError(what, f"is nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # tomllib lets int()'s 4300-digit limit through as a bare ValueError
        raise InputError(what, f"holds a number longer than {max_number_digits} digits ({exc})") from None
    check_depth(doc, what, max_depth)
    _check_ints(doc, what, max_number_digits)
    return doc


def _check_ints(doc: object, what: str, max_digits: int) -> None:
    """Refuse integers of more than ``max_digits`` decimal digits (tomllib has no int hook)."""
    limit = 10**max_digits
    stack: list[object] = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= limit:
            raise InputError(what, f"holds a number longer than {max_digits} digits")


__all__ = [
    "MAX_DEPTH",
    "MAX_NUMBER_DIGITS",
    "InputError",
    "KiB",
    "MiB",
    "check_depth",
    "decode_utf8",
    "loads_json_limited",
    "loads_toml_limited",
    "read_limited",
]
