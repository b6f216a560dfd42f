#!/usr/bin/env python3
"""kv_snapshots: snapshots and InstallSnapshot in three real raftkit-kv processes.

Usage: test_kv_snapshots.py PATH/TO/raftkit-kv
With --snapshot-every 100: SIGKILLs a follower, writes past several snapshots until the
leader's log is compacted beyond everything the follower holds, moves leadership to the other
follower and restarts the old leader (so nothing it queued for the stopped follower
survives), restarts the follower and checks it
catches up through InstallSnapshot (its /metrics count one installed) and then serves every
key; then restarts it again and checks it restored its snapshot (it applies only the tail,
not the whole log). Also checks /status and /metrics show the snapshot and the log's first
index. Exits non-zero on any failure; always kills what it started.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

EVERY = 100
KEYS = 150


def metric(node, name):
    """The value of one /metrics line, or None."""
    try:
        st, _, body = node.request("GET", "/metrics")
    except OSError:
        return None
    if st != 200:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def write_all(client, expected, rounds, deadline):
    for r in range(rounds):
        for k in range(KEYS):
            key, value = "k%d" % k, ("r%d-%d" % (r, k)).encode()
            kvcluster.put_retrying(client, key, value, deadline)
            expected[key] = value


def serves_every_key(node, expected):
    """GETs every key on node (through the log, answered from its own map)."""
    c = kvcluster.Client(node.http_port)
    try:
        for key, value in expected.items():
            st, _, body = c.request("GET", "/kv/" + key)
            if st != 200 or body != value:
                print("  %s: got %d %r, want %r" % (key, st, body[:40], value))
                return False
        return True
    finally:
        c.close()


def main(binary):
    deadline = kvcluster.Deadline(150)
    cluster = kvcluster.Cluster(binary, extra=["--snapshot-every", str(EVERY)])
    expected = {}
    try:
        cluster.start()
        lid = cluster.wait_leader(deadline)
        leader = cluster.node(lid)
        client = kvcluster.Client(leader.http_port)
        write_all(client, expected, 2, deadline)  # 300 writes: snapshots on every node
        f = cluster.node(next(n.id for n in cluster.nodes if n.id != lid))
        st = cluster.wait_applied(f.id, leader.status()["commit_index"], deadline)
        check(st["snapshot_index"] > 0 and st["snapshot_term"] > 0 and st["snapshot_size"] > 0,
              "/status shows the follower's snapshot index, term and size (%r)" %
              {k: st.get(k) for k in ("snapshot_index", "snapshot_term", "snapshot_size")})
        check(st["first_log_index"] > 1, "/status shows the compacted log's first index (%d)" % st["first_log_index"])
        check((metric(leader, "raftkit_snapshots_taken_total") or 0) >= 2, "/metrics counts snapshots taken")
        f_last = st["last_log_index"]

        f.kill()  # SIGKILL
        write_all(client, expected, 6, deadline)  # 900 more: nine snapshots past it
        # The leader went on probing the stopped follower, and its transport holds those
        # AppendEntries until the follower is back: delivered then, they could bring it far
        # enough that the rest follows as entries, not a snapshot. So leadership moves to
        # the other follower, which sent the stopped one nothing, and the old leader is
        # restarted, which drops what it had queued. Everything the new leader sends is
        # built from its compacted log.
        other = next(n for n in cluster.nodes if n.id not in (lid, f.id))
        st, _, body = leader.request("POST", "/admin/transfer?to=%d" % other.id)
        check(st == 200, "leadership moves to node %d (%d %r)" % (other.id, st, body[:60]))
        client.close()
        lid = cluster.wait_leader(deadline, exclude=(f.id, leader.id))
        leader.kill()
        leader.start()
        leader = cluster.node(lid)
        client = kvcluster.Client(leader.http_port)
        ls = leader.status()
        check(ls["first_log_index"] > f_last + 1,
              "the leader compacted past the stopped follower's log (%d > %d)" % (ls["first_log_index"], f_last + 1))

        f.start()
        target = leader.status()["commit_index"]
        fs = cluster.wait_applied(f.id, target, deadline)
        installed = metric(f, "raftkit_snapshots_installed_total") or 0
        check(installed >= 1, "the restarted follower caught up through InstallSnapshot (installed %d)" % installed)
        check((metric(f, "raftkit_snapshot_received_bytes_total") or 0) > 0, "/metrics counts snapshot bytes received")
        check((metric(leader, "raftkit_snapshot_sent_bytes_total") or 0) > 0, "/metrics counts snapshot bytes sent")
        check(fs["snapshot_index"] >= ls["snapshot_index"], "its newest snapshot is the leader's or newer")
        cluster.wait_leader(deadline)  # it knows the leader, so its reads are answered
        check(serves_every_key(f, expected), "the follower serves every key (%d)" % len(expected))

        # A restart restores the newest snapshot: only the log after it is applied again.
        f.kill()
        f.start()
        fs = cluster.wait_applied(f.id, leader.status()["commit_index"], deadline)
        applied_here = metric(f, "raftkit_applied_entries_total")
        check(applied_here is not None and applied_here < fs["applied_index"] - fs["snapshot_index"] + EVERY,
              "after a restart it applied only the tail after its snapshot (%r of %d)" %
              (applied_here, fs["applied_index"]))
        cluster.wait_leader(deadline)
        check(serves_every_key(f, expected), "and it serves every key after the restart")
        check(metric(f, "raftkit_snapshot_last_duration_seconds") is not None, "/metrics has the last snapshot's duration")
        client.close()
    finally:
        cluster.close()


if __name__ == "__main__":
    kvcluster.run_test(main)
