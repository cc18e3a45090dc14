"""A null-modem cable between two pseudo-terminals, for link tests and the demo.

Two pty pairs; a relay thread copies what arrives on one pair's master to the
other's. Each end is a real serial device path (``/dev/pts/N``) that the daemon
and the ground decoder open exactly as they open a UART, so the test exercises
the production code path end to end. Pacing is the sender's job, as on a real
UART; the wire only counts the bytes it carried.
"""

from __future__ import annotations

import os
import select
import threading
import tty


class PtyWire:
    """``a_path`` and ``b_path`` are the two ends; bytes written to one are read from the other."""

    def __init__(self) -> None:
        self._a_master, self._a_slave = os.openpty()
        self._b_master, self._b_slave = os.openpty()
        # Raw from the start, so nothing relayed before an end opens its device is
        # echoed or translated; the slaves stay open here so the ptys live as long
        # as the wire, whichever process opens and closes the ends.
        for fd in (self._a_slave, self._b_slave):
            tty.setraw(fd)
        self.a_path = os.ttyname(self._a_slave)
        self.b_path = os.ttyname(self._b_slave)
        self.bytes_a_to_b = 0
        self.bytes_b_to_a = 0
        self._stop_read, self._stop_write = os.pipe()
        self._thread = threading.Thread(target=self._relay, name="pty-wire", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        routes = {self._a_master: self._b_master, self._b_master: self._a_master}
        while True:
            ready, _, _ = select.select([*routes, self._stop_read], [], [])
            if self._stop_read in ready:
                return
            for source in ready:
                data = os.read(source, 65536)
                view = memoryview(data)
                while view:  # blocks while the far end's input buffer is full
                    view = view[os.write(routes[source], view) :]
                if source == self._a_master:
                    self.bytes_a_to_b += len(data)
                else:
                    self.bytes_b_to_a += len(data)

    def close(self) -> None:
        os.write(self._stop_write, b"x")
        self._thread.join(5)
        for fd in (self._a_master, self._a_slave, self._b_master, self._b_slave, self._stop_read, self._stop_write):
            os.close(fd)

    def __enter__(self) -> PtyWire:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
