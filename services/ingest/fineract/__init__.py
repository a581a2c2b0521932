"""Apache Fineract adapter of the ingest service.

Consumes Fineract's external-events topic (``FINERACT_TOPIC``, default ``external-events``; Avro
single-object encoding, key = aggregate root id as an 8-byte big-endian long), and Fineract hooks
(``POST /v1/sources/fineract/hooks``, client CLOSE / WITHDRAW).
Produces canonical v1 events on ``spm.clients.v1`` / ``spm.loans.v1`` and what it cannot accept on
``spm.ingest.deadletter.v1`` (headers ``error.reason``, ``error.source``, ``error.topic``,
``error.partition``, ``error.offset``), each exactly once.
Stores (PostgreSQL schema ``ingest_fineract``): consumer offsets, applied messages (tenant +
idempotencyKey), per-aggregate high-water marks, the loan -> client/branch/product table, events
parked until their loan is known, and the outbox with the relay's progress.
Business events it maps to nothing are counted per type (``ignored.py``); which, and why, is
listed in ``docs/fineract-unmapped.md``. Undone disbursals and write-offs become
``loan.transaction_reversed`` events of the transaction ids the adapter published them with
(contract v1.1).
"""
