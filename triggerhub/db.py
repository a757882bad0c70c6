"""Database helpers shared by the apps."""

from django.db import IntegrityError, connections, router, transaction


def insert_or_get_existing(instance, **unique_lookup):
    """Insert ``instance``; if a row with ``unique_lookup`` already exists, return that one.

    Returns ``(row, created)``. One INSERT when the row is new — no look-up first,
    since new rows are the common case. Inside a transaction the INSERT runs in a
    savepoint, so losing to a twin leaves the caller's transaction usable.
    """
    model = type(instance)
    using = instance._state.db or "default"
    try:
        if transaction.get_connection(using).in_atomic_block:
            with transaction.atomic(using=using):
                instance.save(force_insert=True, using=using)
        else:
            instance.save(force_insert=True, using=using)
    except IntegrityError:
        existing = model._default_manager.using(using).filter(**unique_lookup).first()
        if existing is None:
            raise  # another constraint failed: the caller's data is wrong
        return existing, False
    return instance, True


def update_each(instances, field_names) -> None:
    """Write ``field_names`` of each of ``instances`` (same model) to its own row, in one round trip.

    On PostgreSQL one ``UPDATE … FROM unnest(<one array per column>)``: a short statement,
    the same for any number of rows, parsed and planned once per batch. ``executemany``
    would have the server parse and plan one UPDATE per row, which cost most of a
    batch's write, and a ``VALUES`` list grows a placeholder per value for the client to
    parse. Elsewhere (SQLite, in-process) one UPDATE per row through ``executemany``.
    Not ``bulk_update()``: its CASE per field and row costs more to build than either.
    Writes the values as they are: no ``auto_now``, no signals.
    """
    if not instances:
        return
    model = type(instances[0])
    db = connections[router.db_for_write(model)]
    quote = db.ops.quote_name
    fields = [model._meta.get_field(name) for name in field_names]
    pk = model._meta.pk
    table = quote(model._meta.db_table)
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            columns = [[instance.pk for instance in instances]] + [
                [field.get_db_prep_save(getattr(instance, field.attname), db) for instance in instances]
                for field in fields
            ]
            cursor.execute(
                "UPDATE {table} SET {assignments} FROM unnest({arrays}) AS new ({names}) "
                "WHERE {table}.{pk} = new.{pk}".format(
                    table=table,
                    assignments=", ".join(f"{quote(field.column)} = new.{quote(field.column)}" for field in fields),
                    arrays=", ".join(
                        [f"%s::{pk.rel_db_type(db)}[]"] + [f"%s::{field.db_type(db)}[]" for field in fields]
                    ),
                    names=", ".join(quote(field.column) for field in [pk, *fields]),
                    pk=quote(pk.column),
                ),
                columns,
            )
        else:
            cursor.executemany(
                "UPDATE {} SET {} WHERE {} = %s".format(
                    table, ", ".join(f"{quote(field.column)} = %s" for field in fields), quote(pk.column)
                ),
                [
                    [field.get_db_prep_save(getattr(instance, field.attname), db) for field in fields] + [instance.pk]
                    for instance in instances
                ],
            )
