"""Device origins: the one strict ASCII pattern ``<register-name>/kgate/<device-id>`` the register accepts.

A device's log origin is its key's note name, so it is printed, compared and pinned everywhere: it must
be unambiguous. Only lowercase ASCII letters, digits and ``-`` (``.`` too in the register name) are
allowed, so Cyrillic look-alikes (``а`` for ``a``), bidi controls, uppercase variants and trailing
newlines are refused before anything else looks at the text. The register's own name (its cosigner
key's name) must be the prefix. :func:`assign_device_id` derives the id of an enrolled gate.
"""

from __future__ import annotations

import re
import secrets
from typing import Final

from register.errors import BadOrigin

#: The register's name: a lowercase DNS-style host name (its cosigner key's name).
REGISTER_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?", re.ASCII)
#: The device part of an origin.
DEVICE_ID: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}", re.ASCII)
MIDDLE: Final = "/kgate/"


def check_register_name(name: str) -> str:
    """``name`` if it is a valid register name, else :class:`BadOrigin`."""
    if not name.isascii() or not REGISTER_NAME.fullmatch(name) or ".." in name:
        raise BadOrigin(f"register name {name!r} is not a lowercase ASCII host name")
    return name


def check_origin(origin: str, register_name: str | None) -> str:
    """``origin`` if it is ``<register_name>/kgate/<device-id>``; :class:`BadOrigin` naming the rule broken.

    With ``register_name`` None (a database whose register never ran) the prefix is only checked for
    form, not for identity.
    """
    if not origin.isascii():
        raise BadOrigin(
            f"origin {origin!r} has non-ASCII characters (look-alike letters or bidi controls are refused)"
        )
    prefix, middle, device_id = origin.partition(MIDDLE)
    if not middle:
        raise BadOrigin(f"origin {origin!r} is not <register-name>/kgate/<device-id>")
    check_register_name(prefix)
    if register_name is not None and prefix != register_name:
        raise BadOrigin(f"origin {origin!r} is outside this register's prefix {register_name + MIDDLE!r}")
    if not DEVICE_ID.fullmatch(device_id):
        raise BadOrigin(
            f"origin {origin!r}: the device id must be 1-63 of a-z 0-9 - (lowercase, starting with a-z 0-9)"
        )
    return origin


def sanitize(text: str) -> str:
    """Lowercase ASCII letters and digits of ``text``, other runs collapsed to one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower(), flags=re.ASCII).strip("-")


def assign_device_id(kindergarten: str, gate: str, taken: set[str]) -> str:
    """The device id for a gate: ``<kindergarten>-<gate>`` sanitized, ``-2``, ``-3`` … if taken.

    Names with no ASCII letter or digit (a kindergarten named in Kazakh) give ``gate-<random hex>``.
    """
    base = sanitize(f"{sanitize(kindergarten)}-{sanitize(gate)}")
    if not sanitize(kindergarten) or not sanitize(gate):
        base = f"gate-{secrets.token_hex(4)}"
    base = base[:56].strip("-")
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate
