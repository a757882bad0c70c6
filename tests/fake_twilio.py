"""A local stand-in for Twilio's Messages API, for the real ``twilio`` client to talk to.

It speaks just enough of ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form
fields, HTTP basic auth, Twilio's JSON answers and error bodies), records every
request it gets, and answers from a script: ``fake.reply_with(500, 500, 201)``
or ``fake.reply_with(FakeTwilio.error(21610, "Attempt to send to unsubscribed recipient"))``.
When the script runs out it accepts the message (201). ``Reply(201, drop=True)``
accepts the message and then closes the connection without answering, as when the
answer is lost on the way back. What it accepted can be read back as Twilio's API
lists it (``GET …/Messages.json?To=…``, ``GET …/Messages/{sid}.json``).
"""

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qs

from tests.fake_server import FakeHandler, LocalFake

MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
MESSAGE_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>SM[0-9a-f]+)\.json$")


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict | None = None  # None: what Twilio would say for ``status``
    delay: float = 0.0  # seconds to wait before answering
    drop: bool = False  # take the message (a 201), then hang up without answering


@dataclass(frozen=True)
class ReceivedRequest:
    account_sid: str  # from the path
    form: dict  # the form fields, one value each (To, Body, MessagingServiceSid, From, StatusCallback)
    auth: tuple[str, str] | None  # (user, password) of HTTP basic auth
    headers: dict = field(repr=False, default_factory=dict)


class FakeTwilio(LocalFake):
    account_sid = "AC" + "f" * 32
    auth_token = "fake-auth-token"
    messaging_service_sid = "MG" + "e" * 32
    name, reply_type = "fake-twilio", Reply

    def __init__(self):
        super().__init__()
        self.requests: list[ReceivedRequest] = []
        self.accepted: list[dict] = []  # the messages it took, as its API shows them

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.accepted.clear()

    @staticmethod
    def error(code: int, message: str, status: int = 400) -> Reply:
        """Twilio's error body, as its API returns it."""
        return Reply(
            status,
            {
                "code": code,
                "message": message,
                "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
            },
        )

    def _answer(self, account_sid: str, form: dict, auth, headers) -> Reply:
        with self._lock:
            self.requests.append(ReceivedRequest(account_sid, form, auth, headers))
            scripted = self.faults(len(self.requests) - 1) if self.faults else None
            reply = self._script.pop(0) if self._script else (scripted or Reply(201))
        if auth != (self.account_sid, self.auth_token) or account_sid != self.account_sid:
            return self.error(20003, "Authenticate", status=401)
        if reply.body is not None:
            return reply
        if reply.status == 201:
            created = self._created(account_sid, form)
            with self._lock:
                self.accepted.append(created)
            return Reply(201, created, reply.delay, reply.drop)
        code = {429: 20429, 503: 20503}.get(reply.status, 20500 if reply.status >= 500 else reply.status)
        return Reply(reply.status, self.error(code, "Scripted failure", reply.status).body, reply.delay)

    @staticmethod
    def _created(account_sid: str, form: dict) -> dict:
        sid = "SM" + uuid.uuid4().hex
        now = formatdate(usegmt=True)
        return {
            "sid": sid,
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "status": "accepted" if form.get("MessagingServiceSid") else "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
        }

    def listed(self, account_sid: str, query: dict) -> dict:
        """A page of the messages it took, filtered by ``To`` as Twilio's list does."""
        with self._lock:
            found = [
                m for m in self.accepted if m["account_sid"] == account_sid and m["to"] == query.get("To", m["to"])
            ]
        uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json"
        return {
            "messages": list(reversed(found)),
            "first_page_uri": uri,
            "next_page_uri": None,
            "previous_page_uri": None,
            "page": 0,
            "page_size": 50,
            "start": 0,
            "end": len(found),
            "uri": uri,
        }

    def fetched(self, account_sid: str, sid: str) -> dict | None:
        with self._lock:
            return next((m for m in self.accepted if m["account_sid"] == account_sid and m["sid"] == sid), None)


class _Handler(FakeHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode()
        match = MESSAGES_PATH.match(self.path)
        if not match:
            return self._send(Reply(404, FakeTwilio.error(20404, "The requested resource was not found", 404).body))
        form = {name: values[0] for name, values in parse_qs(raw, keep_blank_values=True).items()}
        self.answer(
            form.get("To"),
            lambda: self.server.fake._answer(match["account"], form, self._basic_auth(), dict(self.headers)),
            self._send,
        )

    def do_GET(self):
        fake, path, _, query = self.server.fake, *self.path.partition("?")
        query = {name: values[0] for name, values in parse_qs(query).items()}
        if self._basic_auth() != (fake.account_sid, fake.auth_token):
            return self._send(FakeTwilio.error(20003, "Authenticate", status=401))
        if match := MESSAGES_PATH.match(path):
            return self._send(Reply(200, fake.listed(match["account"], query)))
        if (match := MESSAGE_PATH.match(path)) and (found := fake.fetched(match["account"], match["sid"])):
            return self._send(Reply(200, found))
        self._send(Reply(404, FakeTwilio.error(20404, "The requested resource was not found", 404).body))

    def _basic_auth(self):
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user, password

    def _send(self, reply: Reply):
        data = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up, as a test of timeouts wants


FakeTwilio.handler = _Handler
