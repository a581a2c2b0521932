"""Real receivers for the alert tests: an SMTP server (aiosmtpd) and a tiny HTTP server."""

from __future__ import annotations

import asyncio
import email
import json
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs

import httpx
from aiosmtpd.controller import Controller

from services.alerts.notify.gsm import BASIC, EXTENSION, septets
from tests.infra import free_port as free_port  # re-exported: the alert tests import it here

REPO = Path(__file__).resolve().parents[2]


class MailHandler:
    """Collects messages; refuses the first ``refuse`` DATA commands with 451."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = 0
        self.refused = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            if self.refused < self.refuse:
                self.refused += 1
                return "451 4.3.0 try again later"
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def mail_part(mail: Message, index: int = 0) -> str:
    """The decoded text of one part of a multipart notification (0: plain text, 1: HTML)."""
    parts = mail.get_payload()
    assert isinstance(parts, list), "a notification is multipart"
    part = parts[index]
    assert isinstance(part, Message)
    raw = part.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode()


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.handler = MailHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[Message]:
        return self.handler.messages

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes = b""
    """The body's bytes as received (what a signature covers)."""


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """An HTTP/1.1 message head: its first line and its headers (names lower-cased)."""
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return first, headers


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request (head and ``Content-Length`` body); None when the client closed the
    connection without sending one. ``body`` is left None: the receiver decodes ``raw``."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # a client that closed an idle connection: nothing was sent
    first, headers = parse_head(head)
    method, path, _ = first.split(" ", 2)
    raw = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, None, raw)


class Listener:
    """A tiny asyncio HTTP server on ``self.port``: each connection carries one request, which
    ``_answer`` answers; the connection is closed after it."""

    port: int
    _server: asyncio.Server | None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await read_request(reader)
            if request is not None:
                await self._answer(request, reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()

    async def _answer(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        raise NotImplementedError


@dataclass
class HttpReceiver(Listener):
    """A minimal HTTP/1.1 server that records JSON POSTs and answers 200; or, to the first
    requests, the statuses in ``fail_with`` (in order), then no answer at all to the next
    ``stall`` ones (the sender times out)."""

    port: int = field(default_factory=free_port)
    requests: list[Request] = field(default_factory=list)
    fail_with: list[int] = field(default_factory=list)
    stall: int = 0
    answered: list[int] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _answer(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request.body = json.loads(request.raw or b"null")
        self.requests.append(request)
        if self.stall and not self.fail_with:
            self.stall -= 1
            await reader.read()  # never answer, until the client gives up and hangs up
            return
        code = self.fail_with.pop(0) if self.fail_with else 200
        self.answered.append(code)
        answer = f"HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        writer.write(answer.encode())
        await writer.drain()


class Proc:
    """One service run as ``spm serve <service>`` in its own process."""

    def __init__(
        self,
        env: dict[str, str],
        port: int,
        log: Path,
        service: str = "alerts",
        args: tuple[str, ...] = (),
    ) -> None:
        self.service = service
        self.args = args
        self.env = env
        self.log = log
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **extra: str) -> None:
        with self.log.open("ab") as log:
            self._spawn(log, extra)

    def _spawn(self, log: BinaryIO, extra: dict[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
            [
                str(REPO / ".venv" / "bin" / "spm"),
                *("serve", self.service, "--port", str(self.port), *self.args),
            ],
            cwd=REPO,
            env={**self.env, **extra},
            stdout=log,  # the service's logs
            stderr=log,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def ready(self, within: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with httpx.AsyncClient() as client:
            while loop.time() < deadline:
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[
                    -3000:
                ]
                try:
                    r = await client.get(f"http://127.0.0.1:{self.port}/readyz")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.service} did not become ready: {self.log.read_text()[-2000:]}")


@dataclass
class SmsGatewayServer(Listener):
    """Africa's Talking's messaging endpoint as documented: ``POST /version1/messaging``,
    form-encoded ``username``, ``to``, ``message`` (optional ``from``), ``apiKey`` header,
    ``Accept: application/json``; answers 201 with ``SMSMessageData.Recipients``. A request that
    breaks the contract is answered 400 and recorded in ``violations``; ``outages`` requests are
    answered 503 before anything is accepted (nothing is sent)."""

    api_key: str
    username: str = "sandbox"
    port: int = field(default_factory=free_port)
    accepted: list[dict[str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    outages: int = 0
    seen: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check(self, method: str, path: str, headers: dict[str, str], body: bytes) -> list[str]:
        wrong = []
        if method != "POST" or path != "/version1/messaging":
            wrong.append(f"{method} {path}")
        if headers.get("content-type", "").split(";")[0] != "application/x-www-form-urlencoded":
            wrong.append(f"content-type {headers.get('content-type')}")
        if headers.get("apikey") != self.api_key:
            wrong.append("apiKey header")
        if headers.get("accept") != "application/json":
            wrong.append("accept header")
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        for name in ("username", "to", "message"):
            if not form.get(name):
                wrong.append(f"missing {name}")
        if form.get("username") != self.username:
            wrong.append("username")
        message = form.get("message", "")
        if septets(message) > 160:
            wrong.append(f"message of {septets(message)} septets")
        if any(ch not in BASIC and ch not in EXTENSION for ch in message):
            wrong.append(f"non-GSM characters in {message!r}")
        return wrong

    async def _answer(
        self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        method, path, headers, body = request.method, request.path, request.headers, request.raw
        self.seen += 1
        if self.outages > 0:
            self.outages -= 1
            status, answer = "503 Service Unavailable", b"gateway down"
        elif wrong := self._check(method, path, headers, body):
            self.violations.extend(wrong)
            status, answer = "400 Bad Request", b"bad request"
        else:
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            self.accepted.append(form)
            status = "201 Created"
            answer = json.dumps(
                {
                    "SMSMessageData": {
                        "Message": "Sent to 1/1 Total Cost: KES 0.8000",
                        "Recipients": [
                            {
                                "statusCode": 101,
                                "number": form["to"],
                                "status": "Success",
                                "cost": "KES 0.8000",
                                "messageId": f"ATXid_{len(self.accepted)}",
                            }
                        ],
                    }
                }
            ).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
