#!/usr/bin/env python3
"""A small HTTP/1.1 server on 127.0.0.1 for examples/http_client.cpp and its test.

  tests/http_test_server.py -- COMMAND [ARGS...]

starts the server on two ports chosen at run time, runs COMMAND ARGS... PORT LATE_PORT, stops,
and exits with COMMAND's exit status (its output passes through). On PORT:
  GET /flaky     503 with Retry-After: 1, then 429 with Retry-After: 1, then 200 "finally"
  GET /missing   404
  GET /stall     the headers never come (the connection stays open until the client goes)
  GET /<word>    200 with body <word>
LATE_PORT refuses connections for the first 0.5 s, then answers like PORT. Every response
closes its connection. The server stops by itself after 60 s, whatever happens.
"""
import socket
import subprocess
import sys
import threading
import time

flaky_count = 0
flaky_lock = threading.Lock()


def respond(conn: socket.socket) -> None:
    global flaky_count
    with conn:
        conn.settimeout(60)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ", 2)[1].decode()
        if path == "/stall":
            while conn.recv(4096):  # until the client closes
                pass
            return
        if path == "/missing":
            status, headers, body = "404 Not Found", "", "no such page"
        elif path == "/flaky":
            with flaky_lock:
                flaky_count += 1
                n = flaky_count
            if n == 1:
                status, headers, body = "503 Service Unavailable", "Retry-After: 1\r\n", "busy"
            elif n == 2:
                status, headers, body = "429 Too Many Requests", "Retry-After: 1\r\n", "slow down"
            else:
                status, headers, body = "200 OK", "", "finally"
        else:
            status, headers, body = "200 OK", "", path.lstrip("/")
        data = body.encode()
        conn.sendall(f"HTTP/1.1 {status}\r\n{headers}Content-Length: {len(data)}\r\n"
                     f"Connection: close\r\n\r\n".encode() + data)


def serve(listener: socket.socket) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=respond, args=(conn,), daemon=True).start()


def listen(port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        sys.exit("usage: http_test_server.py -- COMMAND [ARGS...]")
    main_listener = listen()
    threading.Thread(target=serve, args=(main_listener,), daemon=True).start()
    probe = listen()  # a free port, closed again: nothing listens there for now
    late_port = probe.getsockname()[1]
    probe.close()

    def listen_late() -> None:
        time.sleep(0.5)
        threading.Thread(target=serve, args=(listen(late_port),), daemon=True).start()

    threading.Thread(target=listen_late, daemon=True).start()
    command = sys.argv[2:] + [str(main_listener.getsockname()[1]), str(late_port)]
    try:
        return subprocess.run(command, timeout=60).returncode
    except subprocess.TimeoutExpired:
        print("http_test_server.py: the command did not finish within 60 s", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
