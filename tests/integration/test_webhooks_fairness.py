"""Real webhooks processes and receivers: a receiver that hangs holds up only its own events."""

from __future__ import annotations

from shared.stores.settings import SettingsStore
from support.receiver import Receiver
from support.servers import wait_for
from support.webhooks import KEYS, aside_ids, emit_many, registry_ids
from web.collectors.queues import queue_sizes
from workers.webhooks.worker import jobs_held


def emit_for(conn, account: str, url: str, n: int) -> list[str]:
    conn.hset(KEYS.account(account), "webhooks", url)
    return emit_many(conn, n, account=account)


def test_a_hanging_receiver_holds_up_only_its_own_events(conn, env, spawn):
    env.update(WEBHOOK_CONCURRENCY="6", WEBHOOK_TARGET_CONCURRENCY="2", WEBHOOK_TIMEOUT="60",
               WEBHOOK_LEASE="3")
    with Receiver(latency=60) as hanging, Receiver() as fast:
        SettingsStore(conn, KEYS).update({"webhooksEnabled": True, "webhookEvents": ["*"]})
        slow_jobs = emit_for(conn, "slow", hanging.url + "/slow", 20)
        fast_jobs = emit_for(conn, "fast", fast.url + "/fast", 5)  # queued behind the backlog
        first = spawn("workers.webhooks", env)
        wait_for(lambda: len(fast.event_ids()) == 5, timeout=20, what="the other target's events")
        assert hanging.max_in_flight == 2 and len(hanging.requests) == 2  # its cap, no more
        held = jobs_held(2)  # the 2 in flight and one ready for the next free slot
        assert len(aside_ids(conn)[hanging.url]) == 20 - held
        sizes = queue_sizes(conn, KEYS)["notify"]
        assert (sizes["waiting"], sizes["active"], sizes["completed"]) == (20 - held, held, 5)

        # A second process has room of its own for the target: it takes from the aside list.
        second = spawn("workers.webhooks", env)
        wait_for(lambda: hanging.in_flight == 4, what="the second process's share")
        first.kill()
        second.kill()
        places = registry_ids(conn)
        placed = [i for name in ("queued", "aside", "started") for i in places[name]]
        assert sorted(placed) == sorted(slow_jobs)  # SIGKILL: each job in exactly one place
        assert len(places["started"]) == 2 * held and places["finished"] == set(fast_jobs)

        # The receiver recovers; a new process hands back the dead ones' jobs and delivers all.
        hanging.latency = 0
        spawn("workers.webhooks", env)
        wait_for(lambda: set(slow_jobs) <= registry_ids(conn)["finished"], timeout=30,
                 what="every job of the recovered target")
    assert aside_ids(conn) == {}
    assert len(hanging.event_ids()) == 20  # all of them, the 4 cut off ones at least twice
