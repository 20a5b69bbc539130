"""A loopback TCP proxy a test can cut, to make a server "go away" for one client only."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every open connection.

    While ``refusing`` is set, new connections are accepted and closed at once, so a client's
    reconnect attempts fail the way they do against a server that is down.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server = socket.create_server(('127.0.0.1', 0))
        self.port: int = self._server.getsockname()[1]
        self.accepted = 0
        self.refusing = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name='tcp-proxy', daemon=True)
        self._thread.start()

    def url(self, amqp_url: str) -> str:
        """``amqp_url`` pointed at the proxy instead of the server."""
        parts = urlsplit(amqp_url)
        credentials = parts.netloc.rpartition('@')[0]
        netloc = (credentials + '@' if credentials else '') + f'127.0.0.1:{self.port}'
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self, *, refuse: bool = False) -> None:
        """Drop every open connection; with ``refuse``, turn new ones away until ``resume()``."""
        if refuse:
            self.refusing.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._kill(sock)

    def resume(self) -> None:
        self.refusing.clear()

    def close(self) -> None:
        self._kill(self._server)
        self.cut()
        self._thread.join(timeout=2)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            if self.refusing.is_set():
                self._kill(client)
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                self._kill(client)
                continue
            upstream.settimeout(None)
            for sock in (client, upstream):  # as the client and server do: without it, Nagle's algorithm
                # and delayed ACKs hold each small write ~40 ms, and a transaction of many statements
                # takes seconds through the proxy
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        self._kill(source)
        self._kill(sink)

    def _kill(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv(); close() alone does not
        sock.close()
