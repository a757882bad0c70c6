"""A local stand-in for an ESP's send API, for anymail's real Postmark backend to talk to.

It speaks just enough of Postmark's ``POST /email`` (JSON in, ``X-Postmark-Server-Token``,
Postmark's JSON answers), records every request it takes, and answers from a script as
``FakeTwilio`` does: ``fake.reply_with(500, 429, EspReply(200, drop=True))``. When the
script runs out it accepts the e-mail. Point anymail at it with ``fake.settings()``.
"""

import json
import uuid
from dataclasses import dataclass

from tests.fake_server import FakeHandler, LocalFake


@dataclass(frozen=True)
class EspReply:
    status: int
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # take the e-mail, then hang up without answering


class FakeEsp(LocalFake):
    server_token = "fake-postmark-token"
    name, reply_type = "fake-esp", EspReply

    def __init__(self):
        super().__init__()
        self.accepted: list[dict] = []  # the e-mails it took (Postmark's JSON payloads)
        self.requests = 0

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def settings(self) -> dict:
        """The Django settings that send e-mail through anymail's Postmark backend to this fake."""
        return {
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL": {"POSTMARK_SERVER_TOKEN": self.server_token, "POSTMARK_API_URL": self.url},
        }

    def recipients(self) -> list[str]:
        with self._lock:
            return [payload["To"] for payload in self.accepted]

    def _answer(self, payload: dict, token: str | None) -> tuple[EspReply, dict]:
        with self._lock:
            self.requests += 1
            scripted = self.faults(self.requests - 1) if self.faults else None
            reply = self._script.pop(0) if self._script else (scripted or EspReply(200))
            if token != self.server_token:
                return EspReply(401), {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied"}
            if reply.status != 200:
                return reply, {"ErrorCode": 100, "Message": f"Scripted failure {reply.status}"}
            self.accepted.append(payload)
        return reply, {
            "To": payload.get("To"),
            "SubmittedAt": "2026-12-02T05:00:00.0000000-05:00",
            "MessageID": str(uuid.uuid4()),
            "ErrorCode": 0,
            "Message": "OK",
        }


class _Handler(FakeHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") != "/email":
            return self._send(404, {"ErrorCode": 404, "Message": "Not found"})
        answered = {}

        def take():
            reply, answered["body"] = self.server.fake._answer(payload, self.headers.get("X-Postmark-Server-Token"))
            return reply

        self.answer(payload.get("To"), take, lambda reply: self._send(reply.status, answered["body"]))

    def _send(self, status: int, body: dict):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


FakeEsp.handler = _Handler
