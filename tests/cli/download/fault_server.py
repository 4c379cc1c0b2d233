"""fault_server.py -- an HTTP server for the download tests' failures that nginx cannot
produce on demand: a connection reset in the middle of a body, a response that stalls, and
a resource that fails a set number of times before it succeeds.  Python stdlib only.

Routes (NAME is free text; the body of a file is body_of(NAME, size)):
  /reset/SIZE/NAME    announces SIZE bytes, sends a quarter of them, then resets the
                      connection (SO_LINGER 0, so the close sends RST, not FIN)
  /stall/SIZE/NAME    announces SIZE bytes, sends a few, then sends nothing more until the
                      client hangs up or the server stops
  /flaky/K/SIZE/NAME  503 for the first K requests of this path, then the file
  /missing/NAME       404
  /file/SIZE/NAME     the file
Every request's path is appended to `log` (in arrival order) before it is answered, so a
test can count how many times a client asked.

A stalled handler waits on the client's socket and on a pipe that stop() writes to, so a
stop never waits for a client and a stall never outlives the server.
"""
import hashlib
import http.server
import os
import select
import socket
import struct
import threading


def body_of(name, size):
    """size deterministic bytes for a name: a file's content, reproducible by the test."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{name}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass  # the server keeps its own log; stderr stays quiet

    def _head(self, code, length):
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def _file(self, size, name):
        body = body_of(name, size)
        self._head(200, len(body))
        self.wfile.write(body)

    def do_GET(self):
        server = self.server
        with server.lock:
            server.log.append(self.path)
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            hits = server.hits[self.path]
        parts = self.path.lstrip("/").split("/")
        try:
            kind = parts[0]
            if kind == "file" and len(parts) == 3:
                return self._file(int(parts[1]), parts[2])
            if kind == "flaky" and len(parts) == 4:
                if hits <= int(parts[1]):
                    return self._head(503, 0)
                return self._file(int(parts[2]), parts[3])
            if kind == "missing" and len(parts) == 2:
                return self._head(404, 0)
            if kind == "reset" and len(parts) == 3:
                size = int(parts[1])
                self._head(200, size)
                self.wfile.write(body_of(parts[2], size // 4))
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                # Closed here, before the handler's own shutdown(SHUT_WR) could send a FIN
                # that the client would read as an early end of the body.
                self.connection.close()
                self.close_connection = True
                return
            if kind == "stall" and len(parts) == 3:
                size = int(parts[1])
                self._head(200, size)
                self.wfile.write(body_of(parts[2], min(size, 16)))
                self.wfile.flush()
                # Readable means the client hung up (or sent junk); the pipe means stop().
                select.select([self.connection, server.stop_r], [], [])
                self.close_connection = True
                return
        except ValueError:
            pass
        self._head(400, 0)


class FaultServer:
    """Serves on 127.0.0.1 at a free port from a thread; use as a context manager."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = False  # stop() joins every handler
        self.httpd.lock = threading.Lock()
        self.httpd.log = []
        self.httpd.hits = {}
        self.httpd.stop_r, self.stop_w = os.pipe()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def count(self, path):
        """How many requests asked for path."""
        with self.httpd.lock:
            return self.httpd.log.count(path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        os.write(self.stop_w, b"x")  # releases stalled handlers
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()  # joins the handler threads
        os.close(self.stop_w)
        os.close(self.httpd.stop_r)
