"""The alert service: detects drift of indicators from their social targets and tells staff.

Consumes ``spm.indicator.changed.v1`` (spm.indicators.v1) and ``spm.target.changed.v1``
(spm.objectives.v1, read as a compacted table). Produces ``spm.alert.changed.v1`` (spm.alerts.v1)
and ``spm.action.changed.v1`` (spm.actions.v1, corrective actions: ``actions.py``) through the
shared Kafka outbox, and notifications (e-mail over SMTP, webhooks) through its own
notification outbox. Stores, in the ``alerts`` schema: targets, recent indicator observations,
alerts (one row per episode), corrective actions and their history, silences, notification
groups (the notification log), the notification outbox, consumer offsets and processed-event keys.
"""
