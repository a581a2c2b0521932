"""The staff dashboard: objectives and targets at a glance, indicator charts, alerts.

Served by the services (``dashboard_router()``), no front-end build step. Consumes the public
HTTP APIs of the indicator, objectives and alert services (and the embedded demo's mail sink)
from the browser, with the signed-in user's API key. Produces and stores nothing server-side.
"""

from spm.dashboard.router import dashboard_router

__all__ = ["dashboard_router"]
