"""The console's words in Kazakh, Russian and English; a user's language is stored with the user."""

from __future__ import annotations

from typing import Final

_WORDS: Final[dict[str, tuple[str, str, str]]] = {
    # key: (kk, ru, en)
    "login": ("Кіру", "Войти", "Log in"),
    "logout": ("Шығу", "Выйти", "Log out"),
    "name": ("Аты", "Имя", "Name"),
    "password": ("Құпия сөз", "Пароль", "Password"),
    "parent_page": ("Ата-аналарға", "Для родителей", "For parents"),
    "kindergartens": ("Балабақшалар", "Детские сады", "Kindergartens"),
    "kindergarten": ("Балабақша", "Детский сад", "Kindergarten"),
    "devices": ("Құрылғылар", "Устройства", "Devices"),
    "children": ("Балалар", "Дети", "Children"),
    "child": ("Бала", "Ребёнок", "Child"),
    "group": ("Топ", "Группа", "Group"),
    "gate": ("Кіреберіс", "Вход", "Gate"),
    "origin": ("Журнал", "Журнал", "Log"),
    "entries": ("Жазбалар", "Записи", "Entries"),
    "last_seen": ("Соңғы байланыс", "Последняя связь", "Last seen"),
    "access_code": ("Кіру коды", "Код доступа", "Access code"),
    "open": ("Ашу", "Открыть", "Open"),
    "month": ("Ай", "Месяц", "Month"),
    "date": ("Күні", "Дата", "Date"),
    "time": ("Уақыты", "Время", "Time"),
    "event": ("Оқиға", "Событие", "Event"),
    "method": ("Тәсіл", "Способ", "Method"),
    "nothing": ("Жазба жоқ", "Записей нет", "No entries"),
    "verify_hint": (
        "kgate statement verify арқылы тексеруге болады",
        "можно проверить командой kgate statement verify",
        "check it with kgate statement verify",
    ),
    "overview": ("Шолу", "Обзор", "Overview"),
    "last_push": ("Соңғы жіберу", "Последняя отправка", "Last push"),
    "last_heartbeat": ("Соңғы сигнал", "Последний сигнал", "Last heartbeat"),
    "pending": ("Күтуде", "В очереди", "Pending"),
    "free_disk": ("Бос диск", "Свободно на диске", "Free disk"),
    "clock_synced": ("Сағат", "Часы", "Clock"),
    "roster_version": ("Тізім нұсқасы", "Версия списка", "Roster version"),
    "silent_for": ("Үнсіз", "Молчит", "Silent for"),
    "alarms": ("Дабылдар", "Тревоги", "Alarms"),
    "detail": ("Толығырақ", "Подробности", "Detail"),
    "day": ("Күн", "День", "Day"),
    "inside": ("Балабақшада", "В саду", "In"),
    "left": ("Кетті", "Ушли", "Left"),
    "absent": ("Жоқ", "Отсутствуют", "Absent"),
    "tabel": ("Табель", "Табель", "Табель"),
    "flags": ("Белгілер", "Отметки аудита", "Flags"),
    "present": ("Келді", "Присутствовал", "Present"),
    "payable": ("Төленеді", "К оплате", "Payable"),
    "total": ("Барлығы", "Итого", "Total"),
    "amount": ("Сомасы", "Сумма", "Amount"),
    "held": ("төлем тоқтатылды", "оплата задержана", "payment held"),
    "closed": ("демалыс", "выходной", "closed"),
    "not_enrolled": ("тізімде жоқ", "не в списке", "not enrolled"),
    "absence_reason": ("Болмау себебі", "Причина отсутствия", "Absence reason"),
    "save": ("Сақтау", "Сохранить", "Save"),
    "submit": ("Тапсыру", "Сдать табель", "Submit"),
    "approve": ("Бекіту", "Утвердить", "Approve"),
    "approved": ("Бекітілді", "Утверждён", "Approved"),
    "cleared": ("Алынды", "Снято", "Cleared"),
    "holds": ("төлемді ұстайды", "задерживает оплату", "holds payment"),
    "child_days": ("Бала-күндер", "Дни детей", "Child-days"),
    "checkpoint": ("бақылау нүктесі", "контрольная точка", "checkpoint"),
    "reason": ("Себебі", "Причина", "Reason"),
    "clear_flag": ("Алу", "Снять", "Clear"),
    "proof": ("Дәлел", "Доказательство", "Proof"),
    "not_there": ("Балам сол күні болған жоқ", "Моего ребёнка в этот день не было", "My child was not there"),
    "reported": (
        "Хабарланды: аудиторлар тексереді",
        "Сообщено: проверят аудиторы",
        "Reported: the auditors will check",
    ),
    "confirm_report": (
        "Балаңыз осы күні балабақшада болмағанын растайсыз ба? Аудиторлар тексереді; 24 сағат ішінде "
        "кері қайтаруға болады.",
        "Подтвердите, что ребёнка в этот день не было в саду. Проверят аудиторы; сообщение можно отозвать "
        "в течение 24 часов.",
        "Confirm that your child was not at kindergarten that day. The auditors will check; you can "
        "withdraw the report within 24 hours.",
    ),
    "comment_optional": ("Түсініктеме (міндетті емес)", "Комментарий (необязательно)", "Comment (optional)"),
    "confirm": ("Растау", "Подтвердить", "Confirm"),
    "back": ("Артқа", "Назад", "Back"),
    "withdraw_report": ("Хабарламаны кері қайтару", "Отозвать сообщение", "Withdraw the report"),
    "report_withdrawn": ("Хабарлама кері қайтарылды", "Сообщение отозвано", "Report withdrawn"),
    "present_short": ("Кел.", "Прис.", "Pres."),
    "payable_short": ("Төл.", "Опл.", "Pay."),
    "reason_child_ill": ("бала ауырды", "болезнь ребёнка", "child ill"),
    "reason_parent_ill": ("ата-ана ауырды", "болезнь родителя", "parent ill"),
    "reason_quarantine": ("карантин", "карантин", "quarantine"),
    "reason_repairs": ("жөндеу", "ремонт сада", "kindergarten repairs"),
    "reason_sanatorium": ("санаторий", "санаторное лечение", "sanatorium treatment"),
    "reason_parents_leave": ("ата-ана демалысы", "отпуск родителей", "parents' leave"),
    "reason_summer": ("жазғы кезең", "летний период", "summer period"),
    "reason_family": ("отбасылық жағдай", "семейные обстоятельства", "family circumstances"),
    "reason_no_reason": ("себепсіз", "без уважительной причины", "without valid reason"),
    "console": ("kgate басқару", "kgate консоль", "kgate console"),
    "wrong": (
        "Қате аты, құпия сөз немесе код",
        "Неверное имя, пароль или код",
        "Wrong name, password or code",
    ),
    "locked": (
        "Тым көп қате әрекет: кейінірек",
        "Слишком много попыток: позже",
        "Too many attempts: try later",
    ),
    "not_found": ("Табылмады", "Не найдено", "Not found"),
    "forbidden": ("Рұқсат жоқ", "Запрещено", "Forbidden"),
}
LANGUAGES: Final = ("kk", "ru", "en")


def words(language: str) -> dict[str, str]:
    """Every console word in ``language`` (Russian for an unknown one)."""
    i = LANGUAGES.index(language) if language in LANGUAGES else 1
    return {key: forms[i] for key, forms in _WORDS.items()}
