"""Cursor (keyset) paging shared by every list endpoint.

Why keyset and not OFFSET: rows inserted while a client walks a list would shift an offset and
make it skip or repeat rows. A cursor names the last row seen by its (sort key, id), and the next
page is "strictly after that row" in the list's order, so inserts ahead of the cursor never move
what is behind it. The cursor is opaque to clients (URL-safe base64 of JSON) so its content may
change without breaking them.

The body of a list stays a JSON array (existing clients read it as one); the cursor of the next
page travels in the ``X-Next-Cursor`` response header, absent on the last page.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query, Response
from pydantic import AfterValidator
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.sql.elements import KeyedColumnElement

NEXT_CURSOR_HEADER = "X-Next-Cursor"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 200

Key = tuple[datetime | int, str]
"""A row's place in its list: its sort value (a timestamp or a sequence number) and its id."""
T = TypeVar("T")


class CursorError(ValueError):
    """A cursor this API did not issue (or that was altered)."""


def encode(key: Key) -> str:
    """The opaque cursor of a row whose (sort key, id) is ``key``."""
    sort = key[0].isoformat() if isinstance(key[0], datetime) else key[0]
    raw = json.dumps([sort, key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str) -> Key:
    """The (sort key, id) inside ``cursor``; :class:`CursorError` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort, ident = json.loads(raw)
        if not isinstance(ident, str):
            raise CursorError("not a cursor this API issued")
        if type(sort) is int:
            return sort, ident
        if not isinstance(sort, str):
            raise CursorError("not a cursor this API issued")
        parsed = datetime.fromisoformat(sort)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CursorError("not a cursor this API issued") from exc
    if parsed.tzinfo is None:
        raise CursorError("not a cursor this API issued")
    return parsed, ident


def _checker(kind: type) -> Callable[[str | None], str | None]:
    def check(cursor: str | None) -> str | None:
        # ValueError here becomes FastAPI's 422 naming ``cursor``.
        if cursor is not None and not isinstance(decode(cursor)[0], kind):
            raise CursorError("not a cursor of this list")
        return cursor

    return check


_DOC = f"Opaque; the {NEXT_CURSOR_HEADER} header of the previous page."
CursorParam = Annotated[
    str | None, Query(max_length=512, description=_DOC), AfterValidator(_checker(datetime))
]
"""The cursor of a list ordered by a timestamp."""
SeqCursorParam = Annotated[
    str | None, Query(max_length=512, description=_DOC), AfterValidator(_checker(int))
]
"""The cursor of a list ordered by a sequence number (versions)."""
LimitParam = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description="Rows per page (the page may be shorter).")
]


def after(
    sort: KeyedColumnElement[Any],
    ident: KeyedColumnElement[Any],
    cursor: str | None,
    *,
    ascending: bool = False,
) -> ColumnElement[bool] | None:
    """SQL "strictly after the cursor's row" for a list ordered by (sort, id), both DESC unless
    ``ascending``. ``cursor`` has passed the list's :data:`CursorParam` or :data:`SeqCursorParam`,
    so its sort value has the column's kind."""
    if cursor is None:
        return None
    value, key = decode(cursor)
    if ascending:
        return or_(sort > value, and_(sort == value, ident > key))
    return or_(sort < value, and_(sort == value, ident < key))


def page(rows: Sequence[T], limit: int, key: Callable[[T], Key], response: Response) -> list[T]:
    """The first ``limit`` of ``rows`` (fetched with ``limit + 1``), setting the next cursor."""
    if len(rows) > limit:
        response.headers[NEXT_CURSOR_HEADER] = encode(key(rows[limit - 1]))
    return list(rows[:limit])
