"""The console's users in the call database (table ``console_users``), beside the calls they may read.

One database holds both so that every instance sharing PostgreSQL knows the
same users, and removing one takes effect everywhere at once.
"""

from __future__ import annotations

import peewee as pw

from victoria_sip.adapters.repository import ConsoleUserRow, _naive_utc, _utc
from victoria_sip.domain import ConsoleRole, ConsoleUser
from victoria_sip.errors import RepositoryError


class UserExists(RepositoryError):
    pass


class SqlConsoleUsers:
    def __init__(self, database: pw.Database) -> None:
        self._database = database
        database.bind([ConsoleUserRow])  # one database per process, as for the calls

    def add(self, user: ConsoleUser) -> None:
        with self._database.atomic():
            if ConsoleUserRow.get_or_none(ConsoleUserRow.name == user.name) is not None:
                raise UserExists(f"user {user.name!r} already exists (remove it first to change it)")
            ConsoleUserRow.create(name=user.name, role=user.role.value, password_hash=user.password_hash,
                                  created_at=_naive_utc(user.created_at))

    def get(self, name: str) -> ConsoleUser | None:
        row = ConsoleUserRow.get_or_none(ConsoleUserRow.name == name)
        return None if row is None else _to_user(row)

    def list(self) -> list[ConsoleUser]:
        return [_to_user(row) for row in ConsoleUserRow.select().order_by(ConsoleUserRow.name)]

    def remove(self, name: str) -> bool:
        with self._database.atomic():
            return ConsoleUserRow.delete().where(ConsoleUserRow.name == name).execute() > 0


def _to_user(row: ConsoleUserRow) -> ConsoleUser:
    return ConsoleUser(row.name, ConsoleRole(row.role), row.password_hash, _utc(row.created_at))
