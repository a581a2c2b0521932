"""Settings of the indicator service (environment variables, case-insensitive).

Indicator parameters (they change what the engine stores: a change needs a rebuild):

- ``INDICATORS_SLA_DAYS`` (30): complaint resolution SLA in days.
- ``INDICATORS_DSTI_LIMIT`` (0.5): instalment ÷ household income above which a disbursement
  breaches.
- ``INDICATORS_LENDER_COUNT`` (3): k, other active lenders that make a disbursement "multiple".
- ``INDICATORS_GNI_PER_CAPITA`` (unset): GNI per capita in local currency; without it
  ``avg_balance_gni_ratio`` is null (read-time only: no rebuild needed).
- ``INDICATORS_DROPOUT_DELAY_DAYS`` (90): days after the last loan ended before an inferred exit.
- ``INDICATORS_POVERTY_LINE`` ("national"): the institution's primary poverty line;
  ``poverty_outreach_entry`` averages the assessments against it only (every line seen also has
  its own ``poverty_outreach_entry.<line>``). Recorded like the others, so the published
  ``poverty_outreach_entry`` never silently changes meaning.
- ``INSTITUTION_TIMEZONE`` (common setting): the time zone that dates events.

The first start on a schema records these (``stored_parameters``); a later start with other values
refuses to run (``ParametersChanged``), because the stored aggregates were computed with the old
ones. Rebuild on a fresh ``INDICATORS_DB_SCHEMA`` (and group) instead.

Runtime:

- ``INDICATORS_GROUP_ID`` ("spm-indicators"): the consumer group of the engine.
- ``INDICATORS_TOPIC_SUFFIX`` (""): appended to every topic name the service uses (input topics,
  dead-letter topic, output topic), e.g. ``-t1`` makes it consume ``spm.clients.v1-t1``; lets
  tests isolate runs on a shared broker.
- ``INDICATORS_DB_SCHEMA`` ("indicators"): the PostgreSQL schema (one schema per consumer group).
- ``INDICATORS_BATCH_SIZE`` (20000): records applied per database transaction (at most); large
  batches amortise recomputing the entities they touch while the engine catches up.
- ``INDICATORS_MIN_CELL_SIZE`` (0 = off): values whose n or denominator is below it are withheld.
- ``INDICATORS_TICK_SECONDS`` (60): period of the daily tick.
- ``INDICATORS_FOLLOW_CLOCK`` (false): when true the tick advances the business date to today (in
  the institution's time zone) even without events; otherwise the business date is the largest
  event date seen.
- ``INDICATORS_EMIT_INTERVAL_SECONDS`` (5): how often the emitter looks for changed values
  (every 5th interval only while the engine is catching up, i.e. its fetches come back full).
- ``INDICATORS_EMITTER`` (true): run the value-stream emitter in this instance.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from contracts.topics import CLIENTS, COMPLAINTS, DEADLETTER, INDICATORS, LOANS
from services.common.settings import CommonSettings

DEFINITIONS = "1.1"
"""The version of the definitions (docs/indicators.md) the engine computes (1.1: corrections,
loans of unregistered clients in their own branch and product, poverty lines kept apart).
Recorded with the parameters: aggregates stored under older definitions must be rebuilt, not
added to."""


class IndicatorSettings(CommonSettings):
    indicators_sla_days: int = Field(default=30, ge=0, le=3650)
    indicators_dsti_limit: Decimal = Field(default=Decimal("0.5"), gt=0)
    indicators_lender_count: int = Field(default=3, ge=0, le=100)
    indicators_gni_per_capita: Decimal | None = Field(default=None, gt=0)
    indicators_dropout_delay_days: int = Field(default=90, ge=0, le=3650)
    indicators_poverty_line: str = Field(default="national", min_length=1, max_length=64)

    indicators_group_id: str = Field(default="spm-indicators", min_length=1, max_length=200)
    indicators_topic_suffix: str = Field(default="", max_length=100)
    indicators_db_schema: str = Field(default="indicators", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    indicators_batch_size: int = Field(default=20_000, ge=1, le=100_000)
    indicators_min_cell_size: int = Field(default=0, ge=0)
    indicators_tick_seconds: float = Field(default=60.0, gt=0)
    indicators_follow_clock: bool = False
    indicators_emit_interval_seconds: float = Field(default=5.0, gt=0)
    indicators_emitter: bool = True

    def topic(self, base: str) -> str:
        return base + self.indicators_topic_suffix

    @property
    def clients_topic(self) -> str:
        return self.topic(CLIENTS.name)

    @property
    def loans_topic(self) -> str:
        return self.topic(LOANS.name)

    @property
    def complaints_topic(self) -> str:
        return self.topic(COMPLAINTS.name)

    @property
    def deadletter_topic(self) -> str:
        return self.topic(DEADLETTER.name)

    @property
    def output_topic(self) -> str:
        return self.topic(INDICATORS.name)

    def stored_parameters(self) -> dict[str, str]:
        """The settings the stored aggregates depend on, by environment variable, as text."""
        return {
            "INDICATORS_SLA_DAYS": str(self.indicators_sla_days),
            "INDICATORS_DSTI_LIMIT": format(self.indicators_dsti_limit.normalize(), "f"),
            "INDICATORS_LENDER_COUNT": str(self.indicators_lender_count),
            "INDICATORS_DROPOUT_DELAY_DAYS": str(self.indicators_dropout_delay_days),
            "INDICATORS_POVERTY_LINE": self.indicators_poverty_line,
            "INSTITUTION_TIMEZONE": self.institution_timezone,
            "INDICATORS_DEFINITIONS": DEFINITIONS,
        }
