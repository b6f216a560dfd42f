#!/usr/bin/env python3
"""kv_http: three real raftkit-kv processes on loopback, checked over HTTP.

Usage: test_kv.py PATH/TO/raftkit-kv
Checks the HTTP API (PUT/POST/GET/DELETE, 404, 400, 413, unknown path, malformed HTTP → 400),
forwarding through followers, /status and /metrics; then SIGKILLs the leader, checks a new
leader serves every acknowledged key, restarts the old leader and checks it catches up.
Exits non-zero on any failure; always kills what it started.
"""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

MAX_BODY = 4096


def main(binary):
    deadline = kvcluster.Deadline(90)
    cluster = kvcluster.Cluster(binary, extra=["--max-body", str(MAX_BODY)])
    try:
        cluster.start()
        lid = cluster.wait_leader(deadline)
        leader = cluster.node(lid)
        followers = [n for n in cluster.nodes if n.id != lid]
        print("leader is node %d" % lid)

        # --- the API, on the leader
        check(leader.request("PUT", "/kv/a", b"1")[0] == 200, "PUT → 200")
        check(leader.request("POST", "/kv/a", b"2")[0] == 200, "POST appends → 200")
        st, _, body = leader.request("GET", "/kv/a")
        check(st == 200 and body == b"12", "GET returns the appended value (got %d %r)" % (st, body))
        check(leader.request("DELETE", "/kv/a")[0] == 200, "DELETE → 200")
        check(leader.request("GET", "/kv/a")[0] == 404, "GET after DELETE → 404")
        check(leader.request("GET", "/kv/never-written")[0] == 404, "GET of a missing key → 404")
        check(leader.request("PUT", "/kv/sp%20ace", b"x")[0] == 200, "percent-encoded key → 200")
        st, _, body = leader.request("GET", "/kv/sp%20ace")
        check(st == 200 and body == b"x", "percent-encoded key reads back")
        check(leader.request("PUT", "/kv/empty", b"")[0] == 200, "empty value → 200")
        st, _, body = leader.request("GET", "/kv/empty")
        check(st == 200 and body == b"", "an empty value exists (200, empty body)")

        # --- bad requests
        st, _, body = leader.request("PUT", "/kv/", b"x")
        check(st == 400 and body, "empty key → 400 with a reason")
        check(leader.request("PUT", "/kv/" + "k" * 1025, b"x")[0] == 400, "key over 1024 bytes → 400")
        check(leader.request("PUT", "/kv/" + "k" * 1024, b"x")[0] == 200, "key of 1024 bytes → 200")
        check(leader.request("GET", "/kv/bad%zz")[0] == 400, "bad percent-encoding → 400")
        check(leader.request("PATCH", "/kv/a", b"x")[0] == 400, "unsupported method → 400")
        st, hdr, _ = leader.request("PUT", "/kv/big", b"x" * (MAX_BODY + 1))
        check(st == 413 and hdr.get("x-raftkit-outcome") == "not-applied",
              "body over --max-body → 413, outcome not-applied (got %d %r)" % (st, hdr.get("x-raftkit-outcome")))
        check(leader.request("PUT", "/kv/big", b"x" * MAX_BODY)[0] == 200, "body of --max-body → 200")
        # The largest command the limits let through (longest key, largest body) replicates.
        longest = "L" * 1024
        check(leader.request("PUT", "/kv/" + longest, b"y" * MAX_BODY)[0] == 200,
              "the longest key with a body of --max-body → 200")
        st, _, body = leader.request("GET", "/kv/" + longest)
        check(st == 200 and body == b"y" * MAX_BODY, "and it reads back")
        check(leader.request("GET", "/nope")[0] == 404, "unknown path → 404")
        check(leader.request("GET", "/")[0] == 404, "root → 404")

        # --- malformed HTTP gets 400 and closes that connection, and nothing else
        s = socket.create_connection(("127.0.0.1", leader.http_port), timeout=3)
        try:
            s.sendall(b"\x00\xffNOT HTTP AT ALL\r\n\r\n" * 4)
            f = s.makefile("rb")
            r = kvcluster.read_response(f)
            try:
                closed = f.read() == b""
            except ConnectionResetError:
                closed = True
        finally:
            s.close()
        check(r is not None and r[0] == 400, "malformed HTTP → 400 (got %r)" % (r and r[0],))
        check(closed, "malformed HTTP closes the connection")
        check(leader.status() is not None, "the node still serves after malformed HTTP")

        # --- keep-alive: several requests on one connection
        c = kvcluster.Client(leader.http_port)
        try:
            ok = all(c.request("PUT", "/kv/ka%d" % i, b"v")[0] == 200 for i in range(5))
            sock_before = c.conn.sock
            ok = ok and c.request("GET", "/kv/ka4")[0] == 200 and c.conn.sock is sock_before
        finally:
            c.close()
        check(ok, "keep-alive: one connection serves several requests")

        # --- followers forward writes; a read they answer themselves once the leader has
        # confirmed its read index (ReadIndex), never from state that may be stale
        f1, f2 = followers
        check(f1.request("PUT", "/kv/fwd", b"via-follower")[0] == 200, "PUT via a follower → 200")
        st, _, body = f2.request("GET", "/kv/fwd")
        check(st == 200 and body == b"via-follower", "GET via the other follower sees it")
        _, _, m = f1.request("GET", "/metrics")
        check(b"raftkit_forwarded_total" in m, "a follower's metrics count forwarded proposals")

        # --- status and metrics
        s1 = leader.status()
        check(s1 is not None and all(k in s1 for k in
              ("id", "role", "term", "leader", "commit_index", "applied_index", "last_log_index")),
              "status JSON has id, role, term, leader, commit_index, applied_index, last_log_index")
        check(s1["id"] == lid and s1["role"] == "leader" and s1["leader"] == lid, "status names the leader")
        st, hdr, m = leader.request("GET", "/metrics")
        text = m.decode()
        names = ["raftkit_role", "raftkit_term", "raftkit_leader", "raftkit_commit_index",
                 "raftkit_applied_index", "raftkit_proposals_total", "raftkit_elections_total",
                 "raftkit_messages_sent_total", "raftkit_messages_received_total",
                 "raftkit_bytes_sent_total", "raftkit_bytes_received_total",
                 "raftkit_fsync_seconds_sum", "raftkit_fsync_seconds_count", "raftkit_fsync_seconds_max"]
        present = {line.split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
        check(st == 200 and all(n in present for n in names), "metrics text has every required metric")
        check("raftkit_role 2" in text, "metrics: the leader's role is 2")
        fsyncs = [l for l in text.splitlines() if l.startswith("raftkit_fsync_seconds_count ")]
        check(bool(fsyncs) and int(fsyncs[0].split()[1]) > 0, "metrics: the file log has counted its fsyncs")

        # --- kill the leader: a new one serves every acknowledged key
        acked = {}
        c = kvcluster.Client(leader.http_port)
        try:
            for i in range(50):
                kvcluster.put_retrying(c, "k%d" % i, b"v%d" % i, deadline)
                acked["k%d" % i] = b"v%d" % i
        finally:
            c.close()
        leader.kill(signal.SIGKILL)
        t0 = time.monotonic()
        new_lid = cluster.wait_leader(deadline, exclude={lid})
        print("new leader is node %d after %.3f s" % (new_lid, time.monotonic() - t0))
        check(new_lid != lid, "a new leader is elected")
        new_leader = cluster.node(new_lid)
        bad = kvcluster.unreadable(new_leader, acked)
        check(not bad, "the new leader serves every acknowledged key (%d keys)" % len(acked))
        c = kvcluster.Client(new_leader.http_port)
        try:
            for i in range(50, 60):
                kvcluster.put_retrying(c, "k%d" % i, b"v%d" % i, deadline)
        finally:
            c.close()

        # --- restart the old leader: it rejoins with its log and catches up
        leader.start()
        target = new_leader.status()["commit_index"]
        s = cluster.wait_applied(lid, target, deadline)
        check(s["applied_index"] >= target, "the restarted node catches up (applied %d ≥ %d)" %
              (s["applied_index"], target))
        st, _, body = leader.request("GET", "/kv/k55")
        check(st == 200 and body == b"v55", "the restarted node serves a key written while it was down")
        lines = leader.log_text()
        check("raftkit-kv %d: raft 127.0.0.1:%d, http 127.0.0.1:%d" % (lid, leader.raft_port, leader.http_port)
              in lines, "the server prints where it serves")

        # --- SIGTERM stops a node gracefully
        f = cluster.node([n.id for n in cluster.nodes if n.id != new_lid][0])
        f.proc.send_signal(signal.SIGTERM)
        try:
            rc = f.proc.wait(timeout=max(1, min(10, deadline.left())))
        except Exception:
            rc = None
        check(rc == 0, "SIGTERM stops a node with exit status 0 (got %r)" % rc)
    except Exception as e:  # a timeout or an unexpected error is a failure too
        kvcluster.fail_with_logs(cluster, e)
    finally:
        cluster.close()


if __name__ == "__main__":
    kvcluster.run_test(main)
