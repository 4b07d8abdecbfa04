"""Store types: every timestamp leaves the store aware and in UTC, on SQLite as on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, select

from looplab.core.store import Store
from looplab.core.tables import Base, User, UTCDateTime
from looplab.govern import access


def test_every_timestamp_column_is_utc_datetime() -> None:
    plain = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, DateTime) and not isinstance(column.type, UTCDateTime)
    ]
    assert plain == [], "use UTCDateTime() for these, so they are read back with their zone"


def test_timestamps_are_read_back_aware_in_utc(store: Store) -> None:
    with store.write() as session:
        user, _ = access.create_user(session, "ada", "admin", actor="test")
        # Written in another zone: stored as the same instant, read back in UTC.
        user.created_at = dt.datetime(2025, 3, 1, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with store.read() as session:
        created = session.scalar(select(User.created_at).where(User.name == "ada"))
        at = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
        filtered = session.scalar(select(User.name).where(User.created_at == at))
    assert created == dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)
    assert created is not None and created.utcoffset() == dt.timedelta(0)
    assert filtered == "ada"
