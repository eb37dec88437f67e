"""Instance ids: a process instance is alive only while its pid shows the same start and boot."""

import os
import signal
import subprocess
import sys

from shared.metrics import directory as metricsdir


def test_own_instance_is_alive():
    assert metricsdir.is_alive(metricsdir.instance_id())


def test_same_pid_other_start_or_boot_is_dead():
    pid, start, boot = metricsdir.instance_id().split("-")
    assert not metricsdir.is_alive(f"{pid}-{int(start) - 1}-{boot}")  # the pid was reused
    assert not metricsdir.is_alive(f"{pid}-{start}-{'0' * 8 if boot != '0' * 8 else '1' * 8}")  # reboot


def test_exited_and_zombie_processes_are_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    instance = metricsdir.instance_id(child.pid)
    assert metricsdir.is_alive(instance)
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped: a zombie
    assert not metricsdir.is_alive(instance)
    child.wait()
    assert not metricsdir.is_alive(instance)


def test_bare_pids_of_foreign_processes():
    assert metricsdir.is_alive(str(os.getpid()))
    assert not metricsdir.is_alive("4194304")  # above pid_max: never a process


def test_file_names():
    assert metricsdir.parse_file_name("counter_12-345-ab12cd34.db") == ("counter", "12-345-ab12cd34")
    assert metricsdir.parse_file_name("gauge_livesum_7.db") == ("gauge_livesum", "7")
    for name in ("archive.json", "proc_12-345-ab.json", "counter_12-None-ab.db", ".lock"):
        assert metricsdir.parse_file_name(name) is None


def test_the_folder_counts_under_the_keys_the_processes_write():
    """The folder adds crashes and corrupt files into the archive under prometheus_client's keys."""
    from shared.metrics import definitions as metrics
    from shared.metrics.folding import CORRUPT_FILES_KEY, THREAD_STOPS_KEY

    assert THREAD_STOPS_KEY == metrics.thread_stops._value._key
    assert CORRUPT_FILES_KEY == metrics.metric_files_corrupt._value._key
