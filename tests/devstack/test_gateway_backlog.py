"""The local gateway takes bursts of clients: its listen backlog queues them while its thread accepts, so
dozens of concurrent requests all get an answer (the default backlog of 5 reset or stalled the rest)."""

import json
import select
import socket
import threading
import time

import pytest

from devstack.gateway import LISTEN_BACKLOG, GatewayServer

pytestmark = pytest.mark.e2e

CLIENTS = 50


def test_a_burst_of_connections_is_queued_before_the_gateway_accepts_any() -> None:
    # Given a gateway that has not accepted anything yet (as when its thread is busy starting handlers)
    server = GatewayServer()
    sockets: list[socket.socket] = []
    try:
        # When 50 clients connect at once
        for _ in range(CLIENTS):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", server.port))
            sockets.append(client)
        deadline = time.monotonic() + 2
        connected: set[socket.socket] = set()
        while len(connected) < CLIENTS and time.monotonic() < deadline:
            _, writable, _ = select.select([], [s for s in sockets if s not in connected], [], 0.1)
            connected |= {s for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0}

        # Then the kernel completed every connection: none waits for a retransmitted SYN or is reset
        assert len(connected) == CLIENTS
        assert LISTEN_BACKLOG >= 128
    finally:
        for client in sockets:
            client.close()
        server.stop()


def test_fifty_concurrent_clients_all_get_their_answer(stack, http) -> None:
    start = threading.Barrier(CLIENTS)
    answers: dict[int, tuple[int, dict]] = {}
    failures: list[BaseException] = []

    def client(number: int) -> None:
        try:
            start.wait(timeout=10)
            status, _, body = http.request("GET", f"/public/{number}")
            answers[number] = (status, json.loads(body))
        except BaseException as exc:  # a reset connection must fail the test, not vanish in the thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert sorted(answers) == list(range(CLIENTS))
    for number, (status, echoed) in answers.items():
        assert status == 200 and echoed["event"]["pathParameters"] == {"id": str(number)}
