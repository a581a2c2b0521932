"""Indicator service: exactly-once rolling social performance indicators and their API.

Consumes ``spm.clients.v1``, ``spm.loans.v1`` and ``spm.complaints.v1`` (one consumer group).
Produces ``spm.indicator.changed.v1`` on ``spm.indicators.v1`` (one emitter at a time) and sends
undecodable or contract-invalid input records to ``spm.ingest.deadletter.v1``.
Stores, in its own schema (``indicators``): the accepted facts per input partition (the state is
rebuilt from them on assignment), additive daily deltas per (partition, component, segment set,
day), complaint resolution times, dedup rows, consumer offsets, the business date and the last
published value per indicator and segment. The catalog is ``catalog.py``; the exact rules live in
``contributions.py`` (what each client, loan and complaint contributes to the daily deltas).
"""
