from services.common.migrations import run_migrations
from services.ingest.models import metadata

run_migrations(metadata)
