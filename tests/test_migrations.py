"""The schema comes only from migrations, and migrations match the models."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from portal.db import Base
from portal.extensions import db


def _diff(connection) -> list:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return compare_metadata(context, Base.metadata)


def test_migrated_schema_has_every_model_table(app):
    tables = set(sa.inspect(db.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_no_drift_between_models_and_migrations(app):
    with db.engine.connect() as connection:
        assert _diff(connection) == []


def test_downgrade_to_empty_and_upgrade_again(app):
    downgrade(revision="base")
    remaining = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
    assert remaining == set()
    upgrade()
    with db.engine.connect() as connection:
        assert _diff(connection) == []


def test_audit_log_is_append_only(app, session):
    from portal.ops.models import AuditLogEntry

    session.add(AuditLogEntry(actor_label="a@example.com", action="test", target_type="x"))
    session.commit()
    for statement in ("UPDATE audit_log SET action = 'changed'", "DELETE FROM audit_log"):
        try:
            with db.engine.begin() as conn:
                conn.execute(sa.text(statement))
        except sa.exc.DatabaseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{statement} was allowed")
    assert session.scalar(sa.select(AuditLogEntry.action)) == "test"
