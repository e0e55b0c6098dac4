"""An SSH ProxyCommand that delays every byte by a fixed time in each direction: a network's round trip on
loopback, where no traffic shaper (netem) is at hand.

    ssh -o ProxyCommand="python3 benchmarks/delay_proxy.py %h %p 50" host   # 100 ms round trip

It connects to HOST:PORT and relays stdin to the socket and the socket to stdout, each chunk released
DELAY_MS after it was read (order kept; throughput is not limited). Used by collect_bench --rtt-ms.
"""

from __future__ import annotations

import os
import queue
import socket
import sys
import threading
import time


def relay(read, write, done, delay: float) -> None:
    """Copy chunks from read() to write(), each ``delay`` seconds after it was read; done() at the end."""
    chunks: queue.Queue = queue.Queue()

    def release() -> None:
        while True:
            due, data = chunks.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not data:
                done()
                return
            try:
                write(data)
            except OSError:
                done()
                return

    writer = threading.Thread(target=release)
    writer.start()
    while True:
        try:
            data = read()
        except OSError:
            data = b""
        chunks.put((time.monotonic() + delay, data))
        if not data:
            break
    writer.join()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str]) -> None:
    host, port, delay = argv[0], int(argv[1]), float(argv[2]) / 1000
    sock = socket.create_connection((host, port))

    def shut_socket() -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    up = threading.Thread(target=relay, args=(lambda: os.read(0, 65536), sock.sendall, shut_socket, delay),
                          daemon=True)
    up.start()
    relay(lambda: sock.recv(65536), lambda data: write_all(1, data), lambda: os.close(1), delay)


if __name__ == "__main__":
    main(sys.argv[1:])
