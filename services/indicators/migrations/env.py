from services.common.migrations import run_migrations
from services.indicators.models import metadata

run_migrations(metadata)
