"""The табель as the official printed form: an XLSX sheet and a PDF page set per group, in Kazakh or Russian.

Per group: the title, the organisation (the kindergarten), the group, the month and the teacher; the
children by surname (surname first, in the Kazakh alphabet's order, :func:`alphabet_key`); one column
per day with the form's marks; days missed by reason, attended, payable and the amount in tenge per child;
children absent and present per day; the legend; signature lines for the teacher, the head and the
district. Landscape A4, one group per sheet (XLSX) or per page set (PDF), the table header repeated on
every page. See docs/tabel.md.

No cell holds a formula, whatever a name says: text goes through ``write_string`` (with Excel's quote
prefix where it begins with a formula character), numbers through ``write_number``, merged ranges are
made blank and then written with ``write_string``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from register.csvfile import starts_formula
from register.tabel.calendar import REASONS
from register.tabel.status import Row, Tabel

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet

LANGS: Final = ("ru", "kk")
DEFAULT_LANG: Final = "ru"

#: The Kazakh alphabet (Cyrillic, 42 letters); Russian's 33 letters are a subset in the same order.
ALPHABET: Final = "АӘБВГҒДЕЁЖЗИЙКҚЛМНҢОӨПРСТУҰҮФХҺЦЧШЩЪЫІЬЭЮЯ"
_RANK: Final = {c: i for i, c in enumerate(ALPHABET)}
_NAME_WORD: Final = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*")

#: Marks of a day cell (the табель's own: docs/tabel.md); an absence with a reason gets the reason's letter.
MARKS: Final = {"present": "+", "held": "+?", "absent": "н", "closed": "в", "not_enrolled": "-", "future": ""}

_TEXT: Final[dict[str, dict[str, str]]] = {
    "ru": {
        "title": "ТАБЕЛЬ учёта посещаемости детей",
        "org": "Организация образования",
        "group": "Группа",
        "month": "Месяц",
        "teacher": "Воспитатель",
        "rate": "Плата за день, тг",
        "no": "№",
        "child": "Фамилия, имя ребёнка",
        "days": "Дни месяца",
        "missed": "Пропущено дней",
        "missed_total": "всего",
        "attended": "Посещено дней",
        "payable": "Дней к оплате",
        "amount": "Сумма, тг",
        "absent_day": "Отсутствовало",
        "present_day": "Итого присутствовало",
        "legend": "Обозначения: + присутствовал; +? присутствовал, оплата задержана до проверки; "
        "н отсутствовал, причина не указана; в выходной или праздничный день; - не зачислен; "
        "пустая клетка: день ещё не наступил",
        "sign_teacher": "Воспитатель",
        "sign_head": "Заведующий",
        "sign_district": "Отдел образования района",
        "sign_line": "____________________ (подпись)   ______________________________ (Ф. И. О.)",
        "date_line": "Дата «____» ______________ 20____ г.",
        "page": "стр.",
        "no_group": "(без группы)",
        "month_fmt": "{name} {year} г.",
    },
    "kk": {
        "title": "Балалардың келуін есепке алу ТАБЕЛІ",
        "org": "Білім беру ұйымы",
        "group": "Топ",
        "month": "Ай",
        "teacher": "Тәрбиеші",
        "rate": "Бір күннің ақысы, тг",
        "no": "№",
        "child": "Баланың тегі, аты",
        "days": "Айдың күндері",
        "missed": "Келмеген күндер",
        "missed_total": "барлығы",
        "attended": "Келген күндер",
        "payable": "Төленетін күндер",
        "amount": "Сомасы, тг",
        "absent_day": "Келмегендер",
        "present_day": "Барлығы келгендер",
        "legend": "Белгілер: + келді; +? келді, төлем тексерілгенше ұсталды; "
        "н келмеді, себебі көрсетілмеген; в демалыс немесе мереке күні; - тізімде жоқ; "
        "бос тор: күн әлі келмеген",
        "sign_teacher": "Тәрбиеші",
        "sign_head": "Меңгеруші",
        "sign_district": "Аудандық білім бөлімі",
        "sign_line": "____________________ (қолы)   ______________________________ (Т. А. Ә.)",
        "date_line": "Күні «____» ______________ 20____ ж.",
        "page": "бет",
        "no_group": "(топсыз)",
        "month_fmt": "{year} ж. {name}",
    },
}

_MONTHS: Final = {
    "ru": (
        "январь", "февраль", "март", "апрель", "май", "июнь",
        "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
    ),
    "kk": (
        "қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым",
        "шілде", "тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан",
    ),
}  # fmt: skip

#: Per language, each absence reason's letter on the form and its meaning in the legend.
REASON_MARKS: Final[dict[str, dict[str, tuple[str, str]]]] = {
    "ru": {
        "child_ill": ("Б", "болезнь ребёнка"),
        "parent_ill": ("БР", "болезнь родителя"),
        "quarantine": ("К", "карантин"),
        "repairs": ("Р", "ремонт детского сада"),
        "sanatorium": ("С", "санаторное лечение"),
        "parents_leave": ("О", "отпуск родителей"),
        "summer": ("Л", "летний период"),
        "family": ("СО", "семейные обстоятельства"),
        "no_reason": ("НП", "без уважительной причины"),
    },
    "kk": {
        "child_ill": ("А", "баланың ауруы"),
        "parent_ill": ("АА", "ата-ананың ауруы"),
        "quarantine": ("К", "карантин"),
        "repairs": ("Жн", "балабақшаны жөндеу"),
        "sanatorium": ("С", "санаторийлік емделу"),
        "parents_leave": ("Д", "ата-ананың демалысы"),
        "summer": ("Жз", "жазғы кезең"),
        "family": ("ОЖ", "отбасылық жағдайлар"),
        "no_reason": ("СЖ", "дәлелсіз себеп"),
    },
}
_UNEXPLAINED: Final = ""  # the reason key of an absence with no reason recorded (its column is "н")
_FIXED_TIME: Final = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def alphabet_key(text: str) -> tuple[tuple[int, int], ...]:
    """A case-insensitive sort key in the Kazakh alphabet's order (Russian's letters keep their order).

    Python compares code points, which puts Ә, Ғ, Қ, Ң, Ө, Ұ, Ү, Һ, І after Я; here each Cyrillic letter
    ranks by its place in :data:`ALPHABET` (Ё after Е, as in both alphabets; Russian dictionaries treat
    Ё as Е, a difference this key does not make). A space or hyphen sorts before any letter (``Ким`` before
    ``Кимов``), other characters (Latin letters, digits) after the Cyrillic ones by code point. Not full
    collation (no accents or contractions): PyICU, which has it, has no aarch64 wheels.
    """
    out = []
    for ch in text.strip().upper():
        rank = _RANK.get(ch)
        if rank is not None:
            out.append((1, rank))
        elif ch in " -‐'’":
            out.append((0, 0))
        else:
            out.append((2, ord(ch)))
    return tuple(out)


def surname_first(name: str) -> str:
    """``Аружан Сапарова`` → ``Сапарова Аружан``: the roster's name is given name(s) then the surname.

    Only a name made of words of letters (hyphens and apostrophes inside) is turned round; anything else
    (one word, digits, punctuation, a formula) is printed as the roster has it.
    """
    words = name.split()
    if len(words) < 2 or not all(_NAME_WORD.fullmatch(w) for w in words):
        return name
    return " ".join([words[-1], *words[:-1]])


def tenge(tiyn: int) -> str:
    """``11000000`` tiyn → ``110 000,00``: tenge with a space between thousands and a decimal comma."""
    sign = "-" if tiyn < 0 else ""
    whole, frac = divmod(abs(tiyn), 100)
    return sign + f"{whole:,}".replace(",", " ") + f",{frac:02d}"


def month_title(month: str, lang: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return _TEXT[lang]["month_fmt"].format(name=_MONTHS[lang][mon - 1], year=year)


@dataclass
class _Child:
    id: str
    name: str
    marks: list[str]
    statuses: list[str]
    attended: int = 0
    payable: int = 0
    missed: Counter[str] = field(default_factory=Counter)


@dataclass
class _Group:
    name: str
    days: list[dt.date]
    closed: set[dt.date]
    children: list[_Child]
    reasons: list[str]  # the reason columns: codes in REASONS order, then "" (unexplained, "н")
    rate_tiyn: int

    def per_day(self, status: str) -> list[int]:
        return [sum(c.statuses[i] == status for c in self.children) for i in range(len(self.days))]

    @property
    def attended(self) -> int:
        return sum(c.attended for c in self.children)

    @property
    def payable(self) -> int:
        return sum(c.payable for c in self.children)


def _mark(r: Row, lang: str) -> str:
    if r.status == "present":
        return MARKS["present"] if r.payable else MARKS["held"]
    if r.status == "absent" and r.absence_reason in REASON_MARKS[lang]:
        return REASON_MARKS[lang][r.absence_reason][0]
    return MARKS.get(r.status, "")


def _groups(t: Tabel, lang: str) -> list[_Group]:
    """The table of each group, groups in alphabet order, children by surname."""
    by_group: dict[str, dict[str, list[Row]]] = defaultdict(lambda: defaultdict(list))
    for r in t.rows:
        by_group[r.group][r.child].append(r)
    used = {r.absence_reason for r in t.rows if r.status == "absent" and r.absence_reason in REASONS}
    reasons = [*[code for code in REASONS if code in used], _UNEXPLAINED]
    groups = []
    for group in sorted(by_group, key=lambda g: (alphabet_key(g), g)):
        children = by_group[group]
        days = sorted({r.date for rows in children.values() for r in rows})
        closed = {
            d
            for d in days
            if all(r.status == "closed" for rows in children.values() for r in rows if r.date == d)
        }
        table = []
        for child, rows in children.items():
            on = {r.date: r for r in rows}
            name = surname_first(next((r.name for r in rows if r.name), "")) or child  # unknown: its id
            marks = [_mark(on[d], lang) if d in on else "" for d in days]
            kid = _Child(child, name, marks, [on[d].status if d in on else "" for d in days])
            for r in rows:
                kid.attended += r.status == "present"
                kid.payable += r.payable
                if r.status == "absent":
                    kid.missed[r.absence_reason if r.absence_reason in REASONS else _UNEXPLAINED] += 1
            table.append(kid)
        table.sort(key=lambda c: (alphabet_key(c.name), c.name, c.id))
        groups.append(_Group(group, days, closed, table, reasons, t.rate_tiyn))
    return groups


def _head(
    t: Tabel, g: _Group, lang: str, organisation: str | None, teachers: Mapping[str, str] | None
) -> list[tuple[str, str]]:
    """The form's head: organisation, group, month, teacher (a line to write on when not given)."""
    text = _TEXT[lang]
    return [
        (text["org"], organisation or t.kindergarten),
        (text["group"], g.name or text["no_group"]),
        (text["month"], month_title(t.month, lang)),
        (text["teacher"], (teachers or {}).get(g.name, "") or "_" * 36),
    ]


def _reason_head(code: str, lang: str) -> str:
    return REASON_MARKS[lang][code][0] if code else MARKS["absent"]


def _legend(g: _Group, lang: str) -> str:
    text = _TEXT[lang]["legend"]
    named = [f"{REASON_MARKS[lang][c][0]} {REASON_MARKS[lang][c][1]}" for c in REASON_MARKS[lang]]
    return f"{text}; " + "; ".join(named) + "."


def _child_numbers(g: _Group, c: _Child) -> list[int]:
    """Per child, after the days: missed by reason, missed in all, attended, payable days."""
    missed = [c.missed[code] for code in g.reasons]
    return [*missed, sum(c.missed.values()), c.attended, c.payable]


def _total_numbers(g: _Group) -> list[int]:
    missed = [sum(c.missed[code] for c in g.children) for code in g.reasons]
    return [*missed, sum(missed), g.attended, g.payable]


# -- XLSX ---------------------------------------------------------------------------------------------------


class _Looks:
    """The workbook's cell formats, one per set of properties (a quote-prefixed look is one more set)."""

    def __init__(self, book: Workbook) -> None:
        self._book = book
        self._cache: dict[tuple[tuple[str, Any], ...], Format] = {}

    def get(self, **props: Any) -> Format:
        key = tuple(sorted(props.items()))
        if key not in self._cache:
            self._cache[key] = self._book.add_format(dict(props))
        return self._cache[key]


def _text(sheet: Worksheet, looks: _Looks, row: int, col: int, text: str, **props: Any) -> None:
    if text == "":
        sheet.write_blank(row, col, None, looks.get(**props))
        return
    if starts_formula(text):
        props = {**props, "quote_prefix": True}
    sheet.write_string(row, col, text, looks.get(**props))


def _merged(
    sheet: Worksheet, looks: _Looks, rows: tuple[int, int], cols: tuple[int, int], text: str, **props: Any
) -> None:
    """A merged range holding ``text`` as a string (made blank first, then written with write_string)."""
    if starts_formula(text):
        props = {**props, "quote_prefix": True}
    if rows[0] != rows[1] or cols[0] != cols[1]:
        sheet.merge_range(rows[0], cols[0], rows[1], cols[1], "", looks.get(**props))
    _text(sheet, looks, rows[0], cols[0], text, **props)


def to_xlsx(
    t: Tabel,
    lang: str = DEFAULT_LANG,
    *,
    organisation: str | None = None,
    teachers: Mapping[str, str] | None = None,
) -> bytes:
    """The workbook: one sheet per group laid out as the paper form, set up to print on landscape A4."""
    import xlsxwriter  # noqa: PLC0415 - only the XLSX export needs it

    text = _TEXT[lang]
    out = io.BytesIO()
    # Nothing is guessed from a string's look (formulas, URLs, numbers); each cell says what it is.
    options = {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    book = xlsxwriter.Workbook(out, options)
    book.set_properties({"created": _FIXED_TIME.replace(tzinfo=None), "title": f"{text['title']} {t.month}"})
    looks = _Looks(book)
    box = {"border": 1, "valign": "vcenter", "font_size": 8}
    head = {**box, "bold": True, "align": "center", "text_wrap": True}
    used: set[str] = set()
    for g in _groups(t, lang):
        sheet = book.add_worksheet(_sheet_name(g.name or text["no_group"], used))
        n = len(g.days)
        first_num = 2 + n  # the first column after the days
        last = first_num + len(g.reasons) + 3  # missed by reason, missed total, attended, payable, amount
        _merged(sheet, looks, (0, 0), (0, last), text["title"], bold=True, font_size=14, align="center")
        for i, (label, value) in enumerate(_head(t, g, lang, organisation, teachers), start=1):
            _text(sheet, looks, i, 1, label, bold=True)
            _merged(sheet, looks, (i, i), (2, min(2 + 20, last)), value)
        _text(sheet, looks, 5, 1, text["rate"], bold=True)
        sheet.write_number(5, 2, t.rate_tiyn / 100, looks.get(num_format="#,##0.00", align="left"))
        top = 6  # the two header rows, repeated on every printed page
        _merged(sheet, looks, (top, top + 1), (0, 0), text["no"], **head)
        _merged(sheet, looks, (top, top + 1), (1, 1), text["child"], **head)
        _merged(sheet, looks, (top, top), (2, 1 + n), text["days"], **head)
        for i, day in enumerate(g.days):
            shade = {"bg_color": "#D9D9D9"} if day in g.closed else {}
            sheet.write_number(top + 1, 2 + i, day.day, looks.get(**head, **shade))
        _merged(sheet, looks, (top, top), (first_num, first_num + len(g.reasons)), text["missed"], **head)
        for i, code in enumerate(g.reasons):
            _text(sheet, looks, top + 1, first_num + i, _reason_head(code, lang), **head)
        _text(sheet, looks, top + 1, first_num + len(g.reasons), text["missed_total"], **head)
        for col, key in zip(range(last - 2, last + 1), ("attended", "payable", "amount"), strict=True):
            _merged(sheet, looks, (top, top + 1), (col, col), text[key], **head)
        row = top + 2
        money = looks.get(**box, num_format="#,##0.00")
        count = looks.get(**box, align="center")
        for no, c in enumerate(g.children, start=1):
            sheet.write_number(row, 0, no, count)
            _text(sheet, looks, row, 1, c.name, **box)
            for i, mark in enumerate(c.marks):
                shade = {"bg_color": "#D9D9D9"} if g.days[i] in g.closed else {}
                _text(sheet, looks, row, 2 + i, mark, **box, align="center", **shade)
            for i, number in enumerate(_child_numbers(g, c)):
                sheet.write_number(row, first_num + i, number, count)
            sheet.write_number(row, last, c.payable * t.rate_tiyn / 100, money)
            row += 1
        bold_count = looks.get(**box, align="center", bold=True)
        for label, values in (
            (text["absent_day"], g.per_day("absent")),
            (text["present_day"], g.per_day("present")),
        ):
            _text(sheet, looks, row, 0, "", **box)
            _text(sheet, looks, row, 1, label, **box, bold=True)
            for i, v in enumerate(values):
                sheet.write_number(row, 2 + i, v, bold_count)
            row += 1
        for i, number in enumerate(_total_numbers(g)):  # on the last row: the group's totals
            sheet.write_number(row - 1, first_num + i, number, bold_count)
        sheet.write_number(
            row - 1, last, g.payable * t.rate_tiyn / 100, looks.get(**box, bold=True, num_format="#,##0.00")
        )
        for col in range(first_num, last + 1):
            _text(sheet, looks, row - 2, col, "", **box)
        row += 1
        _merged(
            sheet,
            looks,
            (row, row + 1),
            (0, last),
            _legend(g, lang),
            font_size=8,
            text_wrap=True,
            valign="top",
        )
        row += 3
        for key in ("sign_teacher", "sign_head", "sign_district"):
            _text(sheet, looks, row, 1, text[key], bold=True)
            _merged(sheet, looks, (row, row), (2, min(2 + 24, last)), text["sign_line"])
            row += 2
        _merged(sheet, looks, (row, row), (1, min(2 + 12, last)), text["date_line"])
        sheet.set_column(0, 0, 4)
        sheet.set_column(1, 1, 30)
        sheet.set_column(2, 1 + n, 3.3)
        sheet.set_column(first_num, last - 1, 5.5)
        sheet.set_column(last, last, 14)
        sheet.set_row(top + 1, 24)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
        sheet.center_horizontally()
        sheet.repeat_rows(top, top + 1)
        sheet.print_area(0, 0, row, last)
        sheet.fit_to_pages(1, 0)  # one page wide, as many pages tall as the group needs
        sheet.set_footer(f"&C{text['page']} &P / &N")
    book.close()
    return out.getvalue()


def _sheet_name(group: str, used: set[str]) -> str:
    """Excel's sheet name rules: ≤ 31 characters, none of ``[]:*?/\\``, unique (case-insensitive)."""
    base = "".join("_" if c in "[]:*?/\\" else c for c in group)[:31] or "_"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


# -- PDF ----------------------------------------------------------------------------------------------------

_PAGE_W, _PAGE_H, _MARGIN = 297.0, 210.0, 8.0
_ROW_H = 4.6
_FOOT = 6.0  # the footer's band at the bottom


class _Pdf:
    """fpdf2 drawing helpers: boxes with text fitted to them (smaller type, then wrapped, then cut)."""

    def __init__(self, pdf: Any) -> None:
        self.pdf = pdf

    def box(
        self, x: float, y: float, w: float, h: float, text: str, *, size: float = 6.5, bold: bool = False,
        align: str = "C", fill: bool = False, border: bool = True,
    ) -> None:  # fmt: skip
        pdf = self.pdf
        if border or fill:
            pdf.rect(x, y, w, h, ("DF" if border else "F") if fill else "D")
        if not text:
            return
        lines = [text]
        while True:
            pdf.set_font("DejaVu", "B" if bold else "", size)
            lines = self._wrap(text, w - 0.8)
            height = len(lines) * size * 0.3528 * 1.12
            wide = max(pdf.get_string_width(line) for line in lines)
            if (height <= h - 0.3 and wide <= w - 0.8) or size <= 4.2:
                break
            size -= 0.3
        lh = min(h, size * 0.3528 * 1.12)
        lines = lines[: max(1, int(h // lh))]
        top = y + (h - lh * len(lines)) / 2
        for i, line in enumerate(lines):
            fitted = line
            while pdf.get_string_width(fitted) > w - 0.8 and len(fitted) > 1:
                fitted = fitted[:-2] + "…"
            pdf.set_xy(x + 0.4, top + i * lh)
            pdf.cell(w - 0.8, lh, fitted, align=align)

    def _wrap(self, text: str, width: float) -> list[str]:
        lines: list[str] = []
        for word in text.split(" "):
            if lines and self.pdf.get_string_width(f"{lines[-1]} {word}") <= width:
                lines[-1] = f"{lines[-1]} {word}"
            else:
                lines.append(word)
        return lines


class _GroupPages:
    """One group's page set: the columns' places and the pages drawn so far."""

    NUM_W, NAME_W, COUNT_W, TOTAL_W, AMOUNT_W = 6.0, 46.0, 6.0, 10.0, 19.0

    def __init__(self, draw: _Pdf, t: Tabel, g: _Group, lang: str, head: list[tuple[str, str]]) -> None:
        self.draw, self.t, self.g, self.lang, self.head = draw, t, g, lang, head
        self.text = _TEXT[lang]
        self.group = g.name or self.text["no_group"]
        self.month = month_title(t.month, lang)
        self.width = _PAGE_W - 2 * _MARGIN
        n, k = len(g.days), len(g.reasons)
        fixed = self.NUM_W + self.NAME_W + k * self.COUNT_W + 3 * self.TOTAL_W + self.AMOUNT_W
        self.day_w = min(6.0, (self.width - fixed) / max(n, 1))
        self.name_x = _MARGIN + self.NUM_W
        self.day_x = self.name_x + self.NAME_W
        x = self.day_x + n * self.day_w
        # missed by reason, missed in all, attended, payable
        self.cols = [(x + i * self.COUNT_W, self.COUNT_W) for i in range(k)]
        x += k * self.COUNT_W
        self.cols += [(x + i * self.TOTAL_W, self.TOTAL_W) for i in range(3)]
        self.amount_x = x + 3 * self.TOTAL_W
        self.pages = 0

    def new_page(self, footer: list[str]) -> float:
        """A page with the title block (the group's first) or a caption, and the table's header."""
        draw, text, pdf = self.draw, self.text, self.draw.pdf
        self.pages += 1
        pdf.add_page()  # draws the footer of the page before: the new page's footer text comes after
        footer[0] = f"{self.group} · {self.month} · {text['page']} {self.pages}"
        y = _MARGIN
        if self.pages == 1:
            draw.box(_MARGIN, y, self.width, 7, text["title"], size=13, bold=True, border=False)
            y += 8
            for label, value in self.head:
                draw.box(_MARGIN, y, 45, 4.6, f"{label}:", size=8, bold=True, align="L", border=False)
                draw.box(_MARGIN + 45, y, 150, 4.6, value, size=8, align="L", border=False)
                y += 4.6
            y += 2
        else:
            caption = f"{text['group']}: {self.group} · {self.month}"
            draw.box(_MARGIN, y, self.width, 5, caption, size=8, align="L", border=False)
            y += 6
        h1, h2 = 5.0, 7.0
        pdf.set_fill_color(217, 217, 217)
        draw.box(_MARGIN, y, self.NUM_W, h1 + h2, text["no"], bold=True)
        draw.box(self.name_x, y, self.NAME_W, h1 + h2, text["child"], bold=True)
        g = self.g
        draw.box(self.day_x, y, len(g.days) * self.day_w, h1, text["days"], bold=True)
        for i, day in enumerate(g.days):
            x = self.day_x + i * self.day_w
            draw.box(x, y + h1, self.day_w, h2, str(day.day), size=6, fill=day in g.closed)
        k = len(g.reasons)
        draw.box(self.cols[0][0], y, k * self.COUNT_W + self.TOTAL_W, h1, text["missed"], bold=True, size=6)
        heads = [_reason_head(code, self.lang) for code in g.reasons] + [text["missed_total"]]
        for (cx, cw), head in zip(self.cols, heads, strict=False):
            draw.box(cx, y + h1, cw, h2, head, size=6, bold=True)
        for (cx, cw), key in zip(self.cols[k + 1 :], ("attended", "payable"), strict=True):
            draw.box(cx, y, cw, h1 + h2, text[key], size=5.5, bold=True)
        draw.box(self.amount_x, y, self.AMOUNT_W, h1 + h2, text["amount"], size=6, bold=True)
        return y + h1 + h2

    def numbers(self, y: float, values: list[int], amount_tiyn: int, *, bold: bool = False) -> None:
        for (cx, cw), v in zip(self.cols, values, strict=True):
            self.draw.box(cx, y, cw, _ROW_H, str(v), size=6.5, bold=bold)
        self.draw.box(
            self.amount_x, y, self.AMOUNT_W, _ROW_H, tenge(amount_tiyn), size=6.5, bold=bold, align="R"
        )

    def render(self, footer: list[str]) -> None:
        draw, g, text, rate = self.draw, self.g, self.text, self.t.rate_tiyn
        bottom = _PAGE_H - _MARGIN - _FOOT
        y = self.new_page(footer)
        for no, c in enumerate(g.children, start=1):
            if y + _ROW_H > bottom:
                y = self.new_page(footer)
            draw.box(_MARGIN, y, self.NUM_W, _ROW_H, str(no), size=6.5)
            draw.box(self.name_x, y, self.NAME_W, _ROW_H, c.name, size=6.5, align="L")
            for i, mark in enumerate(c.marks):
                x = self.day_x + i * self.day_w
                draw.box(x, y, self.day_w, _ROW_H, mark, size=6, fill=g.days[i] in g.closed)
            self.numbers(y, _child_numbers(g, c), c.payable * rate)
            y += _ROW_H
        if y + 2 * _ROW_H > bottom:
            y = self.new_page(footer)
        per_day = ((text["absent_day"], g.per_day("absent")), (text["present_day"], g.per_day("present")))
        for label, values in per_day:
            draw.box(_MARGIN, y, self.NUM_W, _ROW_H, "")
            draw.box(self.name_x, y, self.NAME_W, _ROW_H, label, size=6.5, bold=True, align="L")
            for i, v in enumerate(values):
                draw.box(self.day_x + i * self.day_w, y, self.day_w, _ROW_H, str(v), size=5.5, bold=True)
            y += _ROW_H
        for cx, cw in [*self.cols, (self.amount_x, self.AMOUNT_W)]:
            draw.box(cx, y - 2 * _ROW_H, cw, _ROW_H, "")
        self.numbers(y - _ROW_H, _total_numbers(g), g.payable * rate, bold=True)
        if y + 48 > bottom:  # the legend and the signatures stay together
            y = self.new_page(footer)
        pdf = draw.pdf
        pdf.set_font("DejaVu", "", 7)
        pdf.set_xy(_MARGIN, y + 3)
        pdf.multi_cell(self.width, 3.2, _legend(g, self.lang))
        y = pdf.get_y() + 5
        for key in ("sign_teacher", "sign_head", "sign_district"):
            draw.box(_MARGIN, y, 55, 5, text[key], size=8, bold=True, align="L", border=False)
            draw.box(_MARGIN + 55, y, 160, 5, text["sign_line"], size=8, align="L", border=False)
            y += 8
        draw.box(_MARGIN, y, 120, 5, text["date_line"], size=8, align="L", border=False)


def to_pdf(
    t: Tabel,
    lang: str = DEFAULT_LANG,
    *,
    organisation: str | None = None,
    teachers: Mapping[str, str] | None = None,
) -> bytes:
    """The printable табель: landscape A4, each group on its own pages, the table header on every page."""
    from fpdf import FPDF  # noqa: PLC0415 - only printing needs it

    from register.badges import _fonts  # noqa: PLC0415 - DejaVu Sans: every Kazakh and Russian letter

    text = _TEXT[lang]
    footer = [""]

    class Form(FPDF):
        def footer(self) -> None:
            self.set_xy(_MARGIN, _PAGE_H - _MARGIN - 3)
            self.set_font("DejaVu", "", 6.5)
            self.cell(_PAGE_W - 2 * _MARGIN, 3, footer[0], align="R")

    pdf = Form(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_creation_date(_FIXED_TIME)
    pdf.set_title(f"{text['title']} {t.month}")
    pdf.set_creator("kgate register tabel")
    _fonts(pdf)
    draw = _Pdf(pdf)
    for g in _groups(t, lang):
        head = [*_head(t, g, lang, organisation, teachers), (text["rate"], tenge(t.rate_tiyn))]
        _GroupPages(draw, t, g, lang, head).render(footer)
    return bytes(pdf.output())
