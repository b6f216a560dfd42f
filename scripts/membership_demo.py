#!/usr/bin/env python3
"""membership_demo: raftkit-kv changing its membership under load, live (not part of CI).

Usage: scripts/membership_demo.py PATH/TO/raftkit-kv [--clients 64] [--steady 3]
                                  [--election-timeout-ms 150]

Runs a 3-node raftkit-kv cluster on loopback (data in a temporary directory) under a
closed-loop write load of --clients HTTP clients (threads with a keep-alive connection
each, every write a PUT of its own key to the current leader, retried until acknowledged,
as kvcluster.put_retrying does). Meanwhile it grows the cluster 3 -> 5 (two nodes started
with --join, each added as a voter), SIGKILLs the leader, replaces it with a new empty
node (--join, added as a learner, promoted, the dead one removed: README's procedure),
and shrinks back to 3 (two followers removed). Between steps the load runs --steady
seconds undisturbed. At the end every acknowledged write is read back from every member.

Reports the write throughput in each phase and, for each change (and the failover), how
long it took and the longest stall: the longest time in the change's window with no write
acknowledged by any client.
"""

import argparse
import bisect
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "kv"))
import kvcluster  # noqa: E402


class Load:
    """The writers, the leader they aim at, and when each write was acknowledged."""

    def __init__(self, cluster, clients):
        self.cluster = cluster
        self.clients = clients
        self.leader_port = None
        self.stop = threading.Event()
        self.acked = [dict() for _ in range(clients)]  # per client: key -> value
        self.times = [[] for _ in range(clients)]  # per client: monotonic ack times
        self.threads = []

    def find_leader(self):
        """Polls the running nodes until one says it leads; aims the writers at it."""
        while not self.stop.is_set():
            for n in list(self.cluster.nodes):
                if not n.alive():
                    continue
                s = n.status(timeout=0.5)
                if s is not None and s["role"] == "leader":
                    self.leader_port = n.http_port
                    return n
            time.sleep(0.01)
        return None

    def monitor(self):
        while not self.stop.is_set():
            self.find_leader()
            time.sleep(0.02)

    def writer(self, w):
        client = None
        port = None
        seq = 0
        while not self.stop.is_set():
            key, value = "c%d-%d" % (w, seq), b"v%d" % seq
            while not self.stop.is_set():
                if client is None or port != self.leader_port:
                    if client is not None:
                        client.close()
                    port = self.leader_port
                    client = kvcluster.Client(port, timeout=5.0)
                try:
                    st, _, _ = client.request("PUT", "/kv/" + key, value)
                except OSError:
                    st = None
                except Exception:  # noqa: BLE001 (http.client's errors)
                    st = None
                if st == 200:
                    self.acked[w][key] = value
                    self.times[w].append(time.monotonic())
                    seq += 1
                    break
                time.sleep(0.005)
        if client is not None:
            client.close()

    def start(self):
        self.find_leader()
        self.threads = [threading.Thread(target=self.monitor, daemon=True)]
        self.threads += [threading.Thread(target=self.writer, args=(w,), daemon=True) for w in range(self.clients)]
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def all_times(self):
        return sorted(t for ts in self.times for t in ts)

    def all_acked(self):
        out = {}
        for a in self.acked:
            out.update(a)
        return out


def admin(load, method, path, body=None, deadline=None):
    """Sends a membership request to the leader, following redirects and retrying what
    did not apply (409, 503 not-applied, connection errors) until it answers 200."""
    deadline = deadline or kvcluster.Deadline(60)
    while True:
        deadline.check("%s %s" % (method, path))
        leader = load.find_leader()
        try:
            st, hdr, raw = leader.request(method, path, None if body is None else json.dumps(body).encode(),
                                          timeout=60)
        except OSError:
            continue
        if st == 200:
            return json.loads(raw)
        if st in (409, 503) and hdr.get("x-raftkit-outcome") == "not-applied":
            print("  (%s %s: %d %s; retrying)" % (method, path, st, raw.decode(errors="replace").strip()), flush=True)
            time.sleep(0.02)
            continue
        raise RuntimeError("%s %s: %d %s" % (method, path, st, raw.decode(errors="replace")))


def longest_stall(times, a, b):
    """The longest time within [a, b] with no write acknowledged (times sorted)."""
    i, j = bisect.bisect_left(times, a), bisect.bisect_right(times, b)
    pts = times[max(i - 1, 0):j + 1]
    gaps = [min(y, b) - max(x, a) for x, y in zip(pts, pts[1:]) if y > a and x < b]
    return max(gaps, default=b - a)


def rate(times, a, b):
    n = bisect.bisect_right(times, b) - bisect.bisect_left(times, a)
    return n, n / (b - a) if b > a else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--steady", type=float, default=3.0, help="seconds of undisturbed load between steps")
    ap.add_argument("--election-timeout-ms", type=int, default=150)
    ap.add_argument("--keep", action="store_true", help="keep the data directories and logs (printed at the end)")
    a = ap.parse_args()

    cluster = kvcluster.Cluster(a.binary, extra=["--election-timeout-ms", str(a.election_timeout_ms),
                                                 "--max-connections", "512"], keep_dir=a.keep)
    phases = []  # (name, start, end)
    changes = []  # (name, start, end)
    load = None
    try:
        cluster.start()
        deadline = kvcluster.Deadline(600)
        cluster.wait_leader(deadline)
        load = Load(cluster, a.clients)
        load.start()

        def steady(name):
            t0 = time.monotonic()
            time.sleep(a.steady)
            phases.append((name, t0, time.monotonic()))

        def change(name, f):
            t0 = time.monotonic()
            r = f()
            changes.append((name, t0, time.monotonic()))
            return r

        def join(node_id):
            n = cluster.add_node(node_id)
            n.start()
            if not kvcluster.wait_served(n, deadline):
                raise RuntimeError("node %d does not serve" % node_id)
            return n

        time.sleep(0.5)  # the clients connect and settle
        steady("3 voters")
        t_grow = time.monotonic()
        for node_id in (4, 5):
            n = join(node_id)
            change("add node %d as a voter" % node_id,
                   lambda n=n: admin(load, "POST", "/admin/members", dict(n.addresses(), role="voter")))
        phases.append(("growing 3 -> 5", t_grow, time.monotonic()))
        steady("5 voters")

        leader = load.find_leader()
        t_kill = time.monotonic()
        leader.kill(signal.SIGKILL)
        # The failover ends when a write is acknowledged after the kill.
        while True:
            deadline.check("waiting for a write after the leader's kill")
            times = load.times
            if any(ts and ts[-1] > t_kill for ts in times):
                break
            time.sleep(0.005)
        changes.append(("SIGKILL the leader (node %d): failover" % leader.id, t_kill, time.monotonic()))

        t_rep = time.monotonic()
        new = join(6)
        change("add node 6 as a learner",
               lambda: admin(load, "POST", "/admin/members", dict(new.addresses(), role="learner")))
        change("promote node 6", lambda: admin(load, "POST", "/admin/members/6/promote"))
        change("remove dead node %d" % leader.id, lambda: admin(load, "DELETE", "/admin/members/%d" % leader.id))
        phases.append(("replacing the leader", t_rep, time.monotonic()))
        steady("5 voters again")

        t_shrink = time.monotonic()
        for _ in range(2):
            cur = load.find_leader()
            m = json.loads(cur.request("GET", "/admin/members")[2])
            victim = next(v["id"] for v in m["voters"] if v["id"] != cur.id and v["id"] != 6)
            change("remove node %d" % victim, lambda v=victim: admin(load, "DELETE", "/admin/members/%d" % v))
            cluster.node(victim).kill(signal.SIGTERM)
        phases.append(("shrinking 5 -> 3", t_shrink, time.monotonic()))
        steady("3 voters again")
        load.finish()

        # --- every acknowledged write, from every member
        cur = cluster.node(cluster.wait_leader(deadline, exclude={n.id for n in cluster.nodes if not n.alive()}))
        m = json.loads(cur.request("GET", "/admin/members")[2])
        members = sorted(v["id"] for v in m["voters"])
        acked = load.all_acked()
        target = cur.status()["commit_index"]
        missing = {}
        for mid in members:
            n = cluster.node(mid)
            cluster.wait_applied(mid, target, deadline)
            keys = list(acked.items())
            bad = [0]
            lock = threading.Lock()

            def check(part, n=n, bad=bad, lock=lock):
                c = kvcluster.Client(n.http_port, timeout=10)
                wrong = 0
                for k, v in part:
                    st, _, body = c.request("GET", "/kv/" + k + "?consistency=local")
                    wrong += st != 200 or body != v
                c.close()
                with lock:
                    bad[0] += wrong

            ts = [threading.Thread(target=check, args=(keys[i::16],)) for i in range(16)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            missing[mid] = bad[0]

        times = load.all_times()
        print("membership demo: %d clients, election timeout %d ms, %d acknowledged writes" %
              (a.clients, a.election_timeout_ms, len(acked)))
        print("\nthroughput by phase:")
        for name, t0, t1 in phases:
            n, r = rate(times, t0, t1)
            print("  %-24s %6.2f s  %7d writes  %8.0f writes/s" % (name, t1 - t0, n, r))
        print("\nchanges:")
        for name, t0, t1 in changes:
            n, r = rate(times, t0, t1)
            print("  %-40s took %6.3f s  longest stall %6.3f s  %8.0f writes/s meanwhile" %
                  (name, t1 - t0, longest_stall(times, t0, t1), r))
        print("\nfinal voters %s; acknowledged writes not read back: %s" %
              (members, ", ".join("node %d: %d" % (k, v) for k, v in missing.items())))
        ok = len(members) == 3 and all(v == 0 for v in missing.values())
        print("OK" if ok else "FAILED")
        if a.keep:
            print("data and logs kept in " + cluster.dir)
        return 0 if ok else 1
    finally:
        if load is not None:
            load.stop.set()
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
