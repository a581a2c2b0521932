from services.common.migrations import run_migrations
from spm.accounts.models import metadata

run_migrations(metadata)
