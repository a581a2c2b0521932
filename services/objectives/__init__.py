"""Objectives service: the institution's social objectives and their machine-checkable targets.

Consumes: nothing from Kafka; HTTP (``/v1/objectives``, ``/v1/targets``) and strategy files
(``spm objectives import|export``).
Produces: ``spm.target.changed.v1`` on ``spm.objectives.v1`` (compacted, key = target id; the full
target state, or ``status = retired``), through a transactional outbox.
Stores (schema ``objectives``): objectives, targets, the append-only version history (who, when,
why, before/after, diff) and the outbox.
"""
