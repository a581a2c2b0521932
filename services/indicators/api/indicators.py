"""The indicator API (scope ``indicators:read``): current values, series, breakdowns, catalog.

Every value leaves filtered by the caller's branch scope (services.common.scope): lists and CSV
keep only visible segments, a request naming an invisible segment answers 403.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import NotFound, Unprocessable
from services.common.scope import DataScope, ScopeDep
from services.indicators import query
from services.indicators.api.deps import ReaderDep, ServiceDep
from services.indicators.api.render import (
    DecimalJSONResponse,
    csv_response,
    value_fields,
    wants_csv,
)
from services.indicators.catalog import (
    GENDERS,
    Indicator,
    Seen,
    human_formula,
    indicators,
    lookup,
)
from services.indicators.config import IndicatorSettings

MAX_SERIES_DAYS = 3700
DEFAULT_SERIES_DAYS = 90
SEGMENT_RE = re.compile(
    r"^(all|branch:[A-Za-z0-9_.:-]{1,64}|product:[A-Za-z0-9_.:-]{1,64}"
    r"|gender:(female|male|other|unknown)|rural:(true|false))$"
)
ITEM_COLUMNS = ("code", "segment", "as_of", "value", "numerator", "denominator", "n", "unit")
POINT_COLUMNS = ("code", "segment", "as_of", "value", "numerator", "denominator", "n")


router = APIRouter(prefix="/v1", tags=["indicators"])


def _check_segment(
    segment: str, ind: Indicator | None, seen: dict[str, list[str]], scope: DataScope
) -> None:
    if not SEGMENT_RE.fullmatch(segment):  # `$` alone admits a final newline
        raise Unprocessable(
            "query.segment",
            "must be all, branch:<id>, product:<id>, gender:<female|male|other|unknown> "
            "or rural:<true|false>",
        )
    scope.check(segment, "query.segment")  # before "never seen": no probing other branches
    dim, _, value = segment.partition(":")
    if ind is not None and dim not in ind.segments:
        raise Unprocessable("query.segment", f"{ind.code} has no {dim} segments")
    if dim in ("branch", "product") and value not in seen.get(dim, []):
        raise NotFound("query.segment", f"{segment} has never been seen")


def _indicator(code: str, seen: Seen, field: str = "path.code") -> Indicator:
    ind = lookup(code, seen)
    if ind is None:
        raise NotFound(field, f"unknown indicator {code}")
    return ind


async def _as_of(
    session: AsyncSession, as_of: date | None, field: str = "query.as_of"
) -> date | None:
    current = await query.business_date(session)
    if as_of is None:
        return current
    if current is None:
        raise Unprocessable(field, "no values yet: no event has been processed")
    if as_of > current:
        raise Unprocessable(field, f"after the business date {current.isoformat()}")
    return as_of


def _unit(ind: Indicator, settings: IndicatorSettings) -> str:
    return settings.institution_currency if ind.unit == "currency" else ind.unit


@router.get("/catalog", summary="Every indicator: definition, formula, window, unit, segments")
async def catalog(service: ServiceDep, _: ReaderDep) -> Response:
    settings = service.settings
    async with service.reads.read() as session:
        seen = await query.seen(session)
    items = [
        {
            "code": ind.code,
            "name": ind.name,
            "kind": ind.kind,
            "window_days": ind.window,
            "unit": _unit(ind, settings),
            "family": ind.family,
            "formula": human_formula(ind),
            "numerator": [f"{t.measure}({t.component})" for t in ind.numerator],
            "denominator": None
            if ind.denominator is None
            else [f"{t.measure}({t.component})" for t in ind.denominator],
            "multiplier": ind.multiplier,
            "quantile": ind.quantile,
            "segments": list(ind.segments),
            "serves": ind.serves,
            "reference": ind.reference or None,
            "parameters": list(ind.parameters),
        }
        for ind in indicators(service.seen(seen))
    ]
    parameters: dict[str, Any] = {
        "sla_days": settings.indicators_sla_days,
        "dsti_limit": settings.indicators_dsti_limit,
        "lender_count": settings.indicators_lender_count,
        "gni_per_capita": settings.indicators_gni_per_capita,
        "dropout_delay_days": settings.indicators_dropout_delay_days,
        "min_cell_size": settings.indicators_min_cell_size,
        "poverty_line": settings.indicators_poverty_line,
        "currency": settings.institution_currency,
        "timezone": settings.institution_timezone,
        "genders": list(GENDERS),
    }
    return DecimalJSONResponse({"parameters": parameters, "indicators": items})


@router.get("/indicators", summary="Values on one day (default: the business date)")
async def current(
    request: Request,
    service: ServiceDep,
    _: ReaderDep,
    scope: ScopeDep,
    code: str | None = None,
    segment: str | None = None,
    as_of: date | None = None,
) -> Response:
    async with service.reads.read() as session:
        seen = await query.seen(session)
        ind = _indicator(code, service.seen(seen), "query.code") if code is not None else None
        if segment is not None:
            _check_segment(segment, ind, seen, scope)
        day = await _as_of(session, as_of)
        values = {} if day is None else await query.snapshot(
            session, day, service.parameters, None if ind is None else [ind]
        )  # fmt: skip
    catalog = {i.code: i for i in indicators(service.seen(seen))}
    if ind is not None:
        catalog[ind.code] = ind
    items = [
        {"code": c, "segment": s, "as_of": day, **value_fields(v),
         "unit": _unit(catalog[c], service.settings)}
        for (c, s), v in values.items()
        if (segment is None or s == segment) and scope.sees(s)
    ]  # fmt: skip
    if segment is not None and ind is not None and not items and day is not None:
        raise NotFound("query.segment", f"{segment} has never been seen")
    if wants_csv(request):
        return csv_response(ITEM_COLUMNS, items, "indicators")
    return DecimalJSONResponse({"as_of": day, "items": items})


# ``{code:path}``: a poverty line is any text (``poverty_outreach_entry.<line>``), "/" included
@router.get("/indicators/{code:path}/series", summary="One value per day")
async def series(
    request: Request,
    service: ServiceDep,
    _: ReaderDep,
    scope: ScopeDep,
    code: str,
    segment: str = "all",
    first: Annotated[date | None, Query(alias="from")] = None,
    last: Annotated[date | None, Query(alias="to")] = None,
) -> Response:
    async with service.reads.read() as session:
        seen = await query.seen(session)
        ind = _indicator(code, service.seen(seen))
        _check_segment(segment, ind, seen, scope)
        end = await _as_of(session, last, "query.to")
        if end is None:
            points = []
        else:
            start = first or end - timedelta(days=DEFAULT_SERIES_DAYS - 1)
            if start > end:
                raise Unprocessable("query.from", "after to")
            if (end - start).days >= MAX_SERIES_DAYS:
                raise Unprocessable("query.from", f"at most {MAX_SERIES_DAYS} days per series")
            points = await query.series(session, ind, segment, start, end, service.parameters)
    rows = [{"as_of": d, **value_fields(v)} for d, v in points]
    if wants_csv(request):
        return csv_response(
            POINT_COLUMNS, [{"code": code, "segment": segment, **r} for r in rows], "series"
        )
    return DecimalJSONResponse({"code": code, "segment": segment, "points": rows})


@router.get("/indicators/{code:path}/breakdown", summary="One value per segment of a dimension")
async def breakdown(
    request: Request,
    service: ServiceDep,
    _: ReaderDep,
    scope: ScopeDep,
    code: str,
    by: Literal["branch", "product", "gender", "rural"],
    as_of: date | None = None,
) -> Response:
    async with service.reads.read() as session:
        seen = await query.seen(session)
        ind = _indicator(code, service.seen(seen))
        if by not in ind.segments:
            raise Unprocessable("query.by", f"{code} has no {by} segments")
        day = await _as_of(session, as_of)
        values = {} if day is None else await query.snapshot(
            session, day, service.parameters, [ind]
        )  # fmt: skip
    items = [
        {"code": code, "segment": s, "as_of": day, **value_fields(v),
         "unit": _unit(ind, service.settings)}
        for (_, s), v in values.items()
        if s.startswith(f"{by}:") and scope.sees(s)
    ]  # fmt: skip
    if wants_csv(request):
        return csv_response(ITEM_COLUMNS, items, "breakdown")
    return DecimalJSONResponse({"code": code, "by": by, "as_of": day, "items": items})
