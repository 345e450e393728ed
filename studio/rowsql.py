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
    model: type[M],
    pk: Any,
    sql: str,
    params: Sequence[Any],
    reads: Sequence[tuple[type[Model], str, Sequence[Any]]] = (),
    before: Sequence[str] = (),
) -> tuple[M | None, Any, list[list[Any]]]:
    """The row, locked until the transaction ends (FOR UPDATE where the
    database has it; SQLite's BEGIN IMMEDIATE already holds the write lock),
    then the first row of `sql`, then the rows of each of `reads` (a model
    and a WHERE clause with its parameters, as `uid_read` makes them).
    `before`: statements without parameters or rows (SET LOCAL, say) that
    run first.

    The statements after the lock run once it is held: in READ COMMITTED each
    statement takes its own snapshot, so they see what the writer the lock
    waited for committed (one statement doing it all would not). On
    PostgreSQL they all go in one round trip, which also shortens how long
    the lock is held."""
    reader = _reading(model)
    statements: list[tuple[str, Sequence[Any]]] = [
        (f"{reader.head} WHERE {_lock_where(model)}", [pk]),
        (sql, params),
        *((f"{_reading(m).head} WHERE {where}", p) for m, where, p in reads),
    ]
    results: list[list[Any]] = []
    with connection.cursor() as cursor:
        if _one_round_trip():
            cursor.execute(*_joined([*((text, ()) for text in before), *statements]))
            for _ in before:
                assert cursor.nextset()
            results.append(cursor.fetchall())
            for _ in statements[1:]:
                assert cursor.nextset()
                results.append(cursor.fetchall())
        else:
            for text in before:
                cursor.execute(text)
            for text, values in statements:
                cursor.execute(text, values)
                results.append(cursor.fetchall())
    locked = reader.instances(results[0])
    after = results[1][0] if results[1] else None
    rows = [
        _reading(m).instances(found) for (m, _, _), found in zip(reads, results[2:], strict=True)
    ]
    return (locked[0] if locked else None), after, rows


def uid_read(
    model: type[Model], project_id: int, uids: Iterable[str]
) -> tuple[type[Model], str, list[Any]]:
    """For `lock_then_read`'s `reads`: the project's rows of `model` whose uid
    is one of `uids` (at least one)."""
    wanted = sorted(uids)
    assert wanted
    marks = ", ".join(["%s"] * len(wanted))
    return model, f"{_q('project_id')} = %s AND {_q('uid')} IN ({marks})", [project_id, *wanted]


def by_uids(model: type[M], project_id: int, uids: Iterable[str]) -> list[M]:
    """The project's rows of `model` whose uid is one of `uids`."""
    wanted = list(uids)
    if not wanted:
        return []
    _, where, params = uid_read(model, project_id, wanted)
    return _reading(model).rows(where, params)


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


def _joined(statements: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    """Several statements as one execute (see `_one_round_trip`)."""
    return "; ".join(text for text, _ in statements), [p for _, ps in statements for p in ps]


def _one_round_trip() -> bool:
    """Several statements in one execute: PostgreSQL through psycopg's
    client-side binding cursor (Django's default); not SQLite's driver."""
    options = connection.settings_dict.get("OPTIONS", {})
    return connection.vendor == "postgresql" and options.get("server_side_binding") is not True


def outermost_atomic_block() -> bool:
    """Inside exactly one atomic block, which commits when it is left."""
    return (
        connection.in_atomic_block
        and connection.commit_on_exit
        and len(connection.atomic_blocks) == 1
        and not connection.savepoint_ids
        and not connection.needs_rollback
    )


def check_nothing_after_commit() -> None:
    """Called at the end of the atomic block of a `flush(last=True)`: if the
    commit went with the writes, nothing may have run since (it would be
    outside the transaction, committed on its own)."""
    if getattr(connection, "roomtone_committed", False):
        raw = connection.connection
        if raw is not None and raw.info.transaction_status != 0:  # 0: idle
            raise RuntimeError("a statement ran after the commit that went with the writes")


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
        self._update(
            model,
            fields,
            params,
            f"{_q('project_id')} = %s AND {_q('uid')} = %s",
            [project_id, uid],
        )

    def save_fields(self, obj: Model, names: Iterable[str]) -> None:
        """`obj.save(update_fields=names)`: auto_now fields take the time now."""
        model = type(obj)
        fields = [_field(model, name) for name in dict.fromkeys(names)]
        params = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
        pk = model._meta.pk
        assert pk is not None
        self._update(
            model,
            fields,
            params,
            f"{_q(pk.column)} = %s",
            [pk.get_db_prep_value(obj.pk, connection)],
        )

    def _update(
        self,
        model: type[Model],
        fields: Sequence[Field[Any, Any]],
        params: list[Any],
        where: str,
        where_params: list[Any],
    ) -> None:
        sets = ", ".join(f"{_q(f.column)} = %s" for f in fields)
        self._pending.append(
            (
                f"UPDATE {_q(model._meta.db_table)} SET {sets} WHERE {where}",
                [*params, *where_params],
            )
        )

    def insert(self, obj: Model) -> None:
        """INSERT a new row for `obj` (auto primary key; `obj.pk` stays unset):
        defaults and auto_now_add as `save()` gives them."""
        sql, fields = _insert_sql(type(obj), connection.vendor)
        self._pending.append(
            (sql, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
        )

    def flush(self, *, last: bool = False) -> None:
        """Run the statements added. `last`: nothing else runs in this
        transaction; when it is the outermost atomic block and the statements
        go in one round trip, COMMIT goes with them (Django's commit on leaving
        the block then finds nothing to commit, and runs the on_commit hooks)."""
        pending, self._pending = self._pending, []
        commit = last and _one_round_trip() and outermost_atomic_block()
        if commit:
            pending.append(("COMMIT", []))
        if not pending:
            return
        with connection.cursor() as cursor:
            if len(pending) > 1 and _one_round_trip():
                cursor.execute(*_joined(pending))
            else:
                for sql, params in pending:
                    cursor.execute(sql, params)
        connection.roomtone_committed = commit  # type: ignore[attr-defined]
