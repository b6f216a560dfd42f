#!/usr/bin/env python3
"""kv-snapshot-load: a 3-node raftkit-kv cluster on loopback under N writes over 1,000 keys,
with snapshots on or off; reports each node's peak resident memory (VmHWM) and the peak
size of its data directory. Node 3 is stopped for the first half of the writes and started
again: with snapshots it catches up through InstallSnapshot; then every key is read from it
and compared with what was acknowledged. Opt-in (not run by CI): benchmarks/snapshot_figures.

Usage: kv_snapshot_load.py PATH/TO/raftkit-kv [--writes 2000000] [--every 100000|0]
                           [--connections 16]
"""

import argparse
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "kv"))
import kvcluster  # noqa: E402


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512  # allocated, as du
            except OSError:
                pass
    return total


def peak_rss(node):
    try:
        with open("/proc/%d/status" % node.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def metric(node, name):
    st, _, body = node.request("GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--writes", type=int, default=2_000_000)
    ap.add_argument("--every", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=16)
    a = ap.parse_args()

    cluster = kvcluster.Cluster(a.binary, extra=["--snapshot-every", str(a.every)])
    peaks = {n.id: [0, 0] for n in cluster.nodes}  # rss, dir
    rss_seen = {n.id: 0 for n in cluster.nodes}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for n in cluster.nodes:
                if n.alive():
                    rss_seen[n.id] = max(rss_seen[n.id], peak_rss(n))
                peaks[n.id][1] = max(peaks[n.id][1], dir_bytes(n.data))
            time.sleep(1.0)

    try:
        cluster.start()
        deadline = kvcluster.Deadline(24 * 3600)
        lid = cluster.wait_leader(deadline)
        follower = cluster.node(3 if lid != 3 else 2)
        follower.kill()
        leader = cluster.node(lid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        expected = {}
        lock = threading.Lock()
        counter = [0]
        half = threading.Event()
        t0 = time.monotonic()

        def worker(w):
            c = kvcluster.Client(leader.http_port, timeout=10)
            while True:
                with lock:
                    i = counter[0]
                    if i >= a.writes:
                        return
                    counter[0] += 1
                    if i == a.writes // 2:
                        half.set()
                key, value = "k%d" % (i % 1000), b"v%d" % i
                kvcluster.put_retrying(c, key, value, deadline)
                with lock:
                    # Writes to one key from different connections may complete out of
                    # order: keep the one with the highest number acknowledged.
                    if expected.get(key, (-1,))[0] < i:
                        expected[key] = (i, value)

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(a.connections)]
        for t in threads:
            t.start()
        half.wait()
        t_half = time.monotonic()
        follower.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        target = leader.status()["commit_index"]
        cluster.wait_applied(follower.id, target, deadline)
        stop.set()
        sampler.join()
        for n in cluster.nodes:
            rss_seen[n.id] = max(rss_seen[n.id], peak_rss(n))
        # Same-key writes from different connections raced, so the final value of a key is
        # whatever the log ordered last; read it from the leader and compare the follower.
        lc, fc = kvcluster.Client(leader.http_port), kvcluster.Client(follower.http_port)
        same = 0
        for k in range(1000):
            ls, _, lv = lc.request("GET", "/kv/k%d" % k)
            fs, _, fv = fc.request("GET", "/kv/k%d" % k)
            same += ls == 200 and fs == 200 and lv == fv
        print("writes %d in %.0f s (%.0f/s), snapshot every %d; node %d stopped for the first half (%.0f s)" %
              (a.writes, elapsed, a.writes / elapsed, a.every, follower.id, t_half - t0))
        for n in cluster.nodes:
            print("node %d: peak RSS %.1f MiB, peak data dir %.1f MiB, final data dir %.1f MiB%s" %
                  (n.id, rss_seen[n.id] / 2**20, peaks[n.id][1] / 2**20, dir_bytes(n.data) / 2**20,
                   " (leader)" if n.id == lid else ""))
        print("node %d: snapshots installed %s; serves %d of 1000 keys equal to the leader's" %
              (follower.id, metric(follower, "raftkit_snapshots_installed_total"), same))
    finally:
        stop.set()
        cluster.close()


if __name__ == "__main__":
    main()
