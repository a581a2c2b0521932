from services.common.migrations import run_migrations
from services.ingest.fineract.models import metadata

run_migrations(metadata)
