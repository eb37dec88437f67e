"""LoopWatch: a background loop that dies takes its worker's run() down with it."""

from __future__ import annotations

import gevent
import pytest

from workers.loops import LoopDied, LoopWatch


def test_a_loop_that_dies_wakes_the_worker_and_raises():
    woken = []
    watch = LoopWatch(wake=lambda: woken.append(True))

    def broken():
        gevent.sleep(0.01)
        raise KeyError("a state the loop never expected")

    watch.spawn("maintenance", broken)
    watch.check()  # nothing died yet
    gevent.sleep(0.1)
    assert woken == [True] and watch.died[0] == "maintenance"
    with pytest.raises(LoopDied, match="the maintenance loop stopped: KeyError"):
        watch.check()


def test_a_loop_that_ends_or_is_killed_is_no_death():
    watch = LoopWatch()
    finished = watch.spawn("quick", lambda: None)
    endless = watch.spawn("endless", gevent.sleep, 60)
    finished.join()
    endless.kill()
    gevent.sleep(0.01)
    assert watch.died is None
    watch.check()
