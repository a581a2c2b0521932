"""``POST /v1/sources/fineract/hooks``: Fineract (Mifos X) Web hooks for client exits.

Fineract publishes no external event when a client is closed or withdrawn; its hooks do fire on
the ``CLIENT``/``CLOSE`` and ``CLIENT``/``WITHDRAW`` commands (docs/fineract.md). They become
``spm.client.exited.v1`` through the ingest pipeline (validation, pseudonymisation, dedup on
``(source, id)``; the id is the Fineract command id, so a re-sent hook is a duplicate). Every
other hook is acknowledged and ignored, so a broadly configured hook does no harm.

Fineract's Web hook template cannot set headers, so besides ``Authorization: Bearer <key>`` the
key may come as the ``api_key`` query parameter of the configured payload URL (keep such URLs out
of access logs).
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.auth import Principal, keyring_of, verified_principal
from services.ingest.api.body import BodyError, parse_json, read_body, source_refused
from services.ingest.api.deps import StateDep
from services.ingest.api.events import answer
from services.ingest.fineract.mapping import source_of

router = APIRouter(prefix="/v1/sources/fineract", tags=["sources"])

SCOPE = "ingest:write"
EXIT_ACTIONS = {
    "CLOSE": ("closureDate", "closureReasonId"),
    "WITHDRAW": ("withdrawalDate", "withdrawalReasonId"),
}
DEFAULT_EXIT_TYPES = {"CLOSE": "voluntary", "WITHDRAW": "voluntary"}
_bearer = HTTPBearer(auto_error=False)

# Java DateTimeFormatter letters -> strptime directives (the patterns Fineract clients send)
_JAVA_TOKENS = [
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MMMM", "%B"),
    ("MMM", "%b"),
    ("MM", "%m"),
    ("M", "%m"),
    ("dd", "%d"),
    ("d", "%d"),
    ("EEEE", "%A"),
    ("EEE", "%a"),
]
_TOKEN_RE = re.compile("|".join(re.escape(j) for j, _ in _JAVA_TOKENS) + r"|'[^']*'")

_EXAMPLE = {
    "entityName": "CLIENT",
    "actionName": "CLOSE",
    "createdBy": 1,
    "request": {
        "closureDate": "15 November 2026",
        "closureReasonId": 17,
        "dateFormat": "dd MMMM yyyy",
        "locale": "en",
    },
    "officeId": 2,
    "clientId": 1042,
    "response": {"commandId": 123, "resourceId": 1042, "clientId": 1042},
    "timestamp": "2026-11-15T14:30:00.123Z",
}


async def hook_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Bearer key, or ``?api_key=`` (Fineract hooks cannot send headers of their own)."""
    principal = verified_principal(request)
    if principal is not None:
        return _with_scope(principal)
    token = credentials.credentials if credentials is not None else None
    token = token or request.query_params.get("api_key")
    if not token:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing credential (Bearer or api_key)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = keyring_of(request).authenticate(token)
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown API key")
    return _with_scope(principal)


def _with_scope(principal: Principal) -> Principal:
    if not principal.has(SCOPE):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"this key lacks scope {SCOPE}")
    return principal


HookCallerDep = Annotated[Principal, Depends(hook_principal)]


@router.post(
    "/hooks",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Fineract Web hook (client CLOSE / WITHDRAW -> spm.client.exited.v1)",
    description="Configure a Fineract hook with template `Web`, content type `json`, and this "
    "URL. Client CLOSE and WITHDRAW become spm.client.exited.v1; other hooks are answered 202 "
    "with `ignored`. The tenant comes from the `Fineract-Platform-TenantId` header.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"examples": {"close": {"value": _EXAMPLE}}}},
        }
    },
)
async def post_hook(request: Request, principal: HookCallerDep, state: StateDep) -> Response:
    raw = await read_body(request)
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise BodyError(status.HTTP_422_UNPROCESSABLE_CONTENT, "expected a JSON object")
    entity = _header(request, "Entity") or str(body.get("entityName") or "")
    action = _header(request, "Action") or str(body.get("actionName") or "")
    if entity.upper() != "CLIENT" or action.upper() not in EXIT_ACTIONS:
        return _ignored(f"{entity} {action} is not a client exit")
    if str(body.get("status", "")).lower() == "exception":
        return _ignored("the command failed in Fineract")
    tenant = request.headers.get("Fineract-Platform-TenantId") or request.headers.get(
        "X-Mifos-Platform-TenantId"
    )
    if not tenant:
        raise BodyError(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "the tenant is unknown",
            field="Fineract-Platform-TenantId",
            reason="header is required",
        )
    source = source_of(tenant)
    if not principal.may_send(source):
        raise source_refused("source")
    exit_types = getattr(state.settings, "fineract_hook_exit_types", DEFAULT_EXIT_TYPES)
    event = exit_event(body, action.upper(), source, exit_types)
    result = await state.pipeline.ingest([event])
    return answer(result)


def exit_event(
    body: dict[str, Any], action: str, source: str, exit_types: dict[str, str]
) -> dict[str, Any]:
    """The input-form ``spm.client.exited.v1`` of one hook body (invalid parts left for the
    validator to name)."""
    request = _object(body.get("request"))
    response = _object(body.get("response"))
    date_field, reason_field = EXIT_ACTIONS[action]
    client_id = body.get("clientId") or response.get("clientId") or response.get("resourceId")
    data: dict[str, Any] = {
        "client_id": None if client_id is None else str(client_id),
        "branch_id": None if body.get("officeId") is None else str(body["officeId"]),
        "exited_on": _hook_date(request.get(date_field), request.get("dateFormat"), date_field),
        "exit_type": exit_types.get(action, "voluntary"),
    }
    if request.get(reason_field) is not None:
        data["reason_code"] = str(request[reason_field])
    command = response.get("commandId")
    if command is not None:
        event_id = f"hook:{command}:{action}"
    else:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode())
        event_id = f"hook:{digest.hexdigest()[:32]}"
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": "spm.client.exited.v1",
        "time": _hook_time(body.get("timestamp")),
        "data": {k: v for k, v in data.items() if v is not None},
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _header(request: Request, name: str) -> str | None:
    return request.headers.get(f"X-Fineract-{name}") or request.headers.get(f"X-Mifos-{name}")


def _hook_date(value: Any, java_format: Any, field: str) -> Any:
    """The request's date as ISO text; what cannot be read is passed on for the validator to
    reject with the field name. A ``[year, month, day]`` that is no date (``[2025, 13, 1]``)
    is refused here, naming the hook's field."""
    if isinstance(value, list) and len(value) == 3 and all(isinstance(v, int) for v in value):
        try:
            return date(value[0], value[1], value[2]).isoformat()
        except (ValueError, OverflowError) as exc:
            raise BodyError(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                "the hook's date is not a date",
                field=f"request.{field}",
                reason=str(exc),
            ) from None
    if not isinstance(value, str):
        return value
    if isinstance(java_format, str):
        try:
            return datetime.strptime(value, _strptime_format(java_format)).date().isoformat()
        except ValueError:
            pass
    return value


def _strptime_format(java: str) -> str:
    def token(match: re.Match[str]) -> str:
        text = match.group(0)
        if text.startswith("'"):
            return text[1:-1].replace("%", "%%")
        return dict(_JAVA_TOKENS)[text]

    return _TOKEN_RE.sub(token, java)


def _hook_time(value: Any) -> str:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is not None:
                return parsed.isoformat()
        except ValueError:
            pass
    return datetime.now(UTC).isoformat()


def _ignored(reason: str) -> Response:
    body = {"accepted": 0, "duplicates": 0, "rejected": 0, "results": [], "ignored": reason}
    return JSONResponse(body, status.HTTP_202_ACCEPTED)
