"""Responses with decimals as JSON numbers at full precision, and CSV on ``Accept: text/csv``.

The standard encoder would turn a Decimal into a float (or a string); a reader comparing counts
and sums exactly needs the exact literal, so this small encoder writes it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from services.indicators.query import Value

CSV_TYPE = "text/csv"


def number(value: Decimal) -> str:
    """A JSON number literal without exponent; integral values without a fraction."""
    if value == value.to_integral_value():
        return str(int(value))
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def encode(obj: Any) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, Decimal):
        return number(obj)
    if isinstance(obj, int | float | str):
        return json.dumps(obj)
    if isinstance(obj, date):
        return json.dumps(obj.isoformat())
    if isinstance(obj, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, Sequence):
        return "[" + ",".join(encode(v) for v in obj) + "]"
    raise TypeError(f"cannot encode {type(obj).__name__}")


class DecimalJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content).encode()


def value_fields(v: Value) -> dict[str, Any]:
    return {"value": v.value, "numerator": v.numerator, "denominator": v.denominator, "n": v.n}


def wants_csv(request: Request) -> bool:
    return CSV_TYPE in request.headers.get("accept", "")


def csv_response(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(col)) for col in columns])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{name}.csv"'},
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
