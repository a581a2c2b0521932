"""Settings: the database password from its own secret file, put into the URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from services.alerts.config import AlertSettings
from services.common.settings import CommonSettings


def test_the_password_file_goes_into_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "database_password").write_text("p@ss/w:rd%\n")  # as `openssl rand` > file
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://spm@db:5432/spm")
    settings = CommonSettings(_secrets_dir=tmp_path)
    url = make_url(settings.database_url)
    assert url.password == "p@ss/w:rd%"
    assert (url.username, url.host, url.database) == ("spm", "db", "spm")
    # a service's own settings built from the shared ones keep it (applied once)
    assert make_url(AlertSettings.of(settings).database_url).password == "p@ss/w:rd%"


def test_without_a_password_file_the_url_is_unchanged() -> None:
    url = "postgresql+asyncpg://spm:inline@db/spm"
    assert CommonSettings(database_url=url).database_url == url
