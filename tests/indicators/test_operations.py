"""The parts of services/indicators/operations.py that need no infrastructure (the commands
themselves run against Kafka and PostgreSQL in tests/spm/test_cli_indicators.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.indicators.config import IndicatorSettings
from services.indicators.errors import OperationError
from services.indicators.operations import Rebuild, update_env_file, with_target


def test_env_file_keys_are_replaced_in_place_and_new_ones_appended(tmp_path: Path) -> None:
    path = tmp_path / "indicators.env"
    path.write_text(
        "# comment\nexport INDICATORS_DB_SCHEMA=old\nKEEP=1\nINDICATORS_SLA_DAYS = 30\n"
    )
    update_env_file(
        path,
        {"INDICATORS_DB_SCHEMA": "new", "INDICATORS_SLA_DAYS": "45", "INDICATORS_GROUP_ID": "g"},
    )
    assert path.read_text().splitlines() == [
        "# comment",
        "INDICATORS_DB_SCHEMA=new",
        "KEEP=1",
        "INDICATORS_SLA_DAYS=45",
        "INDICATORS_GROUP_ID=g",
    ]
    missing = tmp_path / "new.env"
    update_env_file(missing, {"A": "1"})
    assert missing.read_text() == "A=1\n"


def test_a_target_schema_is_validated_as_the_service_would() -> None:
    settings = IndicatorSettings(indicators_sla_days=45)
    target = with_target(settings, "ind_new", "grp-new")
    assert (target.indicators_db_schema, target.indicators_group_id) == ("ind_new", "grp-new")
    assert target.indicators_sla_days == 45  # the other settings are kept
    with pytest.raises(ValidationError, match="indicators_db_schema"):
        with_target(settings, "Bad-Schema; drop", "g")


def test_a_rebuild_never_targets_the_schema_or_group_in_force() -> None:
    kafka = {"kafka_bootstrap_servers": "127.0.0.1:9"}
    in_force = IndicatorSettings(**kafka)  # type: ignore[arg-type]
    with pytest.raises(OperationError, match="in force"):
        Rebuild(with_target(in_force, in_force.indicators_db_schema, "other"), in_force)
    with pytest.raises(OperationError, match="take its partitions"):
        Rebuild(with_target(in_force, "ind_other", in_force.indicators_group_id), in_force)
    with pytest.raises(OperationError, match="KAFKA_BOOTSTRAP_SERVERS"):
        Rebuild(IndicatorSettings(kafka_bootstrap_servers=None), in_force)
