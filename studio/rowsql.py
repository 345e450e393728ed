"""Hand-written SQL for the statements on every edit's path.

Building a statement through the ORM (queryset, query, compiler) costs more
CPU than running it: on the co-editing path, where one database thread per
server process runs every edit one after another, the ORM's share was about
half of all the Python an edit costs (docs/benchmarks.md, co-editing). These
helpers build each statement's text once per model, table shape and database,
and let the fields themselves prepare the values written (`pre_save`,
`get_db_prep_save`) and convert the values read (the backend's and the field's
converters, as the ORM's compiler does), so the rows are exactly the ORM's.

They send no model signals; the models they are used on have no receivers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)


def _q(name: str | None) -> str:
    assert name is not None
    return str(connection.ops.quote_name(name))


class _Reader:
    """SELECT of every concrete column of a model, with the ORM's converters."""

    def __init__(self, model: type[Model]) -> None:
        fields = list(model._meta.concrete_fields)
        table = model._meta.db_table
        self.model = model
        self.attnames = [f.attname for f in fields]
        self.head = f"SELECT {', '.join(_q(f.column) for f in fields)} FROM {_q(table)}"
        self.converters: list[tuple[int, list[Any], Any]] = []
        for i, field in enumerate(fields):
            column = field.get_col(table)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            if found:
                self.converters.append((i, found, column))

    def rows(self, where: str, params: Sequence[Any]) -> list[Any]:
        with connection.cursor() as cursor:
            cursor.execute(f"{self.head} WHERE {where}", params)
            return self.instances(cursor.fetchall())

    def instances(self, fetched: Sequence[Sequence[Any]]) -> list[Any]:
        out = []
        for values in fetched:
            values = list(values)
            for i, converters, column in self.converters:
                for convert in converters:
                    values[i] = convert(values[i], column, connection)
            out.append(self.model.from_db(connection.alias, self.attnames, values))
        return out


# Per thread: a reader's converters are bound to the connection (each thread
# has its own) that built them.
_readers = threading.local()


def _reading(model: type[M]) -> _Reader:
    readers: dict[tuple[type[Model], str], _Reader] | None = getattr(_readers, "cache", None)
    if readers is None:
        readers = _readers.cache = {}
    key = (model, connection.vendor)
    reader = readers.get(key)
    if reader is None:
        reader = readers[key] = _Reader(model)
    return reader


def _lock_where(model: type[Model]) -> str:
    key = model._meta.pk
    assert key is not None
    where = f"{_q(key.column)} = %s"
    if connection.features.has_select_for_update:
        where += " FOR UPDATE"
    return where


def lock_then_read(
    model: type[M], pk: Any, sql: str, params: Sequence[Any]
) -> tuple[M | None, Any]:
    """The row, locked until the transaction ends (FOR UPDATE where the
    database has it; SQLite's BEGIN IMMEDIATE already holds the write lock),
    then the first row of `sql`, a statement that runs once the lock is held: in READ COMMITTED each statement takes its own snapshot,
    so it sees what the writer it waited for committed (one statement doing
    both would not). On PostgreSQL the two go in one round trip, which also
    shortens how long the lock is held."""
    reader = _reading(model)
    lock = f"{reader.head} WHERE {_lock_where(model)}"
    with connection.cursor() as cursor:
        if _one_round_trip():
            cursor.execute(f"{lock}; {sql}", [pk, *params])
            locked = cursor.fetchall()
            cursor.nextset()
        else:
            cursor.execute(lock, [pk])
            locked = cursor.fetchall()
            cursor.execute(sql, params)
        after = cursor.fetchone()
    rows = reader.instances(locked)
    return (rows[0] if rows else None), after


def by_uids(model: type[M], project_id: int, uids: Iterable[str]) -> list[M]:
    """The project's rows of `model` whose uid is one of `uids`."""
    wanted = list(uids)
    if not wanted:
        return []
    marks = ", ".join(["%s"] * len(wanted))
    return _reading(model).rows(
        f"{_q('project_id')} = %s AND {_q('uid')} IN ({marks})", [project_id, *wanted]
    )


def _field(model: type[Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.concrete, name
    return field


@cache
def _insert_sql(model: type[Model], vendor: str) -> tuple[str, list[Field[Any, Any]]]:
    pk = model._meta.pk
    assert pk is not None and pk.get_internal_type() in ("AutoField", "BigAutoField"), model
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {_q(model._meta.db_table)} ({', '.join(_q(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
    )
    return sql, fields


def _one_round_trip() -> bool:
    """Several statements in one execute: PostgreSQL through psycopg's
    client-side binding cursor (Django's default); not SQLite's driver."""
    options = connection.settings_dict.get("OPTIONS", {})
    return connection.vendor == "postgresql" and options.get("server_side_binding") is not True


class Writes:
    """The write statements of an edit, run together by `flush()`: in one
    round trip on PostgreSQL, where each round trip to a server sharing the
    machine's cores waits to be scheduled (docs/benchmarks.md, co-editing),
    and one by one elsewhere. They run in the order they were added; flush
    before anything that reads what they write, or writes through the ORM."""

    def __init__(self) -> None:
        self._pending: list[tuple[str, list[Any]]] = []

    def update_by_uid(
        self, model: type[Model], project_id: int, uid: str, values: dict[str, Any]
    ) -> None:
        """UPDATE one row of the project by uid; `values` by field name or attname."""
        if not values:
            return
        fields = [_field(model, name) for name in values]
        params = [
            f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values(), strict=True)
        ]
        self._pending.append(
            (
                f"UPDATE {_q(model._meta.db_table)} SET "
                + ", ".join(f"{_q(f.column)} = %s" for f in fields)
                + f" WHERE {_q('project_id')} = %s AND {_q('uid')} = %s",
                [*params, project_id, uid],
            )
        )

    def save_fields(self, obj: Model, names: Iterable[str]) -> None:
        """`obj.save(update_fields=names)`: auto_now fields take the time now."""
        model = type(obj)
        fields = [_field(model, name) for name in dict.fromkeys(names)]
        params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
        pk = model._meta.pk
        assert pk is not None
        self._pending.append(
            (
                f"UPDATE {_q(model._meta.db_table)} SET "
                + ", ".join(f"{_q(f.column)} = %s" for f in fields)
                + f" WHERE {_q(pk.column)} = %s",
                [*params, pk.get_db_prep_value(obj.pk, connection)],
            )
        )

    def insert(self, obj: Model) -> None:
        """INSERT a new row for `obj` (auto primary key; `obj.pk` stays unset):
        defaults and auto_now_add as `save()` gives them."""
        sql, fields = _insert_sql(type(obj), connection.vendor)
        self._pending.append(
            (sql, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
        )

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        with connection.cursor() as cursor:
            if len(pending) > 1 and _one_round_trip():
                cursor.execute(
                    "; ".join(sql for sql, _ in pending),
                    [param for _, params in pending for param in params],
                )
            else:
                for sql, params in pending:
                    cursor.execute(sql, params)
