"""Schema migrations (alembic), run by governd itself when storage opens.

A database created before migrations existed (same tables, no version table)
is stamped as the baseline first. Revisions only add: a replica still running
the previous version keeps writing while a newer one migrates.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

_SCRIPTS = Path(__file__).parent / "migrations"


def _config(conn: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (the latest by default)."""
    with engine.begin() as conn:
        cfg = _config(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is None and sa.inspect(conn).has_table("ledger_entries"):
            command.stamp(cfg, "0001")
        command.upgrade(cfg, revision)


def head() -> str:
    """The latest revision this version of governd knows."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    found = ScriptDirectory.from_config(cfg).get_current_head()
    assert found is not None
    return found


def current(engine: Engine) -> str | None:
    """The schema revision of the database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


if __name__ == "__main__":  # ``python -m governd.ledger.migrate``: the URL in GOVERND_MIGRATE_URL
    import os

    upgrade(sa.create_engine(os.environ["GOVERND_MIGRATE_URL"]))
