from carecoord_engagement.models import metadata
from carecoord_shared.persistence import run_alembic_env

run_alembic_env(metadata)
