"""The табель as the official printed form (XLSX and PDF, Kazakh and Russian), the holiday calendar of
Kazakhstan, future days, and the Kazakh alphabet's order of names (docs/tabel.md).

A real signed ledger ingested by a real register (SQLite); the PDF is read back with poppler's
``pdftotext``/``pdfinfo``, the XLSX from its XML parts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest

from kgate.cli import main
from ledger.note import CosignatureSigner
from register.console import views
from register.roster_csv import parse_csv
from register.service import Register
from register.store import Store, open_store
from register.store.roster import import_roster
from register.tabel import calendar, export, form, status
from register.tabel.simulate import Gate, local

K = "K20"
MONTH = "2025-12"
ZONE = ZoneInfo("Asia/Almaty")
RATE = 1_234_567  # tiyn per child-day: 12 345,67 tenge
#: Given name first, as the roster writes it; the form prints the surname first.
CHILDREN = [
    ("c-01", "Аружан Қасымова", "Күншуақ"),
    ("c-02", "Ұлан Әбенов", "Күншуақ"),
    ("c-03", "Өмір Ахметов", "Күншуақ"),
    ("c-04", "Ілияс Ұлықбеков", "Күншуақ"),
    ("c-05", "Дана Өмірбекова", "Күншуақ"),
    ("c-06", "Елена Смирнова", "Солнышко"),
    ("c-07", "Бауыржан Ким", "Солнышко"),
    ("c-08", "Жанна Ғалымова", "Солнышко"),
    ("c-09", "Марат Шәкіров", "Күншуақ"),  # Ш is before Ә in code points, after Ұ in the alphabet
]
#: Күншуақ as the form lists it: surname first, in the Kazakh alphabet's order (code points: Ш, Қ, Ә, Ұ, Ө).
KUNSHUAQ_IN_ORDER = ["Ахметов Өмір", "Әбенов Ұлан", "Қасымова Аружан", "Өмірбекова Дана", "Ұлықбеков Ілияс",
                     "Шәкіров Марат"]  # fmt: skip
_GIVEN = ["Айша", "Нұрлан", "Мирас", "Томирис", "Әлихан", "Зарина"]
_FAMILY = ["Сейітова", "Жұмабаев", "Оспанова", "Нұрланов", "Бекова", "Төлеуов"]
#: A group of 36 who never came: more than one page, so the header must repeat.
BIG = [(f"b-{i:02d}", f"{_GIVEN[i % 6]} {_FAMILY[i // 6]}", "Балапан") for i in range(36)]
ROSTER = "kind,id,name,group\n" + "".join(f"child,{c},{n},{g}\n" for c, n, g in [*CHILDREN, *BIG])
DAYS = [dt.date(2025, 12, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12)]  # Mon 1st to Fri 12th
#: Absences with a reason (the rest of the month has no entries: absent without a reason).
ABSENT = {("c-02", dt.date(2025, 12, 3)): "child_ill", ("c-02", dt.date(2025, 12, 4)): "child_ill",
          ("c-06", dt.date(2025, 12, 8)): "family", ("c-07", dt.date(2025, 12, 9)): "quarantine"}  # fmt: skip


def pdf_text(path: Path, *pages: int) -> str:
    args = ["pdftotext", "-layout", "-enc", "UTF-8"]
    if pages:
        args += ["-f", str(pages[0]), "-l", str(pages[-1])]
    return subprocess.run([*args, str(path), "-"], check=True, capture_output=True, text=True).stdout


def pdf_pages(path: Path) -> tuple[int, str]:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info)[1])  # type: ignore[index]
    return pages, re.search(r"Page size:\s+(.*)", info)[1]  # type: ignore[index]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path / 'register.db'}"
    store = open_store(url)
    now = [dt.datetime(2025, 11, 28, tzinfo=ZONE).timestamp()]
    register = Register(store, CosignatureSigner.generate("reg.test"), clock=lambda: now[0])
    import_roster(store, K, parse_csv(ROSTER.encode()), now_ms=int(now[0] * 1000))
    calendar.set_settings(store, K, rate_tiyn=RATE)
    gate = Gate(
        store, tmp_path / "gate", "reg.test/kgate/g1", kindergarten=K, gate="1", start=local(DAYS[0], "06:00")
    )
    for day in DAYS:
        for i, (child, _, _) in enumerate(CHILDREN):
            if (child, day) in ABSENT:
                calendar.add_absence(
                    store, K, child, day, ABSENT[child, day], document=None, by="t", now_ms=0
                )
                continue
            gate.at(local(day, f"08:1{i}")).append("in", child=child, method="qr")
            gate.at(local(day, f"18:1{i}")).append("out", child=child, method="qr")
        now[0] = local(day, "20:00").timestamp()
        gate.deliver(register)
    yield store, url
    gate.close()
    store.close()


def tabel_cli(url: str, out: Path, fmt: str, *extra: str) -> Path:
    argv = ["register", "tabel", "--db", url, "--kindergarten", K, "--month", MONTH, "--format", fmt]
    assert main([*argv, "--out", str(out), *extra]) == 0
    return out


def csv_rows(store: Store) -> list[dict[str, str]]:
    return list(
        csv.DictReader(io.StringIO(export.to_csv(status.build(store, K, MONTH)).decode(), newline=""))
    )


def expected_numbers(rows: list[dict[str, str]], reasons: list[str]) -> list[int]:
    """What the form prints after the days: missed by reason (then without one), missed, attended, payable."""
    absent = [r for r in rows if r["status"] == "absent"]
    missed = [sum(r["absence_reason"] == code for r in absent) for code in reasons]
    return [
        *missed,
        len(absent),
        sum(r["status"] == "present" for r in rows),
        sum(r["payable"] == "1" for r in rows),
    ]


REASON_COLUMNS = ["child_ill", "quarantine", "family", ""]  # the reasons used this month, in the fixed order


def test_pdf_is_the_printed_form(world: tuple[Store, str], tmp_path: Path) -> None:
    store, url = world
    teacher = "Күншуақ=Айгүл Серікова"
    pdf = tabel_cli(url, tmp_path / "t.pdf", "pdf", "--teacher", teacher, "--organisation", "№ 42 «Балапан»")
    pages, size = pdf_pages(pdf)
    assert size.startswith("841.89 x 595.2")  # A4, landscape
    # one page set per group: every page's footer names one group, its pages consecutive and numbered
    footers = []
    for page in range(1, pages + 1):
        text = pdf_text(pdf, page)
        found = re.findall(r"(\S+) · декабрь 2025 г\. · стр\. (\d+)", text)
        assert len(found) == 1, text
        footers.append((found[0][0], int(found[0][1])))
        assert "Фамилия, имя ребёнка" in text and "Дни месяца" in text  # the header on every page
    groups = [g for g, n in footers if n == 1]
    assert groups == ["Балапан", "Күншуақ", "Солнышко"]  # alphabet order, each starting a page set
    assert [n for g, n in footers if g == "Балапан"] == [1, 2]
    assert len(footers) == len(set(footers))
    text = pdf_text(pdf)
    for needed in ("ТАБЕЛЬ учёта посещаемости детей", "№ 42 «Балапан»", "Айгүл Серікова", "декабрь 2025 г.",
                   "Б болезнь ребёнка", "К карантин", "12 345,67"):  # fmt: skip
        assert needed in text
    for signature in ("Воспитатель", "Заведующий", "Отдел образования района"):
        assert len(re.findall(rf"^\s*{signature}\s+_+ \(подпись\)", text, re.M)) == 3  # one per group
    assert not re.search(r"tiyn|E\+|\bchild\b|payable|amount|absent", text)
    table = csv_rows(store)
    for child, name, _ in CHILDREN:
        given, family = name.split()
        assert name not in text
        line = next(line for line in text.splitlines() if f"{family} {given}" in line)
        mine = [r for r in table if r["child"] == child]
        amount = form.tenge(sum(r["payable"] == "1" for r in mine) * RATE)
        assert line.split()[-9:] == [*map(str, expected_numbers(mine, REASON_COLUMNS)), *amount.split()]
    for group in ("Күншуақ", "Солнышко"):
        mine = [r for r in table if r["group"] == group]
        amount = form.tenge(sum(r["payable"] == "1" for r in mine) * RATE)
        line = next(line for line in text.splitlines() if "Итого присутствовало" in line and amount in line)
        assert line.split()[-9:-2] == [str(n) for n in expected_numbers(mine, REASON_COLUMNS)]
    assert "98 765,36" in text  # Әбенов: 8 payable days of 12 345,67 tenge, thousands separated


def test_pdf_in_kazakh(world: tuple[Store, str], tmp_path: Path) -> None:
    _, url = world
    text = pdf_text(tabel_cli(url, tmp_path / "t.pdf", "pdf", "--lang", "kk"))
    kk = ["Балалардың келуін есепке алу ТАБЕЛІ", "2025 ж. желтоқсан", "Баланың тегі, аты", "Тәрбиеші",
          "Меңгеруші", "Аудандық білім бөлімі", "А баланың ауруы", "Қасымова Аружан"]  # fmt: skip
    for needed in kk:
        assert needed in text
    assert "ТАБЕЛЬ учёта" not in text and "подпись" not in text


MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def xlsx_parts(data: bytes) -> tuple[ElementTree.Element, list[ElementTree.Element], list[str], str]:
    """The workbook, its sheets, the shared strings and styles.xml."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        book = ElementTree.fromstring(z.read("xl/workbook.xml"))
        names = sorted((n for n in z.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)),
                       key=lambda n: int(re.findall(r"\d+", n)[0]))  # fmt: skip
        sheets = [ElementTree.fromstring(z.read(n)) for n in names]
        shared = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
        styles = z.read("xl/styles.xml").decode()
    return book, sheets, ["".join(si.itertext()) for si in shared.iter(f"{MAIN}si")], styles


def sheet_rows(sheet: ElementTree.Element, strings: list[str]) -> list[list[str | float]]:
    rows = []
    for row in sheet.iter(f"{MAIN}row"):
        cells: list[str | float] = []
        for c in row.iter(f"{MAIN}c"):
            v = c.find(f"{MAIN}v")
            if v is not None:
                cells.append(strings[int(v.text or 0)] if c.get("t") == "s" else float(v.text or 0))
        rows.append(cells)
    return rows


def test_xlsx_is_the_form_set_up_for_printing(world: tuple[Store, str], tmp_path: Path) -> None:
    store, url = world
    data = tabel_cli(url, tmp_path / "t.xlsx", "xlsx").read_bytes()
    assert data == export.to_xlsx(status.build(store, K, MONTH))  # the console's download, the same bytes
    book, sheets, strings, styles = xlsx_parts(data)
    assert [s.get("name") for s in book.iter(f"{MAIN}sheet")] == ["Балапан", "Күншуақ", "Солнышко"]
    defined = {(d.get("name"), d.get("localSheetId")): d.text or "" for d in book.iter(f"{MAIN}definedName")}
    for i, sheet in enumerate(sheets):
        assert re.fullmatch(r"'?[^!]+'?!\$A\$1:\$[A-Z]+\$\d+", defined["_xlnm.Print_Area", str(i)])
        assert defined["_xlnm.Print_Titles", str(i)].endswith("!$7:$8")  # the two header rows repeat
        setup = sheet.find(f"{MAIN}pageSetup")
        assert setup is not None
        assert (setup.get("orientation"), setup.get("paperSize")) == ("landscape", "9")
        assert (setup.get("fitToWidth"), setup.get("fitToHeight")) == (None, "0")  # 1 (the default) wide
        fit = sheet.find(f"{MAIN}sheetPr/{MAIN}pageSetUpPr")
        assert fit is not None and fit.get("fitToPage") == "1"
        assert sheet.findall(f".//{MAIN}f") == []
    assert 'formatCode="#,##0.00"' in styles
    english = [s for s in strings if re.search(r"[A-Za-z]{3,}", s)]
    assert english == []  # no English header; the kindergarten's id K20 is the only Latin text
    ru = ["ТАБЕЛЬ учёта посещаемости детей", "Фамилия, имя ребёнка", "Дни месяца", "Сумма, тг",
          "Пропущено дней", "Заведующий", "Отдел образования района", "Қасымова Аружан", "Б"]  # fmt: skip
    for needed in ru:
        assert needed in strings
    table = csv_rows(store)
    rows = {}
    names = [str(s.get("name")) for s in book.iter(f"{MAIN}sheet")]
    for name, sheet in zip(names, sheets, strict=True):
        rows[name] = sheet_rows(sheet, strings)
        mine = [r for r in table if r["group"] == name]
        payable = sum(r["payable"] == "1" for r in mine)
        reasons = REASON_COLUMNS
        total = next(r for r in rows[name] if r and r[0] == "Итого присутствовало")
        assert total[-8:] == [*map(float, expected_numbers(mine, reasons)), payable * RATE / 100]
    numbered = [
        r[:2] for r in rows["Күншуақ"] if len(r) > 1 and isinstance(r[0], float) and isinstance(r[1], str)
    ]
    assert [n for n, _ in numbered] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [name for _, name in numbered] == KUNSHUAQ_IN_ORDER


# -- Kazakhstan's holidays and future days ------------------------------------------------------------------
def row(t: status.Tabel, child: str, day: dt.date) -> status.Row:
    return next(r for r in t.rows if r.child == child and r.date == day)


def test_national_holidays_with_transfers_and_the_kindergartens_own_days(world: tuple[Store, str]) -> None:
    store, _ = world
    independence = dt.date(2025, 12, 16)
    kinds = calendar.day_kinds(store, K, calendar.month_days(MONTH))
    assert (kinds[independence], kinds[dt.date(2025, 12, 15)]) == ("holiday", "working")
    r = row(status.build(store, K, MONTH), "c-01", independence)
    assert (r.status, r.payable) == ("closed", 0)  # a holiday, not an absence
    january = calendar.day_kinds(store, K, calendar.month_days("2025-01"))
    assert january[dt.date(2025, 1, 3)] == "holiday"  # Friday: the day off moved from Sunday the 5th
    assert january[dt.date(2025, 1, 5)] == "working"  # that Sunday is worked
    assert (january[dt.date(2025, 1, 4)], january[dt.date(2025, 1, 6)]) == ("closed", "working")
    assert january[dt.date(2025, 1, 7)] == "holiday"  # Orthodox Christmas
    # the kindergarten's own calendar wins: open on the holiday, closed for repairs the day before
    calendar.set_days(store, K, [(independence, "working", "open"), (dt.date(2025, 12, 15), "closed", "")])
    t = status.build(store, K, MONTH)
    assert (row(t, "c-01", independence).status, row(t, "c-01", dt.date(2025, 12, 15)).status) == (
        "absent",
        "closed",
    )


def test_future_days_are_blank_not_absent(world: tuple[Store, str], tmp_path: Path) -> None:
    store, _ = world
    friday = dt.date(2025, 12, 12)
    t = status.build(store, K, MONTH, now_ms=int(local(friday, "12:00").timestamp() * 1000))
    assert row(t, "c-01", friday).status == "present"
    after = [r for r in t.rows if r.child == "c-01" and r.date > friday]
    assert {r.date.day: r.status for r in after if r.status != "future"} == {
        13: "closed",
        14: "closed",
        16: "closed",
        20: "closed",
        21: "closed",
        27: "closed",
        28: "closed",
    }  # weekends and the holiday are known ahead; the rest is still to come
    assert all(r.payable == 0 and r.absence_reason == "" for r in after)
    table = list(csv.DictReader(io.StringIO(export.to_csv(t).decode(), newline="")))
    assert {r["status"] for r in table if r["date"] > "2025-12-12"} == {"future", "closed"}
    (kunshuaq,) = [g for g in form._groups(t, "ru") if g.name == "Күншуақ"]
    first = kunshuaq.children[0]  # Ахметов Өмір, never absent before the 12th
    assert first.name == "Ахметов Өмір"
    assert [first.marks[d - 1] for d in (12, 15, 16, 31)] == ["+", "", "в", ""]
    assert sum(first.missed.values()) == 0
    assert kunshuaq.per_day("absent")[14:] == [0] * 17
    pdf = tmp_path / "t.pdf"
    pdf.write_bytes(form.to_pdf(t))
    line = next(line for line in pdf_text(pdf).splitlines() if "Ахметов Өмір" in line)
    assert "н" not in line.split()  # no day of his is an absence


# -- the Kazakh alphabet ------------------------------------------------------------------------------------
def test_names_sort_in_the_kazakh_alphabet() -> None:
    names = ["Ұлан", "Яна", "Қасым", "Әсел", "Өмір", "Кимов", "Аружан", "Ким", "Ілияс", "Ырыс", "ғалым",
             "Шахан", "Ерлан", "Ёлка", "Үміт", "Һарон", "Ңа", "Zoe"]  # fmt: skip
    assert sorted(names, key=form.alphabet_key) == [
        "Аружан", "Әсел", "ғалым", "Ерлан", "Ёлка", "Ким", "Кимов", "Қасым", "Ңа", "Өмір", "Ұлан", "Үміт",
        "Һарон", "Шахан", "Ырыс", "Ілияс", "Яна", "Zoe",
    ]  # fmt: skip
    assert sorted(["Юрий", "Ярослав", "Эмма", "Борис", "Ёж", "Анна"], key=form.alphabet_key) == [
        "Анна",
        "Борис",
        "Ёж",
        "Эмма",
        "Юрий",
        "Ярослав",
    ]  # fmt: skip  (Russian: the subset, the same order)


def test_surname_first() -> None:
    assert form.surname_first("Аружан Қасымова") == "Қасымова Аружан"
    assert form.surname_first("Анна-Мария Петрова-Водкина") == "Петрова-Водкина Анна-Мария"
    assert form.surname_first("Нұрлан Ерлан Әбенов") == "Әбенов Нұрлан Ерлан"
    for kept in ("Ким", "=1+1 Ким", "Бала 1", "-2+3", "Аружан  "):
        assert form.surname_first(kept) == kept


def test_console_tabel_page_lists_children_by_surname(world: tuple[Store, str]) -> None:
    store, _ = world
    page = views.tabel(store, K, MONTH)
    assert [c["name"] for c in page.children if c["group"] == "Күншуақ"] == KUNSHUAQ_IN_ORDER
    assert list(dict.fromkeys(c["group"] for c in page.children)) == ["Балапан", "Күншуақ", "Солнышко"]


def test_bad_teacher_option_is_one_line_and_writes_nothing(
    world: tuple[Store, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = world
    out = tmp_path / "t.pdf"
    argv = ["register", "tabel", "--db", url, "--kindergarten", K, "--month", MONTH, "--format", "pdf"]
    assert main([*argv, "--teacher", "Күншуақ", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == "kgate: error: --teacher 'Күншуақ': expected GROUP=NAME\n"
    assert not out.exists() and list(tmp_path.glob(".t.pdf*")) == []
