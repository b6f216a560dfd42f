#!/usr/bin/env python3
"""The raftkit demo: a 3-node raftkit-kv cluster on loopback survives losing its leader.

Usage: demo.py PATH/TO/raftkit-kv [--keys N] [--connections C]
Starts three processes (data in a temp dir), writes N keys over HTTP with C concurrent
keep-alive connections, SIGKILLs the leader, measures how long until a new leader accepts a
write, checks every acknowledged key is still readable, restarts the old leader and shows it
catching up without an extra election: the term after its restart is the term before (pre-vote
keeps a rejoining node from raising it). Cleans up (kills everything, removes the temp dir) whatever happens.
"""

import argparse
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402


def say(msg):
    print(msg, flush=True)


def parallel(n_threads, items, work):
    """Runs work(client_index, item) over items split across n_threads; returns the
    exceptions raised (empty on success)."""
    errors = []
    chunks = [items[i::n_threads] for i in range(n_threads)]

    def run(i):
        try:
            for it in chunks[i]:
                work(i, it)
        except Exception as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--keys", type=int, default=2000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--log-format", choices=["text", "json"], default="text",
                    help="the nodes' event log format (raftkit-kv --log-format)")
    ap.add_argument("--events", action="store_true",
                    help="print every node's event log at the end: the elections, the leader's loss and its rejoin")
    args = ap.parse_args()

    deadline = kvcluster.Deadline(120)
    cluster = kvcluster.Cluster(args.binary, extra=["--log-format", args.log_format])
    ok = False
    try:
        say("== starting 3 raftkit-kv nodes (data in %s)" % cluster.dir)
        cluster.start()
        t0 = time.monotonic()
        lid = cluster.wait_leader(deadline)
        say("   leader: node %d, elected in %.3f s" % (lid, time.monotonic() - t0))
        leader = cluster.node(lid)

        say("== writing %d keys over %d keep-alive connections to the leader" % (args.keys, args.connections))
        clients = [kvcluster.Client(leader.http_port) for _ in range(args.connections)]
        keys = ["key-%05d" % i for i in range(args.keys)]
        t0 = time.monotonic()
        errors = parallel(args.connections, keys,
                          lambda c, k: kvcluster.put_retrying(clients[c], k, ("value of " + k).encode(), deadline))
        elapsed = time.monotonic() - t0
        for c in clients:
            c.close()
        if errors:
            raise RuntimeError("writes failed: %r" % errors[0])
        throughput = args.keys / elapsed
        say("   %d writes acknowledged in %.2f s: %.0f writes/s" % (args.keys, elapsed, throughput))
        st = leader.status()
        say("   leader status: term %d, commit %d, applied %d" % (st["term"], st["commit_index"], st["applied_index"]))

        say("== SIGKILL the leader (node %d)" % lid)
        leader.kill(signal.SIGKILL)
        t_kill = time.monotonic()
        others = [n for n in cluster.nodes if n.id != lid]
        clients = {n.id: kvcluster.Client(n.http_port, timeout=1.0) for n in others}
        writer = None
        # Ask the survivors who leads (a quick /status), and write to the one that says it
        # does: a write sent to a follower would wait for the dead leader first.
        while writer is None:
            deadline.check("waiting for a new leader to accept a write")
            for n in others:
                s = n.status(timeout=0.2)
                if s is None or s["role"] != "leader":
                    continue
                try:
                    if clients[n.id].request("PUT", "/kv/after-failover", b"yes")[0] == 200:
                        writer = n
                        break
                except OSError:
                    pass
            else:
                time.sleep(0.005)
        for c in clients.values():
            c.close()
        failover = time.monotonic() - t_kill
        new_lid = cluster.wait_leader(deadline, exclude={lid})
        say("   new leader node %d accepted a write %.3f s after the kill" % (writer.id, failover))
        nst = cluster.node(new_lid).status()
        say("   new leader: node %d, term %d" % (new_lid, nst["term"]))

        say("== reading every acknowledged key from the new leader")
        readers = [kvcluster.Client(cluster.node(new_lid).http_port) for _ in range(args.connections)]
        missing = []

        def read(c, k):
            s, _, body = readers[c].request("GET", "/kv/" + k)
            if s != 200 or body != ("value of " + k).encode():
                missing.append(k)

        t0 = time.monotonic()
        errors = parallel(args.connections, keys, read)
        read_time = time.monotonic() - t0
        for c in readers:
            c.close()
        if errors:
            raise RuntimeError("reads failed: %r" % errors[0])
        say("   %d/%d keys readable (%.0f linearizable reads/s)" %
            (args.keys - len(missing), args.keys, args.keys / read_time))
        if missing:
            raise RuntimeError("%d acknowledged keys lost, e.g. %s" % (len(missing), missing[:5]))

        say("== restarting node %d with its data directory" % lid)
        term_before = cluster.node(new_lid).status()["term"]
        leader.start()
        t0 = time.monotonic()
        target = cluster.node(new_lid).status()["commit_index"]
        s = cluster.wait_applied(lid, target, deadline)
        catch_up = time.monotonic() - t0
        say("   node %d replayed its log and caught up to index %d in %.3f s (role %s, leader %d)" %
            (lid, s["applied_index"], catch_up, s["role"], s["leader"]))
        # A restarted node that campaigned would do so within an election timeout or two
        # of starting; give it a second, then compare every node's term with the one before.
        time.sleep(1.0)
        after = cluster.wait_leader(deadline)
        terms_after = {n.id: n.status()["term"] for n in cluster.nodes}
        term_after = max(terms_after.values())
        say("   term before the restart: %d; after: %d (%s); leader node %d" %
            (term_before, term_after,
             "no extra election" if term_after == term_before else "%d extra term(s)" % (term_after - term_before),
             after))

        say("")
        say("== summary")
        say("   writes:    %d keys, %.0f writes/s (%d connections)" % (args.keys, throughput, args.connections))
        say("   failover:  %.3f s from SIGKILL of the leader to an accepted write" % failover)
        say("   new leader: node %d; all %d acknowledged keys readable" % (new_lid, args.keys))
        say("   rejoin:    old leader caught up in %.3f s; term %d before its restart, %d after%s" %
            (catch_up, term_before, term_after, "" if term_after == term_before else " (an extra election)"))
        ok = True
        if args.events:
            for n in cluster.nodes:
                lines = [ln for ln in n.log_text().splitlines() if ln]
                say("")
                say("== node %d events (%s)%s" %
                    (n.id, args.log_format, ": the leader, SIGKILLed and restarted (two runs)" if n.id == lid else ""))
                for ln in lines:
                    say("   " + ln)
    except Exception as e:
        say("demo FAILED: %s" % e)
        for n in cluster.nodes:
            say("--- node %d log (tail):\n%s" % (n.id, n.log_text()[-1500:]))
    finally:
        cluster.close()
        say("== cleaned up (processes killed, %s removed)" % cluster.dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
