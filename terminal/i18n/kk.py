"""Kazakh (қазақша) gate messages."""

from typing import Final

MESSAGES: Final[dict[str, str]] = {
    # idle screen
    "prompt.show_badge": "Бейджікті камераға көрсетіңіз",
    "prompt.paused": "Тіркеу уақытша тоқтады: қызметкерге хабарласыңыз",
    "prompt.mode_in": "Кіру режимі",
    "prompt.mode_out": "Шығу режимі",
    "prompt.look_at_camera": "Камераға қараңыз немесе бейджікті көрсетіңіз",
    "prompt.badge_and_face": "Бейджікті көрсетіп, камераға қараңыз",
    "prompt.face_guide": "Бетіңіз жақтаудың ішінде болсын",
    # accepted card
    "greeting": "Сәлем, {name}!",
    "farewell": "Сау бол, {name}!",
    "direction.in": "кірді",
    "direction.out": "шықты",
    "card.group": "«{group}» тобы",
    "card.child": "Бала: {name}",
    "card.guardian": "Ересек: {name}",
    "card.already_in": "Бүгін кірді деп белгіленген",
    "card.already_out": "Бүгін шықты деп белгіленген",
    # refused card
    "refused.unknown_badge": "Бейджік танылмады",
    "refused.revoked_badge": "Бейджіктің күші жойылған",
    "refused.unreadable": "Код оқылмады",
    "refused.malformed": "Код жарамсыз",
    "refused.face_mismatch": "Бейджік пен бет сәйкес емес",
    "refused.no_face": "Камераға қараңыз да, бейджікті қайта көрсетіңіз",
    "refused.no_face_consent": "Бет тануға келісім жоқ\u00a0— бейджікті пайдаланыңыз",
    "refused.face_unknown": "Бет танылмады\u00a0— бейджікті пайдаланыңыз",
    "refused.face_liveness": "Камераға қараңыз немесе бейджікті пайдаланыңыз",
    "refused.closed": "Қазір жұмыс уақыты емес",
    "refused.hours": "Жұмыс уақыты: {opens}–{closes}",
    "refused.hint": "Тәрбиешіге жүгініңіз",
    # authorized pickup (the card names the child and the adult under the message)
    "pickup.unauthorized": "Бұл ересек осы баланың уәкілетті өкілі емес",
    "pickup.guardian_revoked": "Ересектің бейджігінің күші жойылған",
    "pickup.show_child": "Енді баланың бейджігін де көрсетіңіз",
    "pickup.needs_guardian": "Баланы алып кету үшін ересектің бейджігі керек",
    # error states
    "error.title": "Ақау",
    "error.camera_lost": "Камера ажыратылды",
    "error.disk_full": "Диск толып қалды",
    "error.roster_stale": "Балалар тізімі ескірген",
    "error.clock_unsynced": "Сағат синхрондалмаған",
    "error.database_locked": "Дерекқор бос емес",
    "error.not_recorded": "Белгі сақталмады\u00a0— қайталаңыз",
    "error.hint": "Қызметкерге хабарлаңыз",
    # status bar
    "status.roster": "Тізім v{version}",
    "status.roster_stale": "Тізім v{version} ескірген",
    "status.no_roster": "Тізім жоқ",
    "status.pending": "Жіберілмеген: {count}",
    "status.disk_free": "Диск: {percent}% бос",
    # staff "today" list
    "today.title": "Бүгін, {date}",
    "today.readonly": "тек қарау үшін",
    "today.in": "Балабақшада",
    "today.left": "Кетті",
    "today.absent": "Келмеді",
    "today.summary": "Барлығы {total} · балабақшада {present} · кетті {left} · келмеді {absent}",
    "today.none": "—",
    "today.pickup_alert": "алып кетуге рұқсат берілмеді",
}
