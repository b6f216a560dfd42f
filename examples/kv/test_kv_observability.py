#!/usr/bin/env python3
"""kv_observability: raftkit-kv's event log and /metrics on real processes.

Usage: test_kv_observability.py PATH/TO/raftkit-kv
For each --log-format (text, json): three processes on loopback; a few writes; the
leader's /metrics must pass `promtool check metrics` (Debian's `prometheus` package,
installed here with apt-get when missing) and hold the write-latency histogram and the
per-peer lag; then the leader is SIGKILLed and restarted, and the logs must show, one
line per event in the chosen format, the new leader's election and the old leader
rejoining as a follower of the higher term. The event lines are printed.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

TEXT_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (debug|info|warn|error) node=(\d+) term=(\d+) (\w+)( \w+=\S+)*")


def promtool():
    """The path of promtool, installing Debian's prometheus package if it is missing."""
    path = shutil.which("promtool")
    if path:
        return path
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"],
                   env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return shutil.which("promtool")


def events(node, fmt):
    """The node's event lines, parsed: dicts with node, term, event, and the fields."""
    out = []
    for line in node.log_text().splitlines():
        if fmt == "json":
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                check(False, "node %d: a JSON log line does not parse: %r" % (node.id, line))
        else:
            m = TEXT_RE.match(line)
            if not m:
                continue
            e = {"level": m.group(1), "node": int(m.group(2)), "term": int(m.group(3)), "event": m.group(4)}
            for kv in line.split(" ")[5:]:
                k, _, v = kv.partition("=")
                e[k] = v
            out.append(e)
    return out


def has(evs, **want):
    return any(all(str(e.get(k)) == str(v) for k, v in want.items()) for e in evs)


def run(binary, fmt, tool):
    deadline = kvcluster.Deadline(60)
    cluster = kvcluster.Cluster(binary, extra=["--log-format", fmt])
    try:
        cluster.start()
        lid = cluster.wait_leader(deadline)
        leader = cluster.node(lid)
        for i in range(20):
            check(leader.request("PUT", "/kv/k%d" % i, b"v")[0] == 200, "%s: PUT k%d" % (fmt, i))
        st, _, body = leader.request("GET", "/metrics")
        check(st == 200, "%s: /metrics answers" % fmt)
        text = body.decode()
        r = subprocess.run([tool, "check", "metrics"], input=body, capture_output=True)
        check(r.returncode == 0, "%s: promtool check metrics passes (%s)" % (fmt, (r.stdout + r.stderr).decode().strip()))
        m = re.search(r'^raftkit_write_seconds_bucket\{le="\+Inf"\} (\d+)$', text, re.M)
        check(m is not None and int(m.group(1)) >= 20, "%s: the write-latency histogram counted the writes" % fmt)
        peers = re.findall(r'^raftkit_peer_lag_entries\{peer="(\d+)"\} \d+$', text, re.M)
        check(sorted(peers) == sorted(str(n.id) for n in cluster.nodes if n.id != lid),
              "%s: the leader reports each follower's lag (%r)" % (fmt, peers))

        old_term = leader.status()["term"]
        leader.kill(signal.SIGKILL)
        nid = cluster.wait_leader(deadline, exclude=(lid,))
        leader.start()
        check(kvcluster.wait_served(leader, deadline), "%s: the old leader restarts" % fmt)
        while deadline.left() > 0:
            st = leader.status()
            if st and st.get("leader") == nid:
                break
            time.sleep(0.02)
        new = events(cluster.node(nid), fmt)
        old = events(leader, fmt)
        check(has(new, event="role_changed", to="leader", why="election_won"),
              "%s: node %d logs that it became leader" % (fmt, nid))
        check(any(e["event"] == "term_changed" and int(e["to"]) > old_term for e in new),
              "%s: node %d logs the new term" % (fmt, nid))
        check(has(old, event="leader_changed", to=nid), "%s: the restarted node %d logs its new leader %d" % (fmt, lid, nid))
        if fmt == "json":
            repeats = [line for n in cluster.nodes for line in n.log_text().splitlines()
                       if line.startswith("{") and line.count('"term":') != 1]
            check(not repeats, "json: no line repeats a key (%r)" % repeats[:1])
        print("--- %s event log of node %d (the new leader), then node %d (killed and restarted)" % (fmt, nid, lid))
        for n in (cluster.node(nid), leader):
            for line in n.log_text().splitlines():
                if line.startswith("{") or TEXT_RE.match(line):
                    print("  " + line)
    finally:
        cluster.close()


def main(binary):
    tool = promtool()
    check(tool is not None, "promtool is available (apt-get install prometheus)")
    if not tool:
        return
    for fmt in ("text", "json"):
        run(binary, fmt, tool)


if __name__ == "__main__":
    kvcluster.run_test(main)
