"""Real servers on loopback for tests: the app over HTTP, and an SMTP sink."""
from __future__ import annotations

import socket
import threading
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from werkzeug.serving import make_server


class LiveServer:
    def __init__(self, app, host: str = "127.0.0.1"):
        self.app = app
        self._server = make_server(host, 0, app, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class _Collector:
    def __init__(self):
        self.messages: list[Message] = []
        self.envelopes = []
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        with self.arrived:
            self.envelopes.append(envelope)
            self.messages.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, host: str = "127.0.0.1"):
        self._collector = _Collector()
        self.host = host
        self.port: int = _free_port(host)  # aiosmtpd's start() connects to its port, so 0 cannot work
        self._controller = Controller(self._collector, hostname=host, port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    @property
    def messages(self) -> list[Message]:
        return list(self._collector.messages)

    @property
    def envelopes(self):
        return list(self._collector.envelopes)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Message]:
        """Block until `count` messages have arrived (or the timeout passes); return them all."""
        with self._collector.arrived:
            self._collector.arrived.wait_for(lambda: len(self._collector.messages) >= count, timeout)
        return self.messages
