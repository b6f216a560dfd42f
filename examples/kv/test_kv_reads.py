#!/usr/bin/env python3
"""kv_reads: reads without the log, leadership transfer and check-quorum, on three real
raftkit-kv processes on loopback.

Usage: test_kv_reads.py PATH/TO/raftkit-kv
Checks that GET goes through ReadIndex (no log entry, on the leader and on followers, which
answer from their own state: nothing forwarded), ?consistency=lease|local and bad values,
/status and /metrics fields for reads, pre-vote, check-quorum and elections;
POST /admin/transfer to a node, to any, on a follower and to an unknown node; then SIGSTOPs
both followers and polls the leader's /status until it no longer says it leads (reporting
how long that took, in election timeouts), and SIGCONTs them. Exits non-zero on any failure;
always kills what it started.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

ELECTION_TIMEOUT_MS = 150


def metric(node, name):
    """One sample of a metric from /metrics (the whole name, labels included), or None."""
    _, _, body = node.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    return None


def main(binary):
    deadline = kvcluster.Deadline(120)
    cluster = kvcluster.Cluster(binary, extra=["--election-timeout-ms", str(ELECTION_TIMEOUT_MS)])
    try:
        cluster.start()
        lid = cluster.wait_leader(deadline)
        leader = cluster.node(lid)
        f1, f2 = [n for n in cluster.nodes if n.id != lid]
        print("leader is node %d" % lid)

        # --- reads on the leader, at each consistency; none appends to the log
        check(leader.request("PUT", "/kv/a", b"1")[0] == 200, "PUT → 200")
        last = leader.status()["last_log_index"]
        for c in ("", "?consistency=linearizable", "?consistency=lease", "?consistency=local"):
            st, _, body = leader.request("GET", "/kv/a" + c)
            check(st == 200 and body == b"1", "GET /kv/a%s on the leader → 200 1 (got %d %r)" % (c, st, body))
        st, hdr, _ = leader.request("GET", "/kv/a?consistency=strong")
        check(st == 400 and hdr.get("x-raftkit-outcome") == "not-applied", "an unknown consistency → 400")
        check(leader.request("GET", "/kv/none?consistency=lease")[0] == 404, "a lease read of a missing key → 404")
        check(leader.status()["last_log_index"] == last, "reads appended nothing to the log")

        # --- follower reads: each write on the leader is seen at once by a linearizable
        # GET on a follower (it waits to apply the leader's read index), which answers from
        # its own state: no proposal is forwarded and the log does not grow
        forwarded = metric(f1, "raftkit_forwarded_total")
        c_leader = kvcluster.Client(leader.http_port)
        c_follower = kvcluster.Client(f1.http_port)
        stale = []
        try:
            for i in range(30):
                kvcluster.put_retrying(c_leader, "seq", b"%d" % i, deadline)
                st, _, body = c_follower.request("GET", "/kv/seq")
                if st != 200 or body != b"%d" % i:
                    stale.append((i, st, body))
        finally:
            c_leader.close()
            c_follower.close()
        check(not stale, "a follower's linearizable GET sees the write just acknowledged by the leader (%r)" % stale[:3])
        last = leader.status()["last_log_index"]
        for _ in range(20):
            f1.request("GET", "/kv/seq")
        check(leader.status()["last_log_index"] == last, "follower reads appended nothing to the log")
        check(metric(f1, "raftkit_forwarded_total") == forwarded, "a follower forwarded no read as a proposal")
        s = f1.status()
        check(s["reads"]["linearizable"] >= 50 and s["read_index_calls"] >= 50,
              "the follower's /status counts its linearizable reads (%r, read index %r)" %
              (s["reads"], s["read_index_calls"]))
        st, _, body = f2.request("GET", "/kv/seq?consistency=lease")
        check(st == 200 and body == b"29", "a lease read on a follower (asks the leader's lease) → 200")
        st, _, body = f2.request("GET", "/kv/seq?consistency=local")
        check(st == 200, "a local read on a follower → 200")

        # --- /status and /metrics
        s = leader.status()
        check(s["pre_vote"] is True and s["check_quorum"] is True, "status: pre-vote and check-quorum are on")
        lease = None
        lease_deadline = kvcluster.Deadline(min(10, deadline.left()))
        while lease_deadline.left() > 0 and not lease:
            lease = leader.status()["lease_valid"]
            time.sleep(0.005)
        check(lease is True, "status: the leader's lease is valid while its followers answer")
        check(leader.status()["lease_ms_left"] > 0, "status: the lease has time left")
        check(f1.status()["lease_valid"] is False, "status: a follower holds no lease")
        check(metric(leader, 'raftkit_reads_total{consistency="lease"}') >= 2, "metrics: lease reads counted")
        check(metric(leader, 'raftkit_reads_total{consistency="local"}') >= 1, "metrics: local reads counted")
        won = sum(metric(n, "raftkit_elections_won_total") for n in cluster.nodes)
        started = sum(metric(n, "raftkit_elections_total") for n in cluster.nodes)
        check(won >= 1 and started >= won, "metrics: elections started %d, won %d" % (started, won))
        check(metric(leader, "raftkit_read_rounds_total") > 0, "metrics: the leader's read rounds")

        # --- leadership transfer
        term = leader.status()["term"]
        st, _, body = leader.request("POST", "/admin/transfer?to=%d" % f1.id, timeout=5)
        check(st == 200 and json.loads(body)["leader"] == f1.id,
              "POST /admin/transfer?to=%d → 200, node %d leads (got %d %r)" % (f1.id, f1.id, st, body))
        new = cluster.wait_leader(deadline)
        check(new == f1.id and f1.status()["term"] == term + 1, "the target leads in the next term")
        st, hdr, _ = leader.request("POST", "/admin/transfer?to=any", timeout=5)
        check(st == 409 and hdr.get("x-raftkit-leader") == str(f1.id),
              "a transfer asked of a follower → 409 naming the leader (got %d %r)" % (st, hdr.get("x-raftkit-leader")))
        check(f1.request("POST", "/admin/transfer?to=9", timeout=5)[0] == 400, "a transfer to an unknown node → 400")
        st, _, body = f1.request("POST", "/admin/transfer?to=any", timeout=5)
        check(st == 200 and json.loads(body)["leader"] != f1.id, "POST /admin/transfer?to=any → 200, another node leads")
        lid = cluster.wait_leader(deadline)
        leader = cluster.node(lid)
        followers = [n for n in cluster.nodes if n.id != lid]
        check(leader.request("PUT", "/kv/after", b"t")[0] == 200, "the new leader takes writes")

        # --- check-quorum: a leader cut off from both followers (SIGSTOP) stops saying it
        # leads. The assertion is on state; the time it took is reported, not asserted.
        for n in followers:
            n.proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        stepped_down = None
        # Generous: 2 election timeouts is what check-quorum promises; this only bounds a hang.
        step_deadline = kvcluster.Deadline(min(20, deadline.left()))
        try:
            while step_deadline.left() > 0:
                s = leader.status(timeout=1.0)
                if s is not None and s["role"] != "leader":
                    stepped_down = time.monotonic() - t0
                    break
                time.sleep(0.005)
            check(stepped_down is not None, "the cut-off leader's /status reports it is no longer leader")
            if stepped_down is not None:
                print("measured: the leader reported %s %.0f ms after SIGSTOP of both followers "
                      "(%.2f election timeouts of %d ms)" %
                      (s["role"], stepped_down * 1000, stepped_down * 1000 / ELECTION_TIMEOUT_MS, ELECTION_TIMEOUT_MS))
            st, hdr, _ = leader.request("GET", "/kv/after", timeout=5)
            check(st == 503 and hdr.get("x-raftkit-outcome") == "not-applied",
                  "a linearizable GET on the cut-off node → 503, no value (got %d)" % st)
            st, _, body = leader.request("GET", "/kv/after?consistency=local", timeout=5)
            check(st == 200 and body == b"t", "a local GET there still answers from its own state")
        finally:
            for n in followers:
                n.proc.send_signal(signal.SIGCONT)
        cluster.wait_leader(deadline)
        lid = cluster.wait_leader(deadline)
        st, _, body = cluster.node(lid).request("GET", "/kv/after")
        check(st == 200 and body == b"t", "after SIGCONT the cluster leads and reads again")
    except Exception as e:  # a timeout or an unexpected error is a failure too
        kvcluster.fail_with_logs(cluster, e)
    finally:
        for n in cluster.nodes:
            if n.alive():
                n.proc.send_signal(signal.SIGCONT)
        cluster.close()


if __name__ == "__main__":
    kvcluster.run_test(main)
