#!/usr/bin/env python3
"""kv_observability: raftkit-kv's event log and /metrics on real processes.

Usage: test_kv_observability.py PATH/TO/raftkit-kv
For each --log-format (text, json): three processes on loopback; a few writes; the
leader's /metrics must pass `promtool check metrics` (Debian's `prometheus` package,
installed here with apt-get when missing) and hold the latency histograms (writes, commit,
fsync), the apply batch histogram, and per peer the lag (entries and seconds) and the
connection state. With text logs a follower is then SIGKILLed: the leader must show it
disconnected with a lag in seconds that grows while the writes made meanwhile commit
(counted by the commit histogram), and once it restarts, connected and caught up. Then
the leader is SIGKILLed and restarted, and the logs must show, one line per event in
the chosen format, the new leader's election and the old leader rejoining as a follower
of the higher term; last the new leader hands leadership over (POST /admin/transfer) and
logs the transfer's start and end. The event lines are printed.
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


def samples(text, name):
    """{labels: value} of one metric's samples (labels as the text between the braces)."""
    out = {}
    for m in re.finditer(r'^%s(?:\{([^}]*)\})? (\S+)$' % re.escape(name), text, re.M):
        out[m.group(1) or ""] = float(m.group(2))
    return out


def per_peer(text, name):
    """{peer id: value} of a metric labelled by peer."""
    return {int(re.match(r'peer="(\d+)"', k).group(1)): v for k, v in samples(text, name).items()}


def metrics(node):
    st, _, body = node.request("GET", "/metrics")
    check(st == 200, "node %d: /metrics answers" % node.id)
    return body.decode()


def check_new_metrics(fmt, cluster, lid, text, writes):
    """The histograms and per-peer gauges of a leader that has applied `writes` writes."""
    followers = sorted(n.id for n in cluster.nodes if n.id != lid)
    commit = samples(text, "raftkit_commit_seconds_count").get("", 0)
    check(commit >= writes, "%s: the commit-latency histogram counted the writes (%d of %d)" % (fmt, commit, writes))
    inf = samples(text, "raftkit_commit_seconds_bucket").get('le="+Inf"')
    check(inf == commit, "%s: commit histogram: +Inf bucket equals the count" % fmt)
    check(0 < samples(text, "raftkit_commit_seconds_sum")[""] < commit * 5,
          "%s: commit latencies are positive and below 5 s each" % fmt)
    batches = samples(text, "raftkit_apply_batch_entries_count").get("", 0)
    applied = samples(text, "raftkit_apply_batch_entries_sum").get("", 0)
    check(batches >= 1 and applied >= writes, "%s: apply batches counted (%d batches, %d entries)" % (fmt, batches, applied))
    check(samples(text, "raftkit_fsync_seconds_count").get("", 0) >= 1 and
          samples(text, 'raftkit_fsync_seconds_bucket').get('le="+Inf"') == samples(text, "raftkit_fsync_seconds_count")[""],
          "%s: the fsync histogram counted the log's syncs" % fmt)
    connected = per_peer(text, "raftkit_peer_connected")
    check(connected == {f: 1.0 for f in followers}, "%s: the leader is connected to each follower (%r)" % (fmt, connected))
    lag = per_peer(text, "raftkit_peer_lag_seconds")
    check(sorted(lag) == followers and all(0 <= v < 5 for v in lag.values()),
          "%s: the leader reports each follower's lag in seconds, small (%r)" % (fmt, lag))


def follower_killed(fmt, cluster, lid, deadline):
    """A follower SIGKILLed: disconnected, its lag in seconds growing while writes commit;
    restarted: connected and caught up (lag 0)."""
    leader = cluster.node(lid)
    fid = min(n.id for n in cluster.nodes if n.id != lid)
    other = max(n.id for n in cluster.nodes if n.id != lid)
    follower = cluster.node(fid)
    before = samples(metrics(leader), "raftkit_commit_seconds_count")[""]
    follower.kill(signal.SIGKILL)
    for i in range(10):
        check(leader.request("PUT", "/kv/after-kill-%d" % i, b"v")[0] == 200, "%s: PUT with a follower down" % fmt)
    first = None
    while deadline.left() > 0:
        text = metrics(leader)
        if per_peer(text, "raftkit_peer_connected").get(fid) == 0:
            lag = per_peer(text, "raftkit_peer_lag_seconds")[fid]
            if first is None:
                first = lag
            elif lag > first:
                break
        time.sleep(0.05)
    check(first is not None, "%s: the leader shows the killed follower %d disconnected" % (fmt, fid))
    lags = per_peer(text, "raftkit_peer_lag_seconds")
    check(lags[fid] > first > 0, "%s: the killed follower's lag grows (%.3f s, then %.3f s)" % (fmt, first, lags[fid]))
    check(lags[other] < lags[fid], "%s: the live follower lags less than the dead one (%r)" % (fmt, lags))
    check(per_peer(text, "raftkit_peer_connected").get(other) == 1, "%s: still connected to follower %d" % (fmt, other))
    after = samples(text, "raftkit_commit_seconds_count")[""]
    check(after >= before + 10, "%s: the writes made with a follower down were timed to commit (%d -> %d)" % (fmt, before, after))
    follower.start()
    check(kvcluster.wait_served(follower, deadline), "%s: the follower restarts" % fmt)
    while deadline.left() > 0:
        text = metrics(leader)
        if per_peer(text, "raftkit_peer_connected").get(fid) == 1 and per_peer(text, "raftkit_peer_lag_seconds").get(fid) == 0:
            break
        time.sleep(0.05)
    check(per_peer(text, "raftkit_peer_connected").get(fid) == 1, "%s: reconnected to the restarted follower" % fmt)
    check(per_peer(text, "raftkit_peer_lag_seconds").get(fid) == 0,
          "%s: the restarted follower caught up: lag 0 s (%r)" % (fmt, per_peer(text, "raftkit_peer_lag_seconds")))
    print("%s: follower %d killed: lag %.3f s, then %.3f s; restarted: caught up" % (fmt, fid, first, lags[fid]))


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
        check_new_metrics(fmt, cluster, lid, text, 20)
        follower = cluster.node(min(n.id for n in cluster.nodes if n.id != lid))
        fsamples = metrics(follower)
        check(samples(fsamples, "raftkit_apply_batch_entries_sum").get("", 0) >= 20,
              "%s: a follower counts its apply batches too" % fmt)
        check(samples(fsamples, "raftkit_commit_seconds_count").get("", 0) == 0,
              "%s: a follower times no commits (the leader does)" % fmt)
        if fmt == "text":
            follower_killed(fmt, cluster, lid, deadline)

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
        st, _, body = cluster.node(nid).request("POST", "/admin/transfer?to=any")
        check(st == 200, "%s: node %d hands leadership over (%d %r)" % (fmt, nid, st, body))
        to = json.loads(body)["leader"]
        handed = events(cluster.node(nid), fmt)
        check(has(handed, event="transfer_started", to=to), "%s: node %d logs the transfer to %d starting" % (fmt, nid, to))
        check(has(handed, event="transfer_ended", to=to, error="ok"), "%s: node %d logs it done" % (fmt, nid))
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
