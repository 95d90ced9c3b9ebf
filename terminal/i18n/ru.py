"""Russian (русский) gate messages.

The card says "приход"/"уход" rather than "пришёл"/"ушёл": the verb agrees with the child's gender,
which the roster does not carry, and "Аружан пришёл" would be wrong for a girl.
"""

from typing import Final

MESSAGES: Final[dict[str, str]] = {
    # idle screen
    "prompt.show_badge": "Покажите бейдж камере",
    "prompt.paused": "Отметка приостановлена: обратитесь к воспитателю",
    "prompt.mode_in": "Режим: приход",
    "prompt.mode_out": "Режим: уход",
    "prompt.look_at_camera": "Посмотрите в камеру или покажите бейдж",
    "prompt.badge_and_face": "Покажите бейдж и посмотрите в камеру",
    "prompt.face_guide": "Лицо в рамку",
    # accepted card
    "greeting": "Привет, {name}!",
    "farewell": "До свидания, {name}!",
    "direction.in": "приход",
    "direction.out": "уход",
    "card.group": "группа «{group}»",
    "card.child": "Ребёнок: {name}",
    "card.guardian": "Взрослый: {name}",
    "card.already_in": "Приход уже отмечен",
    "card.already_out": "Уход уже отмечен",
    # refused card
    "refused.unknown_badge": "Неизвестный бейдж",
    "refused.revoked_badge": "Бейдж отозван",
    "refused.unreadable": "Код не читается",
    "refused.malformed": "Неверный код",
    "refused.face_mismatch": "Бейдж и лицо не совпадают",
    "refused.no_face": "Посмотрите в камеру и покажите бейдж ещё раз",
    "refused.no_face_consent": "Нет согласия на распознавание лица\u00a0— используйте бейдж",
    "refused.face_unknown": "Лицо не распознано\u00a0— используйте бейдж",
    "refused.face_liveness": "Посмотрите в камеру или используйте бейдж",
    "refused.closed": "Сейчас нерабочее время",
    "refused.hours": "Часы работы: {opens}–{closes}",
    "refused.hint": "Обратитесь к воспитателю",
    # authorized pickup (the card names the child and the adult under the message)
    "pickup.unauthorized": "Этот взрослый не вправе забирать этого ребёнка",
    "pickup.guardian_revoked": "Бейдж взрослого отозван: забрать нельзя",
    "pickup.show_child": "Теперь покажите и бейдж ребёнка",
    "pickup.needs_guardian": "Чтобы забрать ребёнка, нужен бейдж взрослого",
    # error states
    "error.title": "Неисправность",
    "error.camera_lost": "Камера отключена",
    "error.disk_full": "Диск заполнен",
    "error.roster_stale": "Список детей устарел",
    "error.clock_unsynced": "Часы не синхронизированы",
    "error.database_locked": "База данных занята",
    "error.not_recorded": "Отметка не сохранена\u00a0— повторите",
    "error.hint": "Сообщите сотруднику",
    # status bar
    "status.roster": "Список v{version}",
    "status.roster_stale": "Список v{version} устарел",
    "status.no_roster": "Нет списка",
    "status.pending": "Не отправлено: {count}",
    "status.disk_free": "Диск: свободно {percent}%",
    # staff "today" list
    "today.title": "Сегодня, {date}",
    "today.readonly": "только просмотр",
    "today.in": "В саду",
    "today.left": "Ушли",
    "today.absent": "Нет",
    "today.summary": "Всего {total} · в саду {present} · ушли {left} · нет {absent}",
    "today.none": "—",
    "today.pickup_alert": "отказ в выдаче ребёнка",
}
