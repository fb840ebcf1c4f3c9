"""What a case measures: wall time and CPU over a span (client, sandbox, rest of the machine), peak memory."""

from __future__ import annotations

import os
import resource
import time

from benchmarks.sandbox import CTX


def proc_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc; 0 where unavailable."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``), in MB.

    Not ``ru_maxrss`` where ``/proc`` is there: Linux carries the parent's high-water mark into a child's
    ``ru_maxrss`` across fork + exec, so a fresh interpreter started from a 170 MB process reports at least
    170 MB whatever it does. ``VmHWM`` belongs to the process's own memory map (for a forked child it starts
    at the RSS it had at the fork).
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot (``/proc/stat``); 0 where unavailable."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Span:
    """Wall time, client CPU, sandbox CPU and the rest of the machine's CPU over a ``with`` block.

    ``other_cpu`` is what the cores did besides the client and the sandbox (other processes, and kernel work
    not charged to either): the machine is shared, and a large figure says a row was measured under load.
    """

    def __init__(self, sandbox_pid: int | None = None) -> None:
        self.sandbox_pid = sandbox_pid if sandbox_pid is not None else CTX.sandbox_pid
        self.seconds = self.client_cpu = self.sandbox_cpu = self.other_cpu = 0.0

    def __enter__(self) -> Span:
        self._cpu = self_cpu_seconds()
        self._sandbox = proc_cpu_seconds(self.sandbox_pid)
        self._machine = machine_busy_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.client_cpu = self_cpu_seconds() - self._cpu
        self.sandbox_cpu = proc_cpu_seconds(self.sandbox_pid) - self._sandbox
        busy = machine_busy_seconds() - self._machine
        self.other_cpu = max(0.0, busy - self.client_cpu - self.sandbox_cpu) if busy else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "seconds": self.seconds,
            "client_cpu": self.client_cpu,
            "sandbox_cpu": self.sandbox_cpu,
            "other_cpu": self.other_cpu,
        }
