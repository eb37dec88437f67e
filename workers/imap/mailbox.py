"""What changed in one mailbox since its last sync, at a cost that follows the change, not the size.

Per server capability (docs/imap.md, "Sync"):
- new mail: always `UID SEARCH UID <saved uidnext>:<uidnext - 1>`, then envelopes in batches;
- deletions: QRESYNC reports them in the EXAMINE answer (VANISHED since the saved HIGHESTMODSEQ);
  elsewhere the known count (a sorted set in Redis) is compared with the server's count of old
  messages, and only when they differ are the deleted UIDs found by probing sequence numbers:
  the UID at sequence i tells how many known messages before it are gone (its rank among the
  known UIDs minus i), so a bisection narrows each gap down to a few dozen messages;
- flags: QRESYNC in the EXAMINE answer, CONDSTORE through `FETCH (FLAGS) (CHANGEDSINCE m)`,
  and on servers with neither a full pass in chunks at the poll interval (`full=True`).
A mailbox seen for the first time is baselined in chunks of sequence numbers, yielding between
them; the IMAP commands and Redis writes of one chunk take a few milliseconds.

What it finds goes to a Report (sync.py turns it into events). Each report is made before the
state that records it: a crash in between repeats that one event, never loses it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import gevent

from .client import MeteredIMAPClient, parse_sequence_set
from .syncstate import SyncState

log = logging.getLogger(__name__)

CHUNK = 1000  # messages per FETCH (UID FLAGS) of a baseline or full pass
ENVELOPE_BATCH = 50  # new messages per FETCH of envelopes (parsing 50 takes a few ms)
PROBES = 16  # sequence numbers probed per gap and round when deletions are searched
SMALL_GAP = 64  # a gap this small is fetched whole instead of probed
NEW_ITEMS = ["UID", "ENVELOPE", "FLAGS", "RFC822.SIZE", "INTERNALDATE"]


def flag_list(flags) -> list[str]:
    # \Recent belongs to one session (it differs between two connections): not a message change.
    names = (f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in flags or ())
    return sorted(f for f in names if f != "\\Recent")


def flag_text(flags) -> str:
    return " ".join(flag_list(flags))


def _old(rows, uidnext: int) -> dict[int, tuple]:
    """UID -> flags of the rows that were known before (new messages are reported as new)."""
    return {r.uid: r.flags for r in rows if r.uid < uidnext}


class Report(Protocol):
    def reset(self, path: str, uidvalidity: int) -> None: ...
    def new(self, path: str, uidvalidity: int, uid: int, item: dict) -> None: ...
    def deleted(self, path: str, uidvalidity: int, uid: int) -> None: ...
    def updated(self, path: str, uidvalidity: int, uid: int, before: str, after: str) -> None: ...


@dataclass(frozen=True)
class Capabilities:
    condstore: bool
    qresync: bool


class MailboxSync:
    def __init__(self, client: MeteredIMAPClient, state: SyncState, report: Report, caps: Capabilities):
        self.client = client
        self.state = state
        self.report = report
        self.caps = caps

    def sync(self, path: str, full: bool = False) -> None:
        """EXAMINE the mailbox and report what changed. `full`: also compare every message's flags
        (servers without CONDSTORE, at the poll interval). Expunges the server reported while
        this ran make it look again (a few times at most), so none is left for later."""
        for _ in range(3):
            if not self._sync_once(path, full):
                return
            full = False

    def _sync_once(self, path: str, full: bool) -> bool:
        """One pass; True if the server reported expunges meanwhile (counts may be off)."""
        saved = self.state.mailbox(path)
        qresync = (self.caps.qresync and saved is not None and not saved.get("partial")
                   and saved.get("uidvalidity") is not None and saved.get("modseq"))
        info = self.client.examine(path, (saved["uidvalidity"], saved["modseq"]) if qresync else None)
        meta = {"uidvalidity": info.get(b"UIDVALIDITY"), "uidnext": info.get(b"UIDNEXT"),
                "exists": info.get(b"EXISTS", 0), "modseq": info.get(b"HIGHESTMODSEQ"), "indexed": True}
        if meta["uidnext"] is None:  # a server that does not say: one past the last UID
            last = self.client.fetch_flags("*", uid=False) if meta["exists"] else []
            meta["uidnext"] = last[-1].uid + 1 if last else 1
        if saved is None or saved.get("partial"):
            self._baseline(path, meta)
            return False
        if saved.get("uidvalidity") is None or (saved["uidvalidity"] != meta["uidvalidity"]
                                                and not saved["exists"] and not self.state.count(path)):
            # Appeared after the account's first sync, or a new UIDVALIDITY where no message was
            # known (Courier gives an empty Maildir a new one at every look): all in it is new.
            saved = dict(saved, uidvalidity=meta["uidvalidity"], uidnext=1, exists=0, modseq=None)
            qresync = False
        elif saved["uidvalidity"] != meta["uidvalidity"]:
            self.report.reset(path, meta["uidvalidity"])
            self._baseline(path, meta)
            return False
        if not saved.get("indexed"):
            self.state.build_index(path)  # state from before the index existed
        unchanged = (saved["uidnext"] == meta["uidnext"] and saved["exists"] == meta["exists"]
                     and saved.get("modseq") == meta["modseq"])
        if unchanged and not (full and not self.caps.condstore):
            return False
        uidvalidity = meta["uidvalidity"]
        new = (self.client.search_uids(saved["uidnext"], meta["uidnext"] - 1)
               if meta["uidnext"] > saved["uidnext"] else [])
        self._report_new(path, uidvalidity, new)
        if qresync:
            self._report_vanished(path, uidvalidity, info[b"VANISHED"], saved["uidnext"])
            self._report_flags(path, uidvalidity, _old(info[b"CHANGED"], saved["uidnext"]))
        elif full and not self.caps.condstore:
            self._full_pass(path, uidvalidity, meta["exists"], saved["uidnext"])
        else:
            self._find_deleted(path, uidvalidity, meta["exists"] - len(new), saved["uidnext"])
            if self.caps.condstore and saved.get("modseq") and meta["modseq"] != saved.get("modseq"):
                since = [f"CHANGEDSINCE {saved['modseq']}"]
                rows = self.client.fetch_flags("1:*", uid=True, modifiers=since)
                self._report_flags(path, uidvalidity, _old(rows, saved["uidnext"]))
        if self.client.expunged_meanwhile() or self.state.count(path) != meta["exists"]:
            meta["exists"] = -1  # counts moved under us: the next sync looks again
            self.state.save_mailbox(path, meta)
            return True
        self.state.save_mailbox(path, meta)
        return False

    # -- first sight: record without reporting -----------------------------------------------------
    def _baseline(self, path: str, meta: dict) -> None:
        self.state.start_baseline(path, meta)
        for start in range(1, meta["exists"] + 1, CHUNK):
            rows = self.client.fetch_flags(f"{start}:{min(meta['exists'], start + CHUNK - 1)}", uid=False)
            self.state.remember(path, {r.uid: flag_text(r.flags) for r in rows if r.uid < meta["uidnext"]})
            gevent.sleep(0)  # let the process's other greenlets run between chunks
        self.state.save_mailbox(path, meta)

    # -- new, deleted, changed ---------------------------------------------------------------------
    def _report_new(self, path: str, uidvalidity: int, uids: list[int]) -> None:
        for start in range(0, len(uids), ENVELOPE_BATCH):
            batch = uids[start:start + ENVELOPE_BATCH]
            items = self.client.fetch(batch, NEW_ITEMS)
            for uid in batch:
                item = items.get(uid)
                if item is None:  # expunged between SEARCH and FETCH
                    continue
                self.report.new(path, uidvalidity, uid, item)
                self.state.remember(path, {uid: flag_text(item.get(b"FLAGS"))})
                gevent.sleep(0)  # Redis answers at once under load: yield anyway, once per event

    def _report_deleted(self, path: str, uidvalidity: int, uids: list[int]) -> None:
        for uid in sorted(uids):
            self.report.deleted(path, uidvalidity, uid)
            self.state.forget(path, [uid])
            gevent.sleep(0)

    def _report_flags(self, path: str, uidvalidity: int, flags_by_uid: dict[int, tuple]) -> None:
        known = self.state.flags_of(path, sorted(flags_by_uid))
        for uid, flags in sorted(flags_by_uid.items()):
            before, after = known.get(uid), flag_text(flags)
            if before is not None and before != after:
                self.report.updated(path, uidvalidity, uid, before, after)
                self.state.remember(path, {uid: after})
                gevent.sleep(0)

    def _report_vanished(self, path: str, uidvalidity: int, vanished: list[str], uidnext: int) -> None:
        gone = []
        for text in vanished:
            for low, high in parse_sequence_set(text):
                if low < uidnext:
                    gone += self.state.known_between(path, low, min(high, uidnext - 1))
        self._report_deleted(path, uidvalidity, gone)

    # -- servers without QRESYNC: deletions from counts and probes -----------------------------------
    def _find_deleted(self, path: str, uidvalidity: int, old_on_server: int, uidnext: int) -> None:
        """Find the known UIDs the server no longer has, given how many old messages (UID below
        `uidnext`) it has: nothing is fetched when the counts agree."""
        known = self.state.count(path)
        if known == old_on_server:
            return
        if old_on_server <= 0:
            self._report_deleted(path, uidvalidity, self.state.known_between(path, "-inf", uidnext - 1))
            return
        ends = self._probe([1, old_on_server], path)
        if ends is None:
            self._full_pass(path, uidvalidity, old_on_server, uidnext)
            return
        (first_uid, first_gone), (last_uid, last_gone) = ends[1], ends[old_on_server]
        gone = self.state.known_between(path, "-inf", f"({first_uid}")  # before the first message
        gone += self.state.known_between(path, f"({last_uid}", uidnext - 1)  # after the last
        gaps = [(1, first_uid, first_gone, old_on_server, last_uid, last_gone)]
        while gaps:
            small = [g for g in gaps if g[2] != g[5] and g[3] - g[0] <= SMALL_GAP]
            wide = [g for g in gaps if g[2] != g[5] and g[3] - g[0] > SMALL_GAP]
            for a, a_uid, _, b, b_uid, _ in small:
                present = {r.uid for r in self.client.fetch_flags(f"{a}:{b}", uid=False)}
                gone += [u for u in self.state.known_between(path, a_uid, b_uid) if u not in present]
            gaps = []
            if wide:
                points = sorted({a + (b - a) * i // PROBES
                                 for a, _, _, b, _, _ in wide for i in range(1, PROBES)})
                probed = self._probe(points, path)
                if probed is None:
                    self._full_pass(path, uidvalidity, old_on_server, uidnext)
                    return
                for a, a_uid, a_gone, b, b_uid, b_gone in wide:
                    inner = [p for p in points if a < p < b]
                    marks = [(a, a_uid, a_gone)] + [(p, *probed[p]) for p in inner] + [(b, b_uid, b_gone)]
                    gaps += [(*left, *right) for left, right in zip(marks, marks[1:], strict=False)]
        self._report_deleted(path, uidvalidity, gone)

    def _probe(self, seqs: list[int], path: str) -> dict[int, tuple[int, int]] | None:
        """seq -> (uid, known messages gone before it). None when the server's messages do not
        line up with the known ones (an old message never seen): then a full pass sorts it out."""
        rows = {r.seq: r.uid for r in self.client.fetch_flags(",".join(map(str, seqs)), uid=False)}
        if any(s not in rows for s in seqs):
            return None
        ranks = self.state.ranks(path, [rows[s] for s in seqs])
        if any(r is None for r in ranks):
            log.info("mailbox %r: old messages never seen before: comparing every message once", path)
            return None
        return {s: (rows[s], rank - (s - 1)) for s, rank in zip(seqs, ranks, strict=True)}

    # -- servers without CONDSTORE: every message's flags, in chunks ---------------------------------
    def _full_pass(self, path: str, uidvalidity: int, exists: int, uidnext: int) -> None:
        previous, gone, late = 0, [], []
        for start in range(1, exists + 1, CHUNK):
            rows = [r for r in self.client.fetch_flags(f"{start}:{min(exists, start + CHUNK - 1)}", uid=False)
                    if r.uid < uidnext]
            if not rows:
                continue
            last = max(r.uid for r in rows)
            present = {r.uid: r.flags for r in rows}
            gone += [u for u in self.state.known_between(path, f"({previous}", last) if u not in present]
            known = self.state.flags_of(path, sorted(present))
            late += [u for u in present if known[u] is None]
            self._report_flags(path, uidvalidity, {u: f for u, f in present.items() if known[u] is not None})
            previous = last
            gevent.sleep(0)
        gone += self.state.known_between(path, f"({previous}", uidnext - 1)
        self._report_deleted(path, uidvalidity, gone)
        if late:  # missed earlier (never lose mail): announced now
            self._report_new(path, uidvalidity, sorted(late))
