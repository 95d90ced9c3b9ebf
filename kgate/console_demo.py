"""The demo's console part: one user per role, a parent code, and one child's statement (docs/console.md).

Run after the demo's month is in ``DIR/register/register.db``: the kindergarten goes into a district,
a director, a district official and an auditor get random passwords (printed by the demo: a demo
convenience, never how real users get theirs), the first child with entries that month gets a parent
access code, and ``DIR/statement.json``, ``DIR/statement.pdf`` and ``DIR/register.vkey`` are written so
``kgate statement verify DIR/statement.json --register-vkey DIR/register.vkey`` can be tried at once.
"""

from __future__ import annotations

import secrets
import time
from datetime import date
from pathlib import Path
from shlex import quote
from typing import Any

from kgate.invocation import kgate_command

DISTRICT = "Demo district"


def write_console_demo(out: Path, on: date) -> dict[str, Any]:
    """Create the users, the parent code and the statement; returns what the demo prints."""
    from register.kindergartens import set_district  # noqa: PLC0415 - keep `kgate --help` fast
    from register.parent_codes import create_parent_code  # noqa: PLC0415
    from register.statement import build_statement, load_cosigner, write_statement  # noqa: PLC0415
    from register.store import open_store  # noqa: PLC0415
    from register.users import add_user  # noqa: PLC0415

    db = out / "register" / "register.db"
    month = on.strftime("%Y-%m")
    now_ms = int(time.time() * 1000)
    signer = load_cosigner(db.parent)  # the register's key directory (kgate/month.py): signs the statement
    users = []
    with open_store(f"sqlite:///{db}") as store:
        k = store.devices()[0].kindergarten
        set_district(store, k, DISTRICT)
        for name, role, scope in (("director", "director", k), ("district", "district", DISTRICT),
                                  ("auditor", "auditor", None)):  # fmt: skip
            password = secrets.token_urlsafe(12)
            add_user(store, name, role, scope, password, now_ms=now_ms, actor="demo")
            users.append({"name": name, "role": role, "scope": scope, "password": password})
        with store._tx(write=False) as sql:
            children = [str(r[0]) for r in sql.all(
                "SELECT id FROM roster_children WHERE kindergarten = ? ORDER BY id", (k,))]  # fmt: skip
        for child in children:
            statement = build_statement(store, child, month, kindergarten_name=k, signer=signer)
            if statement.verified.entries:
                break
        code = create_parent_code(store, k, child, now_ms=now_ms, actor="demo")
    json_path, pdf_path = write_statement(statement, out)
    return {
        "kindergarten": k,
        "users": users,
        "parent_code": code,
        "child": child,
        "month": month,
        "entries": len(statement.verified.entries),
        "statement": str(json_path),
        "statement_pdf": str(pdf_path),
        "register_vkey": str(out / "register.vkey"),
        "serve": f"{kgate_command()} register serve --db {quote(str(db))} --state {quote(str(db.parent))} "
        "--console",
    }


def console_lines(c: dict[str, Any]) -> list[str]:
    """The demo's printed lines about the console (passwords included: demo only)."""
    who = ", ".join(f"{u['name']}/{u['password']} ({u['role']})" for u in c["users"])
    return [
        f"  console:         {c['serve']}   then open http://127.0.0.1:8470/console/login",
        f"  console users:   {who}  (demo passwords: printed here only because this is a demo)",
        f"  parent code:     {c['parent_code']} for child {c['child']} at /console/parent",
        f"  statement:       {c['entries']} entries of {c['child']} in {c['month']}: {c['statement']}, "
        f"{c['statement_pdf']}; verify: {kgate_command()} statement verify {quote(c['statement'])} "
        f"--register-vkey {quote(c['register_vkey'])}",
    ]
