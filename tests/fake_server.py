"""What the local fakes of providers share: an HTTP server on a free port of 127.0.0.1, in a thread."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalFake:
    """Subclasses set ``handler`` (a BaseHTTPRequestHandler that reads ``self.server.fake``),
    ``name`` and ``reply_type`` (what ``reply_with`` makes of a bare HTTP status)."""

    handler = name = reply_type = None

    def __init__(self):
        self._script = []
        self._lock = threading.Lock()
        # Optional: the reply to the n-th request (from 0) when no script is set, or None to accept.
        self.faults = None
        # (To, received at, answered at or None, status) of each request, on time.monotonic().
        self.log: list[list] = []
        self._server = self._thread = None

    def start(self, port: int = 0):
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the port: a client now gets "connection refused"."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()

    def reply_with(self, *replies) -> None:
        """Answer the next requests with ``replies``: a reply, or an HTTP status alone."""
        with self._lock:
            self._script.extend(r if isinstance(r, self.reply_type) else self.reply_type(r) for r in replies)


class FakeHandler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a stopped fake refuses the next one
    # instead of answering on a kept-alive connection.
    protocol_version = "HTTP/1.0"

    def answer(self, to: str | None, take, write) -> None:
        """Log a request for ``to``, take its reply (``take()``: one with ``status``, ``delay`` and
        ``drop``), wait its delay, then hang up without answering (``drop``) or ``write(reply)``."""
        entry = [to, time.monotonic(), None, None]
        reply = take()
        entry[3] = reply.status
        with self.server.fake._lock:
            self.server.fake.log.append(entry)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            # The request was taken; the answer never leaves: the client reads a closed connection.
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        write(reply)
        entry[2] = time.monotonic()

    def log_message(self, format, *args):
        pass  # the tests assert on what the fake took; access lines would only be noise
