from carecoord_shared.persistence import run_alembic_env

from carecoord_safety.models import metadata

run_alembic_env(metadata)
