"""The табель page's CSV and XLSX downloads over loopback HTTP (real uvicorn), SQLite and PostgreSQL.

The files are byte for byte what ``kgate register tabel --format csv|xlsx`` writes for the same
database; who may download is exactly who may open the табель page.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from register.console.pages import attachment
from register.users import add_user
from tests.register.test_console import PASSWORD, Console, _login, console  # noqa: F401 - the fixture
from tests.register.test_console_pages import MONTH
from tests.register.test_statement import built  # noqa: F401 - the fixture `console` uses

TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _cli(db: str, fmt: str) -> bytes:
    return subprocess.run(
        [sys.executable, "-m", "kgate.cli", "register", "tabel", "--db", db, "--kindergarten", "K1",
         "--month", MONTH, "--format", fmt],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip


def test_a_director_downloads_what_the_cli_writes(console: Console) -> None:  # noqa: F811
    director, _ = _login(console, "dir1")
    page = director.get(f"{console.url}/console/k/K1/tabel?month={MONTH}", timeout=30).text
    for fmt in ("csv", "xlsx"):
        link = f"/console/k/K1/tabel.{fmt}?month={MONTH}"
        assert f'href="{link}"' in page, fmt  # the page links to the file
        r = director.get(f"{console.url}{link}", timeout=30)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == TYPES[fmt]
        assert r.headers["Content-Disposition"] == f'attachment; filename="tabel-K1-{MONTH}.{fmt}"'
        assert r.headers["Cache-Control"] == "no-store"
        assert r.content == _cli(console.store_url, fmt), fmt
    assert r.content[:2] == b"PK"  # the xlsx is a zip
    csv = director.get(f"{console.url}/console/k/K1/tabel.csv?month={MONTH}", timeout=30).content
    assert csv.startswith(b"kindergarten,group,child,name,date,status,first_in,last_out,method,")


def test_only_who_may_open_the_tabel_page_downloads_it(console: Console) -> None:  # noqa: F811
    add_user(console.store, "dir2", "director", "K2", PASSWORD, now_ms=0)
    other, _ = _login(console, "dir2")
    district, _ = _login(console, "dist")  # Bostandyk: K2 only
    auditor, _ = _login(console, "aud")
    for fmt in ("csv", "xlsx"):
        path = f"{console.url}/console/k/K1/tabel.{fmt}?month={MONTH}"
        for refused in (other, district):
            r = refused.get(path, timeout=30)
            page = refused.get(f"{console.url}/console/k/K1/tabel?month={MONTH}", timeout=30)
            assert r.status_code == page.status_code == 404
            assert "attachment" not in r.headers.get("Content-Disposition", "") and b"K1," not in r.content
        assert auditor.get(path, timeout=30).status_code == 200
        anonymous = requests.get(path, allow_redirects=False, timeout=10)
        assert anonymous.status_code == 303 and anonymous.headers["Location"] == "/console/login"
    assert other.get(f"{console.url}/console/k/K2/tabel.csv?month={MONTH}", timeout=30).status_code == 200


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "26-11", "2026-11-01", "../2026-11", "x" * 300])
def test_a_bad_month_gets_the_error_page(console: Console, month: str) -> None:  # noqa: F811
    director, _ = _login(console, "dir1")
    r = director.get(f"{console.url}/console/k/K1/tabel.csv", params={"month": month}, timeout=30)
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("text/html")
    assert "Traceback" not in r.text and "Content-Disposition" not in r.headers


def test_a_kindergarten_without_data_is_not_found(console: Console) -> None:  # noqa: F811
    add_user(console.store, "dir3", "director", "K3", PASSWORD, now_ms=0)  # K3: no roster, no gate
    director, _ = _login(console, "dir3")
    r = director.get(f"{console.url}/console/k/K3/tabel.xlsx?month={MONTH}", timeout=30)
    assert (
        r.status_code == 404
        and "Traceback" not in r.text
        and r.headers["Content-Type"].startswith("text/html")
    )


def test_filenames_are_safe_whatever_the_kindergarten_is_called() -> None:
    assert attachment("tabel-K1-2026-11.csv") == 'attachment; filename="tabel-K1-2026-11.csv"'
    hostile = attachment('tabel-Детсад "5"\r\nSet-Cookie: x=1/..\\-2026-11.csv')
    plain, extended = hostile.split("; filename*=")
    assert plain == 'attachment; filename="tabel-________5___Set-Cookie__x_1_.._-2026-11.csv"'
    assert extended.startswith("UTF-8''tabel-%D0%94%D0%B5") and extended.isascii()
    assert not any(c in extended for c in '\r\n"\\/ ;')
