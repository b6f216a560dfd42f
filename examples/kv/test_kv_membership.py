#!/usr/bin/env python3
"""kv_membership: replacing a dead node in a running raftkit-kv cluster, as README's
"Replace a dead node" says, with real processes on loopback.

Usage: test_kv_membership.py PATH/TO/raftkit-kv
Starts three nodes and writes; SIGKILLs a follower; starts a fresh node with --join, adds
it as a learner, promotes it, removes the dead one (each through /admin/members on the
leader; a follower answers 409 with the leader hint); writes more; checks every
acknowledged write is readable from every remaining member. Then: the new node restarts
from its data directory alone (no --join, no --cluster); the removed node, started again,
keeps campaigning without raising the cluster's term; a second node is added as a voter
in one request and leads, a third replays configurations that do not list that leader
yet, catches up, and is removed while it runs; a start that contradicts a data
directory's record is refused (exit 8). Every wait polls against a deadline.
Exits non-zero on any failure; always kills what it started.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

EXIT_IDENTITY = 8


def admin(node, method, path, body=None):
    """(status, headers, JSON body or None)."""
    st, hdr, raw = node.request(method, path, body=None if body is None else json.dumps(body).encode(),
                                timeout=60.0)
    try:
        return st, hdr, json.loads(raw)
    except ValueError:
        return st, hdr, None


def ids(members, role):
    return sorted(m["id"] for m in members[role])


def write_keys(node, first, last, deadline, acked):
    c = kvcluster.Client(node.http_port)
    try:
        for i in range(first, last):
            kvcluster.put_retrying(c, "k%d" % i, b"v%d" % i, deadline)
            acked["k%d" % i] = b"v%d" % i
    finally:
        c.close()


def wait_members(node, deadline, want_voters, want_learners=()):
    """Polls node's GET /admin/members until it lists exactly these voters and learners,
    not joint; returns the JSON."""
    while True:
        deadline.check("waiting for node %d to list voters %s" % (node.id, want_voters))
        try:
            st, _, m = admin(node, "GET", "/admin/members")
            if st == 200 and not m["joint"] and ids(m, "voters") == sorted(want_voters) and \
                    ids(m, "learners") == sorted(want_learners):
                return m
        except OSError:
            pass
        time.sleep(0.02)


def main(binary):
    deadline = kvcluster.Deadline(90)
    cluster = kvcluster.Cluster(binary)
    try:
        cluster.start()
        lid = cluster.wait_leader(deadline)
        leader = cluster.node(lid)
        acked = {}
        write_keys(leader, 0, 30, deadline, acked)

        st, _, m = admin(leader, "GET", "/admin/members")
        check(st == 200 and ids(m, "voters") == [1, 2, 3] and m["learners"] == [] and m["outgoing"] == [],
              "GET /admin/members lists the three initial voters (got %d %r)" % (st, m))
        check(m["voters"][0]["raft"] == "127.0.0.1:%d" % cluster.node(1).raft_port,
              "an initial member's raft address comes from --cluster")

        # --- a follower dies
        dead = next(n for n in cluster.nodes if n.id != lid)
        dead.kill(signal.SIGKILL)
        write_keys(leader, 30, 60, deadline, acked)

        # --- a fresh node joins: no cluster list, waits to be added
        new = cluster.add_node(4)
        new.start()
        check(kvcluster.wait_served(new, deadline), "a node started with --join serves HTTP")
        st, _, m = admin(new, "GET", "/admin/members")
        check(st == 200 and m["voters"] == [] and m["leader"] == 0,
              "the joining node has no configuration and knows no leader (got %r)" % (m,))

        other = next(n for n in cluster.nodes if n.id not in (lid, dead.id, new.id))
        body = dict(new.addresses(), role="learner")
        st, hdr, m = admin(other, "POST", "/admin/members", body)
        check(st == 409 and hdr.get("x-raftkit-leader") == str(lid) and m["may_have_applied"] is False,
              "POST /admin/members on a follower → 409 naming the leader, not applied (got %d %r)" % (st, m))
        st, _, _ = admin(leader, "POST", "/admin/members", dict(body, role="boss"))
        check(st == 400, "a bad role → 400")

        # --- add as learner, promote, remove the dead one
        st, _, m = admin(leader, "POST", "/admin/members", body)
        check(st == 200 and ids(m, "learners") == [4] and m["change_index"] > 0,
              "add the new node as a learner → 200 (got %d %r)" % (st, m))
        learner = [x for x in m["learners"] if x["id"] == 4]
        check(learner and learner[0]["http"] == "127.0.0.1:%d" % new.http_port,
              "the learner's addresses come from its context")
        st, _, m = admin(leader, "POST", "/admin/members", body)
        check(st == 400 and m["may_have_applied"] is False, "adding it twice → 400, not applied (got %d %r)" % (st, m))
        st, _, m = admin(leader, "POST", "/admin/members/4/promote")
        check(st == 200 and ids(m, "voters") == [1, 2, 3, 4] and not m["joint"],
              "promote it → 200, four voters (got %d %r)" % (st, m))
        st, _, m = admin(leader, "DELETE", "/admin/members/%d" % dead.id)
        remaining = sorted(n.id for n in cluster.nodes if n.id != dead.id)
        check(st == 200 and ids(m, "voters") == remaining, "remove the dead node → 200, voters %s (got %d %r)" %
              (remaining, st, m))
        st, _, m = admin(leader, "DELETE", "/admin/members/%d" % dead.id)
        check(st == 400, "removing it again → 400 (got %d)" % st)

        write_keys(leader, 60, 90, deadline, acked)
        for n in cluster.nodes:
            if n.id == dead.id:
                continue
            wait_members(n, deadline, remaining)
            bad = kvcluster.unreadable(n, acked)
            check(not bad, "node %d serves every acknowledged write (%d keys; bad: %r)" % (n.id, len(acked), bad[:5]))
        st, _, m = admin(new, "GET", "/admin/members")
        ldr = [x for x in m["voters"] if x["id"] == lid]
        check(ldr and ldr[0]["raft"] == "127.0.0.1:%d" % leader.raft_port,
              "the new node knows the initial members' addresses (told by the leader)")
        st, hdr, _ = admin(new, "POST", "/admin/members/%d/promote" % new.id)
        check(st in (400, 409) and (st != 409 or hdr.get("x-raftkit-leader") == str(lid)),
              "a change on the new node is refused, or redirected to the leader (got %d)" % st)

        # --- the new node restarts from its data directory alone
        new.kill(signal.SIGTERM)
        new.launch = "record"
        new.start()
        write_keys(leader, 90, 100, deadline, acked)
        cluster.wait_applied(new.id, leader.status()["commit_index"], deadline)
        bad = kvcluster.unreadable(new, acked)
        check(not bad, "restarted without --join or --cluster, the new node serves every write")

        # --- another node joins as a voter in one request and takes the lead; a third joins
        # as a learner: it replays configurations that do not list its leader yet, and must
        # not drop that leader; it is removed again while it runs
        # (More entries than one AppendEntries carries, so the third node appends the
        # configurations before node 5's in an earlier batch and follows them.)
        write_keys(leader, 1000, 1300, deadline, acked)
        fifth = cluster.add_node(5)
        fifth.start()
        check(kvcluster.wait_served(fifth, deadline), "a second joining node serves HTTP")
        st, _, m = admin(leader, "POST", "/admin/members", dict(fifth.addresses(), role="voter"))
        remaining = sorted(remaining + [5])
        check(st == 200 and ids(m, "voters") == remaining and not m["joint"],
              "add a node as a voter in one request → 200 (got %d %r)" % (st, m))
        st, _, _ = leader.request("POST", "/admin/transfer?to=5")
        check(st == 200, "leadership moves to node 5 (got %d)" % st)
        lid = cluster.wait_leader(deadline, exclude={dead.id})
        check(lid == 5, "node 5 leads (leader %d)" % lid)
        leader = cluster.node(lid)
        sixth = cluster.add_node(6)
        sixth.start()
        check(kvcluster.wait_served(sixth, deadline), "a third joining node serves HTTP")
        st, _, m = admin(leader, "POST", "/admin/members", dict(sixth.addresses(), role="learner"))
        check(st == 200 and ids(m, "learners") == [6], "add it as a learner → 200 (got %d %r)" % (st, m))
        write_keys(leader, 110, 120, deadline, acked)
        cluster.wait_applied(sixth.id, leader.status()["commit_index"], deadline)
        check(not kvcluster.unreadable(sixth, acked), "the learner catches up and serves every acknowledged write")
        st, _, m = admin(leader, "DELETE", "/admin/members/6")
        check(st == 200 and ids(m, "learners") == [], "remove it while it runs → 200 (got %d %r)" % (st, m))

        # --- the removed node comes back and campaigns: the cluster's term does not rise
        term = leader.status()["term"]
        dead.start()
        while True:
            deadline.check("waiting for the removed node to campaign")
            s = dead.status()
            if s is not None and s["pre_votes"] + s["elections"] >= 3:
                break
            time.sleep(0.02)
        sts = [n.status() for n in cluster.nodes if n.id in remaining]
        check(all(s is not None and s["term"] == term and s["leader"] == lid for s in sts),
              "after the removed nodes campaigned (one) and ran on (the other) the members keep term %d and "
              "leader %d (got %r)" % (term, lid, [(s["term"], s["leader"]) if s else None for s in sts]))
        write_keys(leader, 120, 130, deadline, acked)
        sixth.kill()
        dead.kill()

        # --- a data directory is not used by another node, nor rejoined
        def refused(what, args, needle):
            p = subprocess.run(args, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
            err = p.stderr.decode(errors="replace").strip()
            check(p.returncode == EXIT_IDENTITY and needle in err and len(err.splitlines()) == 1,
                  "%s → exit %d, one line (got %d %r)" % (what, EXIT_IDENTITY, p.returncode, err))
        base = [binary, "--http", "127.0.0.1:%d" % dead.http_port, "--data", dead.data]
        refused("another --id on a data directory", base + ["--id", "9"], "belongs to node %d" % dead.id)
        refused("--join on an initial member's data directory",
                base + ["--id", str(dead.id), "--join", "--raft", "127.0.0.1:%d" % dead.raft_port], "--join")
        refused("--cluster with other members", base + ["--id", str(dead.id), "--cluster",
                "%d=127.0.0.1:2,7=127.0.0.1:1" % dead.id], "--cluster lists members")
        new.kill(signal.SIGTERM)
        refused("--cluster for a node that joined", [binary, "--id", str(new.id), "--cluster",
                ",".join("%d=127.0.0.1:%d" % (n.id, n.raft_port) for n in cluster.initial + [new]),
                "--http", "127.0.0.1:%d" % new.http_port, "--data", new.data], "joined a running cluster")
    except Exception as e:  # a timeout or an unexpected error is a failure too
        kvcluster.fail_with_logs(cluster, e, tail=3000)
    finally:
        cluster.close()


if __name__ == "__main__":
    kvcluster.run_test(main)
