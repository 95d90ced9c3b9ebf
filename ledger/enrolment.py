"""The enrolment proof: the bytes a device signs to prove it holds the key it enrols with.

Shared by the register (``register/enrol.py``, which checks it) and the device (``sync_agent/enrol.py``,
which signs it), so the one signing contract lives in the shared core. docs/rosters.md, "Enrolment".
"""

from __future__ import annotations

from typing import Final

TOKEN_PREFIX: Final = "kgt1-"  # noqa: S105 - a format marker, not a secret
DOMAIN: Final = b"kgate enrolment proof v1\n"


def proof_message(register: str, origin: str, token_sha256: str, challenge: str, vkey: str) -> bytes:
    """The bytes the device signs: domain, register, origin, token hash, challenge and key, one per line."""
    fields = (register, origin, token_sha256, challenge, vkey)
    if any("\n" in f for f in fields):
        raise ValueError("enrolment proof fields are single lines")
    return DOMAIN + "".join(f"{f}\n" for f in fields).encode("utf-8")
