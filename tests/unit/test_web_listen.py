"""The web server's listening socket."""

from __future__ import annotations

import socket

from wanotify.ops.web.server import listen


def test_the_listening_socket_turns_nagle_off_so_kept_alive_replies_are_not_held_back() -> None:
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        client = socket.create_connection(sock.getsockname())
        accepted, _ = sock.accept()
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # inherited by each connection
        accepted.close()
        client.close()
    finally:
        sock.close()
