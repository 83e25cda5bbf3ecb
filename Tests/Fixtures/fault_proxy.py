#!/usr/bin/python3
"""A small fault-injecting HTTP proxy for fbk's tests, on loopback only.

Usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT MODE_FILE

For each connection it reads MODE_FILE (one word) and then:
  pass       relays bytes both ways to 127.0.0.1:UPSTREAM_PORT
  500 503 507 401
             answers that status after the request headers, without the body
  slow       reads the request and never answers
  reset      accepts the body (100 Continue), reads 1000 bytes of it, then resets the connection
  truncated  reads the whole request, answers half a status line and closes
  403put     answers 403 to a PUT (a server that refuses to replace an
             object that way) and relays every other request
Each connection's mode is appended to MODE_FILE.log, so a test can count
the attempts fbk made. It stops when killed, or by itself after 15 minutes.
"""
import os
import socket
import struct
import sys
import threading

listen_port, upstream_port, mode_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def mode():
    try:
        with open(mode_file) as f:
            return f.read().strip() or "pass"
    except OSError:
        return "pass"


def read_headers(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def content_length(head):
    for line in head.split("\r\n"):
        if line.lower().startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(conn):
    m = mode()
    with open(mode_file + ".log", "a") as log:
        log.write(m + "\n")
    try:
        if m == "pass":
            up = socket.create_connection(("127.0.0.1", upstream_port))
            threading.Thread(target=pump, args=(up, conn), daemon=True).start()
            pump(conn, up)
            return
        head, rest = read_headers(conn)
        if head is None:
            return
        if m == "403put" and not head.startswith("PUT "):
            up = socket.create_connection(("127.0.0.1", upstream_port))
            up.sendall(head.encode("latin-1") + b"\r\n\r\n" + rest)
            threading.Thread(target=pump, args=(up, conn), daemon=True).start()
            pump(conn, up)
            return
        if m == "403put":
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif m in ("500", "503", "507", "401"):
            conn.sendall(("HTTP/1.1 %s Fault\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % m).encode())
        elif m == "slow":
            threading.Event().wait(300)
        elif m == "reset":
            if "100-continue" in head.lower():
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            got = len(rest)
            while got < 1000:
                data = conn.recv(1000)
                if not data:
                    break
                got += len(data)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif m == "truncated":
            if "100-continue" in head.lower():
                conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            need = content_length(head) - len(rest)
            while need > 0:
                data = conn.recv(min(65536, need))
                if not data:
                    break
                need -= len(data)
            conn.sendall(b"HTTP/1.1 201 Cre")
    except OSError:
        pass
    finally:
        conn.close()


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)


def serve():
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
threading.Event().wait(900)   # stops by itself, even if a test forgets it
os._exit(0)
