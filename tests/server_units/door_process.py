"""A front door in a process of its own with few file descriptors (for
test_front_door.py): ``python -m tests.server_units.door_process SPARE_FDS``.

Prints its port, keeps every admitted socket open (so the descriptors run out) until a line
"release" on stdin (then closes them all, and every later one at once), answers "count"
with how many it admitted, and on "stop" prints that and how many times it paused, then
exits."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import socket
import sys

from server.address_gate import AddressGate
from server.front_door import FrontDoor, listening_sockets


class Pauses(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "cannot accept connections" in record.getMessage():
            self.count += 1


async def main(spare: int) -> None:
    pauses = Pauses()
    logging.getLogger("server.front_door").addHandler(pauses)
    admitted: list[socket.socket] = []
    total = 0
    keep = True

    def admit(sock: socket.socket) -> None:
        nonlocal total
        total += 1
        if keep:
            admitted.append(sock)
        else:
            sock.close()

    sockets = await listening_sockets("127.0.0.1", 0)
    door = FrontDoor(sockets, AddressGate(0, 1, 10), asyncio.get_running_loop(), admit)
    door.start()
    open_now = len(os.listdir("/proc/self/fd")) - 1  # not the listing's own descriptor
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + spare, hard))
    print(sockets[0].getsockname()[1], flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        if line == "release":
            keep = False
            for sock in admitted:
                sock.close()
            admitted.clear()
            print("released", flush=True)
        elif line == "count":
            print(total, flush=True)
        elif line == "stop":
            break
    door.close()
    await door.wait_closed()
    print(total, pauses.count, flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
