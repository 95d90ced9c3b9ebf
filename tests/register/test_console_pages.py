"""The console's working pages over loopback HTTP (requests against real uvicorn), SQLite and PostgreSQL.

Overview, a kindergarten's day, the табель (the same counts as ``kgate register tabel``), absences,
submit and approve by the right roles only, flags, a device's log with a proof that verifies, the
parent's "my child was not there", CSRF on the new forms, and the audit trail of every change.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys

import pytest
import requests

from ledger.entry import decode_entry
from ledger.merkle import leaf_hash, verify_inclusion
from register.store import open_store
from register.users import audit_log
from tests.register.test_console import Console, _csrf, _login, console  # noqa: F401 - the fixture
from tests.register.test_statement import built  # noqa: F401 - the fixture `console` uses

MONTH = "2026-11"


def _post(s: requests.Session, c: Console, page: str, path: str, **data: str) -> requests.Response:
    token = _csrf(s.get(f"{c.url}{page}", timeout=10).text)
    return s.post(f"{c.url}{path}", data={"csrf": token, **data}, allow_redirects=False, timeout=30)


def _cli_tabel(db: str) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-m", "kgate.cli", "register", "tabel", "--db", db, "--kindergarten", "K1",
         "--month", MONTH],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    counts: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(out.decode())):
        counts[row["child"]] = counts.get(row["child"], 0) + (row["status"] == "present")
    return counts


def test_pages_open_for_the_roles_that_may_see_them(console: Console) -> None:  # noqa: F811
    director, _ = _login(console, "dir1")
    mine = ("/console/overview", f"/console/k/K1/day?date={MONTH}-02", f"/console/k/K1/tabel?month={MONTH}",
            f"/console/k/K1/flags?month={MONTH}", "/console/d/1", "/console/d/1/proof/1")  # fmt: skip
    for page in mine:
        assert director.get(f"{console.url}{page}", timeout=30).status_code == 200, page
    for page in ("/console/k/K2/day", "/console/k/K2/tabel", "/console/k/K2/flags", "/console/d/3",
                 "/console/d/3/proof/1"):  # fmt: skip
        assert director.get(f"{console.url}{page}", timeout=30).status_code == 404, page
    overview = director.get(f"{console.url}/console/overview", timeout=30).text
    assert "north" in overview and "south" in overview and "other" not in overview
    day = director.get(f"{console.url}/console/k/K1/day?date={MONTH}-02", timeout=30).text
    left, absent = day.split("Ушли")[1].split("Отсутствуют")
    assert "Әлия Серікқызы" in left and "Бекзат" not in absent  # A checked out, B is still in


def test_the_tabel_page_has_the_cli_numbers_and_a_proof_verifies(console: Console) -> None:  # noqa: F811
    director, _ = _login(console, "dir1")
    html = director.get(f"{console.url}/console/k/K1/tabel?month={MONTH}", timeout=30).text
    counts = _cli_tabel(console.store_url)
    for child, present in counts.items():
        row = html.split(f'data-child="{child}"')[1].split("</tr>")[0]
        assert f'class="present-total">{present}<' in row
    assert counts == {"A": 3, "B": 1}
    proof = json.loads(director.get(f"{console.url}/console/d/1/proof/2", timeout=30).content)
    size = int(proof["checkpoint"].split("\n")[1])
    root = base64.b64decode(proof["checkpoint"].split("\n")[2])
    verify_inclusion(  # raises if the proof does not reproduce the cosigned root
        leaf_hash(base64.b64decode(proof["data"])), proof["index"], size,
        [base64.b64decode(h) for h in proof["proof"]], root,
    )  # fmt: skip


def test_absence_submit_and_approve_by_the_right_roles_only(console: Console) -> None:  # noqa: F811
    page = f"/console/k/K1/tabel?month={MONTH}"
    director, _ = _login(console, "dir1")
    r = _post(director, console, page, "/console/k/K1/tabel/absence", month=MONTH, child="B",
              date=f"{MONTH}-03", reason="child_ill")  # fmt: skip
    assert r.status_code == 303
    assert "н:child_ill" in director.get(f"{console.url}{page}", timeout=30).text
    assert _post(director, console, page, "/console/k/K1/tabel/approve", month=MONTH).status_code == 403
    auditor, _ = _login(console, "aud")
    for action in ("submit", "approve", "absence"):
        assert _post(auditor, console, page, f"/console/k/K1/tabel/{action}", month=MONTH).status_code == 403
    assert _post(director, console, page, "/console/k/K1/tabel/submit", month=MONTH).status_code == 303
    no_token = director.post(f"{console.url}/console/k/K1/tabel/submit", data={"month": MONTH}, timeout=10)
    assert no_token.status_code == 403
    with open_store(console.store_url) as store:
        from register.kindergartens import set_district

        set_district(store, "K1", "Bostandyk")  # the district official of the fixture gets K1 too
    district, _ = _login(console, "dist")
    # absences without a reason are left: approved only with a reason, which the audit trail keeps
    assert _post(district, console, page, "/console/k/K1/tabel/approve", month=MONTH).status_code == 400
    why = "absences checked with the director"
    assert (
        _post(district, console, page, "/console/k/K1/tabel/approve", month=MONTH, reason=why).status_code
        == 303
    )
    approved = district.get(f"{console.url}{page}", timeout=30).text
    assert "Бекітілді" in approved  # the district official reads Kazakh
    actions = [(a.actor, a.action) for a in audit_log(console.store)]
    assert ("dir1", "tabel/absence") in actions and ("dir1", "tabel/submit") in actions
    assert ("dist", "tabel/approve") in actions
    assert any(a.action == "tabel/approve" and repr(why) in a.detail for a in audit_log(console.store))


def test_a_parent_reports_a_day_and_the_auditors_get_the_entries(console: Console) -> None:  # noqa: F811
    s = requests.Session()
    form = s.get(f"{console.url}/console/parent", timeout=10)
    s.post(f"{console.url}/console/parent", data={"csrf": _csrf(form.text), "code": console.code}, timeout=10)
    month = s.get(f"{console.url}/console/parent/month", params={"month": MONTH}, timeout=30)
    assert (
        s.post(
            f"{console.url}/console/parent/not-there", data={"date": f"{MONTH}-02"}, timeout=10
        ).status_code
        == 403
    )
    confirm = s.get(f"{console.url}/console/parent/not-there", params={"date": f"{MONTH}-02"}, timeout=30)
    assert month.ok and confirm.ok and 'name="comment"' in confirm.text
    one_tap = s.post(
        f"{console.url}/console/parent/not-there",
        data={"csrf": _csrf(confirm.text), "date": f"{MONTH}-02"},
        timeout=30,
    )  # without the confirmation: back to the confirmation page, nothing reported
    assert one_tap.status_code == 200 and "/console/parent/not-there?date=" in one_tap.url
    assert not [a for a in console.store.alarms() if a.kind == "parent_report"]
    r = s.post(
        f"{console.url}/console/parent/not-there",
        data={"csrf": _csrf(confirm.text), "date": f"{MONTH}-02", "confirm": "yes"},
        timeout=30,
    )
    assert r.status_code == 200 and "reported=" in r.url
    alarms = [a for a in console.store.alarms() if a.kind == "parent_report"]
    assert sorted(a.index or 0 for a in alarms) == [4, 5]  # A's in and out of Nov 2 (north)
    assert all(a.evidence and decode_entry(a.evidence).child == "A" for a in alarms)
    auditor, _ = _login(console, "aud")
    assert "parent_report" in auditor.get(f"{console.url}/console/overview", timeout=30).text
    flags = auditor.get(f"{console.url}/console/k/K1/flags?month={MONTH}", timeout=30).text
    assert "parent_report:reg.test/kgate/north:4" in flags  # the табель holds the day until cleared


@pytest.mark.parametrize("page", ["/console/overview", "/console/k/K1/tabel", "/console/d/1"])
def test_pages_need_a_login(console: Console, page: str) -> None:  # noqa: F811
    r = requests.get(f"{console.url}{page}", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/console/login"


def test_a_post_outside_the_users_scope_is_404_and_changes_nothing(console: Console) -> None:  # noqa: F811
    """Catches POST forms that check the role but not the scope: K1's director may not enter absences
    for or submit K2's month, the Bostandyk official (K2) may not approve Almaly's K1."""
    own = f"/console/k/K1/tabel?month={MONTH}"
    director, _ = _login(console, "dir1")
    for action, form in (
        ("absence", {"child": "A", "date": f"{MONTH}-03", "reason": "child_ill"}),
        ("submit", {}),
    ):
        r = _post(director, console, own, f"/console/k/K2/tabel/{action}", month=MONTH, **form)
        assert r.status_code == 404, (action, r.status_code, r.text[:200])
    assert _post(director, console, own, "/console/k/K1/tabel/submit", month=MONTH).status_code == 303
    district, _ = _login(console, "dist")
    theirs = f"/console/k/K2/tabel?month={MONTH}"
    r = _post(district, console, theirs, "/console/k/K1/tabel/approve", month=MONTH)
    assert r.status_code == 404, (r.status_code, r.text[:200])
    with console.store._tx(write=False) as sql:
        absences = sql.all("SELECT kindergarten, child FROM tabel_absences")
        steps = sql.all("SELECT kindergarten, step FROM tabel_approvals ORDER BY id")
    assert absences == [] and steps == [("K1", "submitted")], steps
    actions = [(a.actor, a.action, a.detail.split()[0]) for a in audit_log(console.store) if "/" in a.action]
    assert actions == [("dir1", "tabel/submit", "K1")], actions


def test_every_console_page_forbids_framing(console: Console) -> None:  # noqa: F811
    """Issue 17: the parent report page's CSP lacked ``frame-ancestors`` (clickjacking of its one-step
    form); every console page, answer and redirect must carry ``frame-ancestors 'none'``."""
    anonymous = requests.Session()
    director, _ = _login(console, "dir1")
    answers = [
        anonymous.get(f"{console.url}{path}", allow_redirects=False, timeout=30)
        for path in ("/console/login", "/console/parent", "/console/parent/report?e=nothing", "/console/")
    ]
    answers.append(
        anonymous.post(
            f"{console.url}/console/parent/report", data={"e": "nothing", "code": "AAAA-BBBB-CCCC-DDDD"},
            timeout=30,
        )
    )  # fmt: skip
    answers.append(anonymous.post(f"{console.url}/console/login", data={"name": "x"}, timeout=30))
    for path in ("/console/", "/console/overview", f"/console/k/K1/tabel?month={MONTH}", "/console/k/K2/day"):
        answers.append(director.get(f"{console.url}{path}", allow_redirects=False, timeout=30))
    assert {r.status_code for r in answers} >= {200, 303, 401, 403, 404}
    for r in answers:
        policy = r.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, (r.url, r.status_code, policy)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", r.url
