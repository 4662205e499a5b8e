"""Which operating-system process runs an attempt, and whether that process is still there.

A job records the process that holds its attempt. When the broker redelivers the message of a
killed worker process, the new process can tell from this that the holder is gone, and take the
job over at once instead of waiting for its heartbeat to go stale. Only a process on the same
machine can be checked; any other is assumed alive (its heartbeat decides, see
``jobs.selectors.orphaned``).
"""

import os
import socket
from pathlib import Path


def current() -> str:
    """This process: ``host/boot id/pid/start time``. The start time tells a process from a
    later one that reuses its pid; the boot id, a process from one before a reboot."""
    pid = os.getpid()
    return f"{_machine()}/{pid}/{_start_time(pid)}"


def is_gone(process: str) -> bool:
    host_and_boot, pid, started = process.rsplit("/", 2)
    if host_and_boot != _machine() or not started:
        return False  # another machine's, or not checkable here
    return _start_time(int(pid)) != started


def _machine() -> str:
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    return f"{socket.gethostname()}/{boot_id}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot; empty when there is no such live
    process (or no /proc to ask). A zombie, killed but not yet reaped, is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    state, start_time = fields[0], fields[19]  # fields 3 and 22 of proc(5)
    return "" if state in ("Z", "X") else start_time
