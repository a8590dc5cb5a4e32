"""Slow and idle clients cannot stop the service: nginx (docs/deploy/nginx.conf) waits for them, gunicorn's
threads only ever serve whole requests (issue #9 item 1). Every socket has a timeout; the servers are the
module's own, on loopback."""
from __future__ import annotations

import http.client
import selectors
import socket
import ssl
import time
from contextlib import ExitStack

from tests.deploy.conftest import SITE_HOST, TEST_CLIENT_TIMEOUT
from tests.deploy.processes import directive_value

IDLE_CONNECTIONS = 200
# Attackers and the user come from different loopback addresses, as they would from different hosts.
ATTACKER, OTHER_ATTACKER, USER = "127.0.0.2", "127.0.0.3", "127.0.0.1"


def open_idle(stack: ExitStack, port: int, count: int, source: str) -> list[socket.socket]:
    """`count` TCP connections to `port` that never send a byte."""
    sockets = []
    for _ in range(count):
        connection = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5,
                                                                  source_address=(source, 0)))
        sockets.append(connection)
    return sockets


def timed_health(connection: http.client.HTTPConnection) -> tuple[int, float]:
    started = time.monotonic()
    connection.request("GET", "/api/health")
    status = connection.getresponse().status
    connection.close()
    return status, time.monotonic() - started


def wait_until_closed(sockets: list[socket.socket], within: float) -> list[socket.socket]:
    """Wait up to `within` seconds for the server to close each socket; return those still open."""
    open_ = {s.fileno(): s for s in sockets}
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as selector:
        for s in sockets:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    if key.fileobj.recv(4096):
                        continue  # an answer (such as a 408) before the close
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                except OSError:
                    pass  # reset: closed too
                selector.unregister(key.fileobj)
                open_.pop(key.fd, None)
    return list(open_.values())


def logged(read_log, text: str, within: float = 5) -> str:
    """The log once it holds `text` (servers write a request's line after its answer has left)."""
    deadline = time.monotonic() + within
    while text not in (log := read_log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text in log, f"{text!r} never reached the log"
    return log


def start_slow_login(stack, exits: ExitStack, source: str) -> ssl.SSLSocket:
    """A TLS connection that sent a login's headers and the first bytes of its 100-byte body, then stalls."""
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=5, source_address=(source, 0))
    connection = exits.enter_context(stack.tls.wrap_socket(raw, server_hostname=SITE_HOST))
    connection.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: " + SITE_HOST.encode() +
                       b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\": ")
    return connection


def test_two_hundred_idle_connections_to_nginx_leave_requests_answered_within_a_second(stack):
    """200 connections that send nothing do not delay a request, and nginx drops them at client_header_timeout."""
    with ExitStack() as exits:
        idle = open_idle(exits, stack.https_port, IDLE_CONNECTIONS, ATTACKER)
        status, elapsed = timed_health(stack.https(USER))
        assert status == 200 and elapsed < 1.0, f"{status} after {elapsed:.2f} s"
        assert wait_until_closed(idle, within=TEST_CLIENT_TIMEOUT + 3) == []


def test_idle_connections_straight_to_gunicorn_do_not_stop_it(stack):
    """The issue's attack (an idle connection per sync worker took it) no longer stops a request. A flood still
    would: gunicorn 27's gthread gives each new connection a thread for up to 5 s, so only nginx is published."""
    with ExitStack() as exits:
        open_idle(exits, stack.gunicorn_port, stack.gunicorn_workers, ATTACKER)
        status, elapsed = timed_health(http.client.HTTPConnection("127.0.0.1", stack.gunicorn_port, timeout=5))
        assert status == 200 and elapsed < 1.0, f"{status} after {elapsed:.2f} s"


def test_a_stalled_request_body_is_cut_off_by_nginx_and_never_reaches_the_app(stack):
    """Logins whose body dribbles then stalls hold no gunicorn thread (more of them than threads) and are cut
    at client_body_timeout; the app never sees them."""
    threads = stack.gunicorn_workers * stack.gunicorn_threads
    with ExitStack() as exits:
        slow = [start_slow_login(stack, exits, OTHER_ATTACKER) for _ in range(threads + 4)]
        for _ in range(2):
            time.sleep(0.5)
            for connection in slow:
                connection.sendall(b" ")
        status, elapsed = timed_health(stack.https(USER))
        assert status == 200 and elapsed < 1.0, f"{status} after {elapsed:.2f} s"
        assert wait_until_closed(slow, within=TEST_CLIENT_TIMEOUT + 3) == []
    assert '"POST /api/v1/auth/login HTTP/1.1" 408 ' in logged(stack.access_log.read_text, " 408 ")
    assert "POST /api/v1/auth/login" not in stack.gunicorn.log()


def test_one_address_gets_429_beyond_its_concurrent_requests_while_others_are_served(stack):
    """limit_conn: one address holding the site's limit of requests gets 429 for one more; another gets 200."""
    limit = int(directive_value(stack.site, "limit_conn").split()[1])
    with ExitStack() as exits:
        held = [start_slow_login(stack, exits, ATTACKER) for _ in range(limit)]
        for connection in held:
            connection.sendall(b" ")  # restarts each connection's body timer
        assert timed_health(stack.https(ATTACKER))[0] == 429
        assert timed_health(stack.https(USER))[0] == 200


def test_plain_http_redirects_to_the_configured_https_name(stack):
    """Port 80 only redirects, to server_name, whatever Host the client sends (no open redirect)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=5)
    connection.request("GET", "/oauth2/authorize?client_id=x", headers={"Host": "evil.example"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://{SITE_HOST}/oauth2/authorize?client_id=x"
    connection.close()


def test_neither_access_log_records_a_query_string(stack):
    """Emailed links and authorization requests carry secrets in the query: nginx and gunicorn log the path only,
    and both log the request id that ties their lines together."""
    connection = stack.https(USER)
    connection.request("GET", "/api/health?token=s3cr3t-in-query")
    response = connection.getresponse()
    request_id = response.getheader("X-Request-ID")
    response.read()
    connection.close()
    assert request_id
    nginx_log = logged(stack.access_log.read_text, request_id)
    app_log = logged(stack.gunicorn.log, request_id)
    assert "s3cr3t-in-query" not in nginx_log and "s3cr3t-in-query" not in app_log
