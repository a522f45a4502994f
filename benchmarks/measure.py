"""Running one benchmark step as a whole process and measuring it.

Every step is a separate process started with ``subprocess``. Wall time and
peak memory come from GNU time (``/usr/bin/time -v``) when it is installed
(Debian package ``time``), else from ``time.perf_counter`` and
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``. Both report the peak
resident set of the largest single process of the tree. Because ``crm run``
may start worker processes (the Excel workbooks), a sampler also polls
``/proc`` every 0.1 s and records the peak of the whole process tree's
resident memory (``tree_rss``), which is what the machine actually had to
hold.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

GNU_TIME = "/usr/bin/time"


def gnu_time() -> str | None:
    """The GNU time binary if present and GNU (it understands ``-v``)."""
    path = GNU_TIME if os.path.exists(GNU_TIME) else shutil.which("time")
    if not path or not os.access(path, os.X_OK):
        return None
    try:
        probe = subprocess.run([path, "-v", "true"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "Maximum resident set size" in probe.stderr else None


@dataclass
class Measurement:
    step: str
    command: list[str]
    returncode: int | None
    wall_s: float
    peak_rss_kb: int
    tree_rss_kb: int
    tree_cpu_s: float | None = None  # user + system CPU of every process of the tree, last seen (a JVM included)
    user_s: float | None = None
    system_s: float | None = None
    method: str = ""
    timed_out: bool = False
    stdout_tail: str = ""
    stderr_tail: str = ""
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def as_dict(self) -> dict:
        return asdict(self)


def _children(pid: int) -> list[int]:
    """The children of every thread of ``pid`` (a process started from another thread than the main one, e.g.
    a JVM, is listed under that thread only)."""
    found = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as handle:
                found += [int(p) for p in handle.read().split()]
        except OSError:
            continue
    return found


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its own, not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree_rss_kb(root: int, cpu: dict | None = None) -> int:
    """The resident memory of ``root`` and its descendants; with ``cpu``, each one's CPU seconds put there."""
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_kb(pid)
        if cpu is not None:
            cpu[pid] = max(cpu.get(pid, 0.0), _cpu_s(pid))
        stack.extend(_children(pid))
    return total


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds when last sampled
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak = max(self.peak, _tree_rss_kb(self.pid, self.cpu))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)


def _parse_gnu_time(text: str) -> dict:
    values = {}
    for key, pattern in (
        ("wall", r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)"),
        ("rss", r"Maximum resident set size \(kbytes\): (\d+)"),
        ("user", r"User time \(seconds\): ([\d.]+)"),
        ("system", r"System time \(seconds\): ([\d.]+)"),
    ):
        match = re.search(pattern, text)
        if match:
            values[key] = match.group(1)
    if "wall" in values:
        seconds = 0.0
        for part in values["wall"].split(":"):
            seconds = seconds * 60 + float(part)
        values["wall"] = seconds
    return values


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_measured(
    step: str,
    command: list[str],
    env: dict | None = None,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    log: Path | None = None,
) -> Measurement:
    """Run ``command`` to completion (or ``timeout`` seconds) and measure it."""
    command = [str(c) for c in command]
    timer = gnu_time()
    handle, report = tempfile.mkstemp(prefix="bench-time-", suffix=".txt")
    os.close(handle)
    if timer:
        full = [timer, "-v", "-o", report, *command]
    else:  # a small wrapper process reports its child's getrusage, so the peak is this step's own
        full = [sys.executable, "-m", "benchmarks.measure", report, *command]
    started = time.perf_counter()
    process = subprocess.Popen(
        full, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    sampler = _TreeSampler(process.pid)
    sampler.start()
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, 9)  # the step's own process group, started above
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    sampler.stop()
    measurement = Measurement(
        step=step,
        command=[str(c) for c in command],
        returncode=process.returncode,
        wall_s=round(wall, 3),
        peak_rss_kb=0,
        tree_rss_kb=sampler.peak,
        tree_cpu_s=round(sum(sampler.cpu.values()), 1),
        timed_out=timed_out,
        stdout_tail=_tail(stdout),
        stderr_tail=_tail(stderr),
    )
    text = Path(report).read_text(errors="replace")
    Path(report).unlink(missing_ok=True)
    if timer:
        parsed = _parse_gnu_time(text)
        if "rss" in parsed and "wall" in parsed:
            measurement.wall_s = round(parsed["wall"], 3)
            measurement.peak_rss_kb = int(parsed["rss"])
            measurement.user_s = float(parsed.get("user", 0.0))
            measurement.system_s = float(parsed.get("system", 0.0))
            measurement.method = "gnu-time"
    elif text.strip():
        usage = json.loads(text)
        measurement.peak_rss_kb = usage["maxrss_kb"]
        measurement.user_s, measurement.system_s = usage["user_s"], usage["system_s"]
        measurement.method = "getrusage"
    measurement.tree_rss_kb = max(measurement.tree_rss_kb, measurement.peak_rss_kb)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as handle:
            handle.write(f"### {step}: {' '.join(measurement.command)}\n")
            handle.write(
                f"# rc={measurement.returncode} wall={measurement.wall_s}s peak={measurement.peak_rss_kb}kB "
                f"tree={measurement.tree_rss_kb}kB ({measurement.method})\n"
            )
            handle.write(stdout or "")
            handle.write(stderr or "")
            handle.write("\n")
    return measurement


def _wrapper(argv: list[str]) -> int:
    """``python -m benchmarks.measure REPORT CMD...``: run CMD, write its getrusage to REPORT, exit with its code."""
    report, command = argv[0], argv[1:]
    code = subprocess.call(command)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    Path(report).write_text(
        json.dumps({"maxrss_kb": usage.ru_maxrss, "user_s": usage.ru_utime, "system_s": usage.ru_stime})
    )
    return code


if __name__ == "__main__":
    sys.exit(_wrapper(sys.argv[1:]))
