"""The roster CSV a kindergarten hands the register (docs/rosters.md): parsed and validated in full.

Columns (header on line 1, any order; ``kind``, ``id`` and ``name`` required):
``kind`` (child|guardian), ``id``, ``name``, ``group`` (children), ``consent_face`` (yes/no, children),
``badge`` (a serial to keep; empty = the register issues one), ``guardian_of`` (a guardian's children,
separated by ``;``). Every error names the line and the column; the caller changes nothing on error.

A name or group that begins with a character that starts a spreadsheet formula (``= + - @``, a tab)
is refused: it would be a formula in a downloaded табель. Look-alike names are warned about, not
refused (:func:`lookalikes`): a word mixing letters of two scripts, and two names that differ but are
the same after folding look-alike letters (:data:`CONFUSABLES`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

from kgate.text import unsafe_character
from register.csvfile import FORMULA_START, read_csv
from register.errors import RosterImportError
from terminal.roster import CHILD_ID, SERIAL

COLUMNS: Final = ("kind", "id", "name", "group", "consent_face", "badge", "guardian_of")
REQUIRED: Final = ("kind", "id", "name")
MAX_BYTES: Final = 4 * 1024 * 1024
MAX_ROWS: Final = 20_000
MAX_TEXT: Final = 200
_YES = {"yes", "y", "true", "1", "иә", "да"}
_NO = {"", "no", "n", "false", "0", "жоқ", "нет"}

#: Letters that look the same as a Latin letter (or, for ``ә``, the Latin schwa) in common fonts:
#: Cyrillic (Russian and Kazakh) and Greek capitals and small letters, folded before names are compared.
#: Small on purpose (not Unicode's whole confusables list): the scripts a roster here is written in.
CONFUSABLES: Final = str.maketrans(
    "АВЕКМНОРСТУХІЈЅҺԚԜҮ" "аеорсухіјѕһԁԛԝәӏ" "ΑΒΕΖΗΙΚΜΝΟΡΤΥΧον",
    "ABEKMHOPCTYXIJSHQWY" "aeopcyxijshdqwəl" "ABEZHIKMNOPTYXov",
)  # fmt: skip


@dataclass(frozen=True)
class Person:
    """One CSV row: a child (with group and consent) or a guardian (with the children they may pick up)."""

    line: int
    kind: str
    id: str
    name: str
    group: str
    consent_face: bool
    badge: str | None
    guardian_of: tuple[str, ...]


def clean_text(value: str, where: str) -> str:
    """NFC text without control, format (bidi, zero-width), private-use or unassigned characters.

    The same rule as the gate screen's (:func:`kgate.text.check_display_text`): a name the register
    accepts is one the gate will show.
    """
    text = unicodedata.normalize("NFC", value).strip()
    if text.startswith(FORMULA_START) or value.lstrip(" ").startswith(FORMULA_START):
        raise RosterImportError(f"{where}: must not begin with = + - @ or a tab (a spreadsheet formula)")
    if not text or len(text) > MAX_TEXT:
        raise RosterImportError(f"{where}: must be non-empty text of at most {MAX_TEXT} characters")
    found = unsafe_character(text)
    if found is not None:
        char = text[found[0]]
        raise RosterImportError(
            f"{where}: control or bidi/invisible character U+{ord(char):04X} is not allowed ({found[1]})"
        )
    return text


def parse_csv(raw: bytes) -> list[Person]:
    """Every row of a roster CSV, or :class:`RosterImportError` naming the first bad line and column."""
    return read_roster(raw)[0]


def read_roster(raw: bytes) -> tuple[list[Person], list[str]]:
    """:func:`parse_csv`, and the warnings about look-alike names (:func:`lookalikes`)."""
    table = read_csv(
        raw,
        what="roster CSV",
        known=COLUMNS,
        required=REQUIRED,
        max_bytes=MAX_BYTES,
        max_rows=MAX_ROWS,
        error=RosterImportError,
    )
    people = [_person(line, cells, table.columns) for line, cells in table.rows]
    if not people:
        raise RosterImportError("line 2: no children or guardians in the file")
    _check_references(people)
    return people, lookalikes(people, table.columns.index("name") + 1)


def _scripts(word: str) -> list[str]:
    """The scripts of the letters of ``word`` (``LATIN``, ``CYRILLIC``, ...: the first word of the
    letter's Unicode name), in order of appearance."""
    found: dict[str, None] = {}
    for ch in word:
        if unicodedata.category(ch).startswith("L"):
            found[unicodedata.name(ch, "?").split(" ")[0]] = None
    return list(found)


def fold(name: str) -> str:
    """``name`` with look-alike letters folded (:data:`CONFUSABLES`), NFKC, spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).translate(CONFUSABLES).split())


def lookalikes(people: list[Person], column: int) -> list[str]:
    """Warnings (one line each) about names that may pass for another: a word mixing letters of two
    scripts (``Аnna`` with a Latin ``n``), and a name that differs from one above it (same kind) but is
    the same after :func:`fold`. ``column`` is the ``name`` column's number, for the messages."""
    out = []
    seen: dict[tuple[str, str], Person] = {}
    for p in people:
        where = f"line {p.line}, column {column} (name)"
        for word in p.name.split():
            scripts = _scripts(word)
            if len(scripts) > 1:
                mixed = " and ".join(s.title() for s in scripts)
                out.append(f"{where}: {p.name!r} mixes {mixed} letters in one word (a look-alike?)")
                break
        other = seen.setdefault((p.kind, fold(p.name)), p)
        if other.name != p.name:
            out.append(
                f"{where}: {p.name!r} looks the same as {other.name!r} on line {other.line} "
                "(they differ only in look-alike letters)"
            )
    return out


def _person(line: int, cells: dict[str, str], cols: list[str]) -> Person:
    def where(col: str) -> str:
        return f"line {line}, column {cols.index(col) + 1} ({col})"

    def get(col: str) -> str:
        return cells.get(col, "").strip()

    kind = get("kind").lower()
    if kind not in ("child", "guardian"):
        raise RosterImportError(f"{where('kind')}: must be child or guardian")
    pid = get("id")
    if not CHILD_ID.fullmatch(pid) or not pid.isascii():
        raise RosterImportError(f"{where('id')}: {pid!r} must be 1-64 of A-Z a-z 0-9 . _ : - (ASCII)")
    name = clean_text(cells["name"], where("name"))
    badge = get("badge").upper() or None
    if badge is not None and not SERIAL.fullmatch(badge):
        raise RosterImportError(f"{where('badge')}: a badge serial is 16 characters of A-Z 2-7")
    consent = get("consent_face").lower()
    if consent not in _YES | _NO:
        raise RosterImportError(f"{where('consent_face')}: must be yes or no")
    if kind == "child":
        if "group" not in cols:
            raise RosterImportError(f"line {line}: a child needs the column 'group'")
        group = clean_text(cells["group"], where("group"))
        if get("guardian_of"):
            raise RosterImportError(f"{where('guardian_of')}: only guardians pick up children")
        return Person(line, kind, pid, name, group, consent in _YES, badge, ())
    for col in ("group", "consent_face"):
        if get(col):
            raise RosterImportError(f"{where(col)}: must be empty for a guardian")
    children = tuple(c.strip() for c in get("guardian_of").split(";") if c.strip())
    if not children:
        raise RosterImportError(f"line {line}, column guardian_of: a guardian picks up at least one child")
    return Person(line, kind, pid, name, "", False, badge, children)


def _check_references(people: list[Person]) -> None:
    seen: dict[tuple[str, str], int] = {}
    serials: dict[str, int] = {}
    for p in people:
        if (p.kind, p.id) in seen:
            raise RosterImportError(
                f"line {p.line}: {p.kind} id {p.id!r} already on line {seen[(p.kind, p.id)]}"
            )
        seen[(p.kind, p.id)] = p.line
        if p.badge is not None:
            if p.badge in serials:
                raise RosterImportError(f"line {p.line}: badge {p.badge} already on line {serials[p.badge]}")
            serials[p.badge] = p.line
    children = {p.id for p in people if p.kind == "child"}
    for p in people:
        for child in p.guardian_of:
            if child not in children:
                raise RosterImportError(
                    f"line {p.line}, column guardian_of: no child with id {child!r} in the file"
                )
