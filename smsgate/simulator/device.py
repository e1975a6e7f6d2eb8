"""The pseudo-terminal a simulated modem sits behind, with the stable symlink clients open.

Apart from the AT state machine because its concern is file descriptors and the atomic re-pointing of a
link (as udev does on replug), not commands.
"""

from __future__ import annotations

import os
import tty
from pathlib import Path


class PtyDevice:
    """A pseudo-terminal pair plus the stable symlink clients open."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.tty_path = ""

    @property
    def is_open(self) -> bool:
        return self.master >= 0

    def open(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw on our side too, so the line discipline neither echoes nor rewrites CR before a client opens it.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.tty_path = os.ttyname(self.slave)
        tmp = self.link.with_name(f".{self.link.name}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(self.tty_path, tmp)
        os.replace(tmp, self.link)  # atomic re-point, as udev does

    def close(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1
