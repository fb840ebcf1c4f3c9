"""A small SMTP server on a free loopback port that keeps what it receives: enough for Airflow's SMTP hook.

It speaks EHLO/HELO, AUTH PLAIN and LOGIN (any credentials accepted, and recorded), MAIL, RCPT, DATA, RSET, NOOP
and QUIT, without TLS (the connection says ``disable_tls``/``disable_ssl``). It runs an asyncio server in a
thread of its own; every wait on it is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import email
import threading
from dataclasses import dataclass
from email.message import Message
from typing import Any

from tests.inbox import Inbox


@dataclass(frozen=True)
class Received:
    """One message as the server got it: envelope, raw bytes and the parsed message."""

    mail_from: str
    rcpt_to: list[str]
    raw: bytes
    message: Message

    def part(self, content_type: str) -> str:
        """The decoded text of the first part of ``content_type`` (``text/html``, ``text/plain``)."""
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode(part.get_content_charset() or "utf-8")
        raise AssertionError(f"no {content_type} part in {self.message.get('Subject')!r}")

    @property
    def subject(self) -> str:
        from email.header import decode_header, make_header

        return str(make_header(decode_header(self.message.get("Subject", ""))))


class SmtpSink(Inbox[Received]):
    def __init__(self) -> None:
        super().__init__()
        self.credentials: list[str] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="smtp-sink", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the SMTP sink did not start")
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        """Stop listening and end the sessions still open (a client that never said QUIT)."""
        if self._server is not None:
            self._server.close()
        current = asyncio.current_task()
        sessions = [task for task in asyncio.all_tasks() if task is not current]
        for task in sessions:
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def connection(self, password: str, **extra: Any) -> dict[str, Any]:
        """An Airflow ``smtp`` connection (as ``AIRFLOW_CONN_*`` JSON) to this server."""
        return {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.port,
            "login": "alerts",
            "password": password,
            "extra": {
                "disable_tls": True,
                "disable_ssl": True,
                "from_email": "airflow@acme.test",
                "retry_limit": 1,
                "timeout": 10,
                **extra,
            },
        }

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(text: str) -> None:
            writer.write(text.encode() + b"\r\n")
            await writer.drain()

        async def line() -> bytes:
            return await asyncio.wait_for(reader.readline(), timeout=30)

        mail_from, rcpt_to = "", []
        try:
            await reply("220 smtp-sink ready")
            while True:
                raw = await line()
                if not raw:
                    return
                command = raw.decode("utf-8", "replace").strip()
                verb = command[:4].upper()
                if verb == "EHLO":
                    await reply("250-smtp-sink\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SMTPUTF8")
                elif verb == "HELO":
                    await reply("250 smtp-sink")
                elif verb == "AUTH":
                    parts = command.split()
                    if parts[1].upper() == "PLAIN":
                        if len(parts) > 2:
                            token = parts[2]
                        else:
                            await reply("334 ")
                            token = (await line()).decode().strip()
                        self.credentials.append(base64.b64decode(token).decode("utf-8", "replace"))
                    else:  # LOGIN, the user name with the command or asked for
                        if len(parts) > 2:
                            user_b64 = parts[2].encode()
                        else:
                            await reply("334 VXNlcm5hbWU6")
                            user_b64 = (await line()).strip()
                        user = base64.b64decode(user_b64).decode("utf-8", "replace")
                        await reply("334 UGFzc3dvcmQ6")
                        secret = base64.b64decode((await line()).strip()).decode("utf-8", "replace")
                        self.credentials.append(f"{user}\0{secret}")
                    await reply("235 2.7.0 accepted")
                elif verb == "MAIL":
                    mail_from, rcpt_to = command.split(":", 1)[1].strip(), []
                    await reply("250 OK")
                elif verb == "RCPT":
                    rcpt_to.append(command.split(":", 1)[1].strip())
                    await reply("250 OK")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while True:
                        data = await line()
                        if data in (b".\r\n", b".\n", b""):
                            break
                        lines.append(data[1:] if data.startswith(b"..") else data)
                    body = b"".join(lines)
                    self.received.put(Received(mail_from, list(rcpt_to), body, email.message_from_bytes(body)))
                    await reply("250 queued")
                elif verb in ("RSET", "NOOP"):
                    await reply("250 OK")
                elif verb == "QUIT":
                    await reply("221 bye")
                    return
                else:
                    await reply("502 not implemented")
        except (TimeoutError, ConnectionError):
            return
        finally:
            writer.close()
