"""The report reads everything through the services' HTTP APIs, as the dashboard does: its
figures are the API's figures by construction, and it needs only an API key, never a database.

``ApiReader`` knows where each API lives (one base URL per service, or one ASGI app in the
embedded mode) and follows the ``X-Next-Cursor`` paging of list endpoints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import date, datetime
from typing import Any

import httpx

from services.common.errors import SpmError

API_NAMES = ("indicators", "objectives", "alerts")
MAX_PAGES = 1000
"""A list longer than this many pages is a paging bug, not data: stop instead of looping."""


class ReportError(SpmError):
    """A service answered something the report cannot be built from (with the reason)."""


class ApiReader:
    """GETs against the services' APIs with one bearer key.

    ``bases`` maps an API name to its base URL (``http://indicators:8002``); a missing or empty
    one means ``client``'s own base URL (the embedded mode: every API on one origin).
    """

    def __init__(self, client: httpx.AsyncClient, bases: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.bases = {k: v.rstrip("/") for k, v in (bases or {}).items() if v}

    def url(self, api: str, path: str) -> str:
        return self.bases.get(api, "") + path

    async def response(
        self, api: str, path: str, params: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        try:
            return await self.client.get(self.url(api, path), params=dict(params or {}))
        except httpx.HTTPError as exc:
            raise ReportError(f"the {api} service cannot be reached ({exc})") from exc

    async def get(
        self, api: str, path: str, params: Mapping[str, Any] | None = None, missing_ok: bool = False
    ) -> Any:
        """The JSON answer; with ``missing_ok``, None for a 404 (something never seen)."""
        resp = await self.response(api, path, params)
        if missing_ok and resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise ReportError(f"{api} {path} answered {resp.status_code}: {_detail(resp)}")
        return resp.json()

    async def pages(
        self, api: str, path: str, params: Mapping[str, Any] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every item of a cursor-paged list."""
        query = dict(params or {})
        for _ in range(MAX_PAGES):
            resp = await self.response(api, path, query)
            if resp.status_code != 200:
                raise ReportError(f"{api} {path} answered {resp.status_code}: {_detail(resp)}")
            for item in resp.json():
                yield item
            cursor = resp.headers.get("X-Next-Cursor")
            if not cursor:
                return
            query["cursor"] = cursor
        raise ReportError(f"{api} {path}: more than {MAX_PAGES} pages")


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    return str(body.get("detail", body))[:300] if isinstance(body, dict) else str(body)[:300]


def _day(value: Any) -> date | None:
    if not value:
        return None
    text = str(value)
    try:
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        return None


async def fetch_actions(reader: ApiReader, first: date, last: date) -> list[dict[str, Any]]:
    """The corrective actions of the month from the alerts service's ``GET /v1/actions``: those
    opened, done or reviewed between ``first`` and ``last``.

    The one place the report learns about actions: swap this function to read them elsewhere.
    """
    found: list[dict[str, Any]] = []
    async for action in reader.pages("alerts", "/v1/actions"):
        days = (_day(action.get(k)) for k in ("created_at", "done_at", "review_date"))
        if any(d is not None and first <= d <= last for d in days):
            found.append(action)
    return found
