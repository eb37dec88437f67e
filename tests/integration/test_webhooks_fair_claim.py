"""The per-target cap of the claim (workers/webhooks/fair_claim.py) against a real Redis.

Jobs of a target a process is full of wait aside, in order, and never block the claim of other
targets' jobs; every job is always in exactly one place.
"""

from __future__ import annotations

import time

from support.webhooks import KEYS, aside_ids, emit_many, notify_queue, registry_ids
from web.collectors.queues import queue_sizes
from workers.webhooks.delivery import DELIVERED, Outcome
from workers.webhooks.jobs import JobStore

SLOW, FAST = "http://127.0.0.1:9", "http://127.0.0.1:10"


def store(conn, lease: float = 30) -> JobStore:
    return JobStore(conn, KEYS, "test-worker", lease)


def emit_for(conn, account: str, target: str, n: int) -> list[str]:
    conn.hset(KEYS.account(account), "webhooks", f"{target}/{account}")
    return emit_many(conn, n, account=account)


def held(claims) -> dict[str, int]:
    counts: dict[str, int] = {}
    for claim in claims:
        counts[claim.target] = counts.get(claim.target, 0) + 1
    return counts


def everywhere(conn) -> list[str]:
    """Every job id in every place, with repeats: a job in two places shows twice."""
    places = registry_ids(conn)
    ids = [i for name in ("started", "scheduled", "finished", "failed") for i in places[name]]
    ids += notify_queue(conn).get_job_ids()
    return ids + [i for listed in aside_ids(conn).values() for i in listed]


def test_a_full_target_waits_aside_and_others_are_claimed_past_it(conn):
    slow = emit_for(conn, "slow", SLOW, 10)
    fast = emit_for(conn, "fast", FAST, 3)
    claims, _, seen = store(conn).claim(20, target_cap=3)
    assert [c.job.id for c in claims] == slow[:3] + fast  # past the slow backlog, in order
    assert aside_ids(conn) == {SLOW: slow[3:]} and seen.targets_aside == 1
    assert sorted(everywhere(conn)) == sorted(slow + fast)  # each job in one place
    sizes = queue_sizes(conn, KEYS)["notify"]
    assert sizes["waiting"] == 7 and sizes["active"] == 6  # waiting aside still counts as waiting


def test_aside_jobs_go_first_and_in_order_once_there_is_room(conn):
    slow = emit_for(conn, "slow", SLOW, 6)
    jobs = store(conn)
    first, _, _ = jobs.claim(10, target_cap=2)
    assert [c.job.id for c in first] == slow[:2]
    later = emit_for(conn, "slow", SLOW, 1)  # a newer job of the same target, in the queue
    none, _, seen = jobs.claim(10, target_cap=2, held=held(first))
    assert none == [] and seen.targets_aside == 1  # no room: nothing taken, the newer one aside too
    assert aside_ids(conn) == {SLOW: slow[2:] + later}
    jobs.finish(first[0], Outcome(DELIVERED, "HTTP 200", "u", 200), 10, 5)
    [next_one], _, _ = jobs.claim(10, target_cap=2, held=held(first[1:]))
    assert next_one.job.id == slow[2]  # the oldest aside, not the newest in the queue


def test_another_process_with_room_takes_the_aside_jobs(conn):
    slow = emit_for(conn, "slow", SLOW, 5)
    busy, _, _ = store(conn).claim(10, target_cap=2)
    other = JobStore(conn, KEYS, "other-worker", 30)
    taken, _, seen = other.claim(10, target_cap=2)
    assert [c.job.id for c in busy + taken] == slow[:4]
    assert aside_ids(conn) == {SLOW: slow[4:]}
    last, _, seen = other.claim(10, target_cap=3, held=held(taken))
    assert [c.job.id for c in last] == slow[4:]
    assert aside_ids(conn) == {} and seen.targets_aside == 0  # an emptied target leaves the ring


def test_a_requeued_job_goes_back_to_the_front_of_its_aside_list(conn):
    slow = emit_for(conn, "slow", SLOW, 4)
    dead = store(conn, lease=0.05)
    dead.claim(10, target_cap=1)
    time.sleep(0.1)
    assert store(conn).requeue_expired() == 1
    assert aside_ids(conn) == {SLOW: [slow[0]] + slow[1:]}  # ahead of the younger ones
    assert registry_ids(conn)["queued"] == set()


def test_a_claim_looks_at_a_bounded_part_of_a_huge_backlog(conn, monkeypatch):
    from workers.webhooks import fair_claim
    monkeypatch.setattr(fair_claim, "SCAN_LIMIT", 5)
    slow = emit_for(conn, "slow", SLOW, 12)
    fast = emit_for(conn, "fast", FAST, 1)
    jobs = store(conn)
    claims, _, seen = jobs.claim(10, target_cap=1)
    assert [c.job.id for c in claims] == slow[:1] and seen.more  # 1 taken, 4 aside: look again
    claims, _, seen = jobs.claim(10, target_cap=1, held={SLOW: 1})
    assert claims == [] and seen.more
    claims, _, seen = jobs.claim(10, target_cap=1, held={SLOW: 1})
    assert [c.job.id for c in claims] == fast and not seen.more
    assert aside_ids(conn) == {SLOW: slow[1:]}
