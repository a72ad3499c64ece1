"""The schema head storage reads without alembic is alembic's own; a database at it skips alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from governd.ledger import migrate
from governd.ledger.storage import LATEST, Storage, schema_revision


def test_the_latest_revision_is_alembics_head(tmp_path: Path) -> None:
    assert migrate.head() == LATEST
    storage = Storage(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert schema_revision(storage.engine) == LATEST
    storage.close()


def test_opening_a_database_at_the_head_imports_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Storage(url).close()
    probe = (
        "import sys; from governd.ledger.storage import Storage; "
        f"Storage({url!r}).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
