"""Rounds of keep-alive requests, for the valgrind benches.

    python3 benches/support/rounds_client.py PORT CONNECTIONS ROUNDS DEPTH

Opens CONNECTIONS connections to 127.0.0.1:PORT, then for ROUNDS rounds
sends DEPTH pipelined `GET /plaintext` requests (TechEmpower's head) on
every connection in one write each, and reads every answer before the
next round. Exits non-zero if the server closes a connection.
"""
import socket
import sys

port, conns, rounds, depth = (int(arg) for arg in sys.argv[1:5])
REQ = (b"GET /plaintext HTTP/1.1\r\nHost: tfb-server\r\n"
       b"Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n"
       b"Connection: keep-alive\r\n\r\n") * depth
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
for s in socks:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for _ in range(rounds):
    for s in socks:
        s.sendall(REQ)
    for s in socks:
        got = b""
        while got.count(b"Hello, World!") < depth:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("the server closed a connection")
            got += chunk
