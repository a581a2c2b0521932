"""Ingest: the door through which core-banking and CRM events enter SPM Monitor.

Consumes: CloudEvents over HTTP (``POST /v1/events``, ``/v1/events/batch`` as JSON or NDJSON),
CRM complaint records (``POST /v1/sources/crm/complaints``, by a field mapping), CSV exports
(``spm import csv``) and Apache Fineract's external events (``fineract/``).

Produces: validated, pseudonymised, deduplicated canonical events (contract v1) on
``spm.clients.v1``, ``spm.loans.v1`` and ``spm.complaints.v1``; input the Kafka adapters cannot
accept goes to ``spm.ingest.deadletter.v1`` with the reason.

Stores (own schema ``ingest``): ``ingested_events`` — the (source, id) of every event published
with a hash of its content (a re-sent id is a ``duplicate`` with the same content, a ``conflict``
with other content), kept for the dedup retention (default 30 days) — plus the Fineract
adapter's tables.

Every adapter goes through :mod:`services.ingest.pipeline`; raw client/officer ids become keyed
pseudonyms in :mod:`services.ingest.pseudonym` and never reach a topic or a log.
"""
