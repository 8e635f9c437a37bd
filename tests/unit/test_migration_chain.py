"""Each service's migrations form one line: two branches that each add a revision with the same number merge
cleanly in git yet leave Alembic two heads, and the service then refuses to start ("Multiple head revisions")."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from carecoord_contracts.topics import SERVICES
from tests.services import built


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_have_one_head_and_no_revision_twice(service: str) -> None:
    directory = built(service).migrations_dir
    script = ScriptDirectory(str(directory), version_locations=[str(directory / "versions")])
    files = sorted(p.name for p in (directory / "versions").glob("*.py"))
    numbers = [name.split("_", 1)[0] for name in files]
    assert len(numbers) == len(set(numbers)), f"{service}: a revision number used twice: {files}"
    assert len(script.get_heads()) == 1, f"{service}: heads {script.get_heads()}"
    chain = [rev.revision for rev in script.walk_revisions()]
    assert len(chain) == len(files), f"{service}: revisions not on the one line: {chain}"
