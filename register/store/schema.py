"""The register's schema as code: migrations per component, each component versioned on its own.

A component is one feature's set of tables (``log``: devices, entries, hashes, checkpoints, alarms;
later ones add theirs). Its version is the row ``schema.<component>`` in ``meta``; :func:`pending`
lists the DDL still to run. A component's migrations are append-only: a released step is never edited,
a change is a new step. Each step gets the backend's :class:`Dialect` and returns its statements, which
use only SQL that SQLite and PostgreSQL both accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Dialect:
    """The column types that differ between backends."""

    serial: str  # an auto-assigned integer primary key
    blob: str  # raw bytes


SQLITE: Final = Dialect(serial="INTEGER", blob="BLOB")
POSTGRES: Final = Dialect(serial="BIGINT GENERATED ALWAYS AS IDENTITY", blob="BYTEA")

Migration = Callable[[Dialect], list[str]]

META_DDL: Final = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
LEGACY_KEY: Final = "schema"  # databases made before components: their 'schema' = 1 is log v1


def _log_v1(d: Dialect) -> list[str]:
    return [
        f"""CREATE TABLE devices (
            id {d.serial} PRIMARY KEY,
            origin TEXT NOT NULL UNIQUE,
            keyid TEXT NOT NULL UNIQUE,
            vkey TEXT NOT NULL,
            kindergarten TEXT NOT NULL,
            gate TEXT NOT NULL,
            added_ms BIGINT NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT FALSE,
            size BIGINT NOT NULL DEFAULT 0,
            last_seen_ms BIGINT,
            heartbeat TEXT)""",
        f"""CREATE TABLE entries (
            device_id BIGINT NOT NULL REFERENCES devices (id),
            idx BIGINT NOT NULL,
            leaf {d.blob} NOT NULL,
            data {d.blob} NOT NULL,
            PRIMARY KEY (device_id, idx))""",
        f"""CREATE TABLE hashes (
            device_id BIGINT NOT NULL REFERENCES devices (id),
            level INTEGER NOT NULL,
            idx BIGINT NOT NULL,
            hash {d.blob} NOT NULL,
            PRIMARY KEY (device_id, level, idx))""",
        f"""CREATE TABLE checkpoints (
            device_id BIGINT NOT NULL REFERENCES devices (id),
            size BIGINT NOT NULL,
            root {d.blob} NOT NULL,
            note TEXT NOT NULL,
            cosigned TEXT NOT NULL,
            received_ms BIGINT NOT NULL,
            PRIMARY KEY (device_id, size))""",
        f"""CREATE TABLE alarms (
            id {d.serial} PRIMARY KEY,
            device_id BIGINT REFERENCES devices (id),
            time_ms BIGINT NOT NULL,
            kind TEXT NOT NULL,
            idx BIGINT,
            detail TEXT NOT NULL,
            evidence {d.blob})""",
    ]


def _enrolment_v1(d: Dialect) -> list[str]:
    """One-time enrolment tokens (only their hash), challenges, revocations; one live device per gate."""
    return [
        """CREATE TABLE enrol_tokens (
            token_hash TEXT PRIMARY KEY,
            kindergarten TEXT NOT NULL,
            gate TEXT NOT NULL,
            replaces TEXT,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT NOT NULL,
            used_ms BIGINT,
            device_id BIGINT REFERENCES devices (id))""",
        """CREATE TABLE enrol_challenges (
            challenge TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL REFERENCES enrol_tokens (token_hash),
            origin TEXT NOT NULL,
            expires_ms BIGINT NOT NULL)""",
        f"""CREATE TABLE revocations (
            id {d.serial} PRIMARY KEY,
            device_id BIGINT NOT NULL UNIQUE REFERENCES devices (id),
            time_ms BIGINT NOT NULL,
            revoked_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            replaced_by BIGINT REFERENCES devices (id))""",
        "CREATE UNIQUE INDEX devices_live_gate ON devices (kindergarten, gate) WHERE NOT disabled",
    ]


def _roster_v1(d: Dialect) -> list[str]:
    """Each kindergarten's children, guardians, pickup rights, badges, and every published version."""
    return [
        """CREATE TABLE roster_children (
            kindergarten TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            grp TEXT NOT NULL,
            consent_face BOOLEAN NOT NULL,
            PRIMARY KEY (kindergarten, id))""",
        """CREATE TABLE roster_guardians (
            kindergarten TEXT NOT NULL,
            id TEXT NOT NULL,
            name TEXT NOT NULL,
            PRIMARY KEY (kindergarten, id))""",
        """CREATE TABLE roster_pickup (
            kindergarten TEXT NOT NULL,
            guardian TEXT NOT NULL,
            child TEXT NOT NULL,
            PRIMARY KEY (kindergarten, guardian, child))""",
        """CREATE TABLE roster_badges (
            serial TEXT PRIMARY KEY,
            kindergarten TEXT NOT NULL,
            holder_kind TEXT NOT NULL,
            holder TEXT NOT NULL,
            revoked BOOLEAN NOT NULL DEFAULT FALSE,
            issued_version BIGINT NOT NULL,
            revoked_version BIGINT)""",
        f"""CREATE TABLE roster_versions (
            kindergarten TEXT NOT NULL,
            version BIGINT NOT NULL,
            created_ms BIGINT NOT NULL,
            change TEXT NOT NULL,
            digest TEXT NOT NULL,
            document {d.blob} NOT NULL,
            PRIMARY KEY (kindergarten, version))""",
    ]


def _console_v1(d: Dialect) -> list[str]:
    """Kindergartens' districts; console users, sessions, audit trail, login throttling, parent codes."""
    return [
        """CREATE TABLE kindergartens (
            kindergarten TEXT PRIMARY KEY,
            district TEXT NOT NULL)""",
        f"""CREATE TABLE users (
            id {d.serial} PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            scope TEXT,
            pw_hash TEXT NOT NULL,
            language TEXT NOT NULL,
            disabled BOOLEAN NOT NULL DEFAULT FALSE,
            created_ms BIGINT NOT NULL)""",
        f"""CREATE TABLE audit (
            id {d.serial} PRIMARY KEY,
            time_ms BIGINT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            address TEXT)""",
        """CREATE TABLE login_throttle (
            subject TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_ms BIGINT NOT NULL,
            locked_until_ms BIGINT NOT NULL)""",
        """CREATE TABLE parent_codes (
            code_hash TEXT PRIMARY KEY,
            kindergarten TEXT NOT NULL,
            child TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            revoked BOOLEAN NOT NULL DEFAULT FALSE)""",
        """CREATE TABLE console_sessions (
            id_hash TEXT PRIMARY KEY,
            user_id BIGINT REFERENCES users (id),
            parent_kindergarten TEXT,
            parent_child TEXT,
            csrf TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            expires_ms BIGINT NOT NULL)""",
        *_append_only(d, "audit"),
    ]


def _append_only(d: Dialect, table: str) -> list[str]:
    """Triggers that refuse UPDATE and DELETE on ``table`` (an audit trail is never rewritten)."""
    if d == SQLITE:
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]
    return [
        f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$""",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
    ]


def _tabel_v1(d: Dialect) -> list[str]:
    """The табель: calendars, absences with reasons, auditors' flag clearances, month approvals."""
    return [
        """CREATE TABLE tabel_settings (
            kindergarten TEXT PRIMARY KEY,
            tz TEXT NOT NULL,
            opens TEXT NOT NULL,
            closes TEXT NOT NULL,
            rate_tiyn BIGINT NOT NULL)""",
        """CREATE TABLE tabel_days (
            kindergarten TEXT NOT NULL,
            day TEXT NOT NULL,
            kind TEXT NOT NULL,
            note TEXT NOT NULL,
            PRIMARY KEY (kindergarten, day))""",
        f"""CREATE TABLE tabel_absences (
            id {d.serial} PRIMARY KEY,
            kindergarten TEXT NOT NULL,
            child TEXT NOT NULL,
            day TEXT NOT NULL,
            reason TEXT NOT NULL,
            document TEXT,
            entered_by TEXT NOT NULL,
            time_ms BIGINT NOT NULL)""",
        "CREATE INDEX tabel_absences_day ON tabel_absences (kindergarten, day)",
        """CREATE TABLE tabel_clearances (
            flag TEXT PRIMARY KEY,
            cleared_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            time_ms BIGINT NOT NULL)""",
        f"""CREATE TABLE tabel_approvals (
            id {d.serial} PRIMARY KEY,
            kindergarten TEXT NOT NULL,
            month TEXT NOT NULL,
            step TEXT NOT NULL,
            done_by TEXT NOT NULL,
            time_ms BIGINT NOT NULL,
            digest TEXT NOT NULL,
            document {d.blob} NOT NULL)""",
    ]


def _tabel_v2(d: Dialect) -> list[str]:
    """The entries' decoded fields, written at ingest, so a month's табель reads only that month's entries."""
    return [
        """CREATE TABLE entry_index (
            device_id BIGINT NOT NULL REFERENCES devices (id),
            idx BIGINT NOT NULL,
            kind TEXT NOT NULL,
            child TEXT,
            time_ms BIGINT NOT NULL,
            method TEXT,
            ref BIGINT,
            PRIMARY KEY (device_id, idx))""",
        "CREATE INDEX entry_index_time ON entry_index (device_id, time_ms)",
        "CREATE INDEX entry_index_child ON entry_index (child, time_ms)",
    ]


def _notify_v1(d: Dialect) -> list[str]:
    """Guardians' contacts and consent (never in a roster document), and the notification outbox.

    One outbox row per (device, entry index, guardian, channel): the unique key that makes re-pushed and
    pulled entries never notify twice. Rows move pending → sending (claimed, with a lease) → sent | dead.
    """
    return [
        """CREATE TABLE notify_zones (
            kindergarten TEXT PRIMARY KEY,
            zone TEXT NOT NULL)""",
        """CREATE TABLE notify_guardians (
            kindergarten TEXT NOT NULL,
            guardian TEXT NOT NULL,
            lang TEXT NOT NULL,
            opt_in BOOLEAN NOT NULL,
            PRIMARY KEY (kindergarten, guardian))""",
        """CREATE TABLE notify_contacts (
            kindergarten TEXT NOT NULL,
            guardian TEXT NOT NULL,
            channel TEXT NOT NULL,
            address TEXT NOT NULL,
            target TEXT,
            PRIMARY KEY (kindergarten, guardian, channel))""",
        f"""CREATE TABLE notify_outbox (
            id {d.serial} PRIMARY KEY,
            device_id BIGINT NOT NULL REFERENCES devices (id),
            idx BIGINT NOT NULL,
            guardian TEXT NOT NULL,
            channel TEXT NOT NULL,
            address TEXT NOT NULL,
            target TEXT,
            key TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_ms BIGINT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            due_ms BIGINT NOT NULL,
            lease_ms BIGINT,
            claim TEXT,
            last_error TEXT,
            sent_ms BIGINT,
            remote_id TEXT,
            UNIQUE (device_id, idx, guardian, channel))""",
        "CREATE INDEX notify_outbox_due ON notify_outbox (state, due_ms)",
    ]


def _approval_v1(d: Dialect) -> list[str]:
    """Guard rails of a month's approval: the reason given with a step (an approval despite open holding
    flags or unexplained absences, a reopening); '' where none was needed."""
    return ["ALTER TABLE tabel_approvals ADD COLUMN reason TEXT NOT NULL DEFAULT ''"]


def _notify_v2(d: Dialect) -> list[str]:
    """A kindergarten's name for messages (kept with its zone), the one-click unsubscriptions (RFC 8058:
    an address listed here gets no more notifications, also after a contacts re-import), and parents'
    reports' comments and withdrawals (register/notify/report.py)."""
    return [
        "ALTER TABLE notify_zones ADD COLUMN name TEXT",
        """CREATE TABLE notify_unsubscribed (
            kindergarten TEXT NOT NULL,
            guardian TEXT NOT NULL,
            channel TEXT NOT NULL,
            address TEXT NOT NULL,
            unsubscribed_ms BIGINT NOT NULL,
            PRIMARY KEY (kindergarten, guardian, channel, address))""",
        "ALTER TABLE notify_guardians ADD COLUMN digest BOOLEAN NOT NULL DEFAULT FALSE",
        # a parent's report (the alarm of one entry): its optional comment and its withdrawal, if any
        """CREATE TABLE parent_report_notes (
            device_id BIGINT NOT NULL,
            idx BIGINT NOT NULL,
            comment TEXT,
            withdrawn_ms BIGINT,
            PRIMARY KEY (device_id, idx))""",
    ]


#: Every component and its migrations, in the order components are created.
#: Features add a component here (their own key, their own steps); never reorder or edit a step.
COMPONENTS: Final[Mapping[str, Sequence[Migration]]] = {
    "log": (_log_v1,),
    "enrolment": (_enrolment_v1,),
    "roster": (_roster_v1,),
    "tabel": (_tabel_v1, _tabel_v2),
    "notify": (_notify_v1, _notify_v2),
    "console": (_console_v1,),
    "approval": (_approval_v1,),  # after "tabel": it alters tabel_approvals
}


def meta_key(component: str) -> str:
    """The ``meta`` row holding a component's schema version."""
    return f"{LEGACY_KEY}.{component}"


def known_versions() -> dict[str, int]:
    """The version of each component this code writes."""
    return {name: len(steps) for name, steps in COMPONENTS.items()}
