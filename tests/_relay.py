"""A Unix-socket relay to PostgreSQL, for a client running as another user.

The embedded server's socket lives in its data directory, under pytest's 0700 temporary
directory, which the image's non-root user cannot reach. The relay listens where it can and
passes bytes both ways, so authentication (scram-sha-256) stays end to end.
"""

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_SOCKET = ".s.PGSQL.5432"


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 128  # a pool warms up all its connections at once
    block_on_close = True
    target: str


class _Pipe(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as upstream:
            upstream.connect(self.server.target)
            back = threading.Thread(target=_pump, args=(upstream, self.request))
            back.start()
            _pump(self.request, upstream)
            back.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass  # the other side went away: the connection is over
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@contextmanager
def relay(socket_dir: str, listen_dir: Path) -> Iterator[str]:
    """Yield a socket directory anyone can use, leading to the server in `socket_dir`."""
    listen_dir.mkdir(mode=0o755)
    listen_dir.chmod(0o755)
    server = _Server(str(listen_dir / PG_SOCKET), _Pipe)
    server.target = str(Path(socket_dir) / PG_SOCKET)
    (listen_dir / PG_SOCKET).chmod(0o777)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield str(listen_dir)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
