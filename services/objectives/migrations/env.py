from services.common.migrations import run_migrations
from services.objectives.models import metadata

run_migrations(metadata)
