"""Message bus: Apache Kafka in the distributed mode, an in-process bus in the embedded mode."""

from services.common.bus.base import (
    Bus,
    BusError,
    BusUnavailable,
    Consumer,
    Delivery,
    Headers,
    Message,
    OnAssign,
    OnRevoke,
    Producer,
    Record,
    TopicPartition,
    event_message,
    partition_for_key,
)
from services.common.bus.deadletter import dead_letter
from services.common.bus.kafka import KafkaBus
from services.common.bus.memory import MemoryBus
from services.common.settings import CommonSettings
from services.common.transport import kafka_client_options

__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "Consumer",
    "Delivery",
    "Headers",
    "KafkaBus",
    "MemoryBus",
    "Message",
    "OnAssign",
    "OnRevoke",
    "Producer",
    "Record",
    "TopicPartition",
    "create_bus",
    "dead_letter",
    "event_message",
    "partition_for_key",
]


def create_bus(settings: CommonSettings) -> Bus:
    """Kafka when brokers are configured, otherwise the in-process bus."""
    if settings.kafka_bootstrap_servers:
        return KafkaBus(
            settings.kafka_bootstrap_servers,
            client_id=settings.kafka_client_id,
            request_timeout_ms=settings.kafka_request_timeout_ms,
            security=kafka_client_options(settings),
        )
    return MemoryBus()
