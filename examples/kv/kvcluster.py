"""Runs a raftkit-kv cluster of local processes; shared by test_kv.py and demo.py.

Standard library only. Every process started is killed by close(), which callers run in a
`finally`. Every wait polls with short timeouts against an explicit deadline.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time


class Deadline:
    """An overall time budget; expired() says when to give up."""

    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self, what):
        if self.left() <= 0:
            raise TimeoutError("deadline passed while " + what)


class Node:
    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.id = node_id
        self.raft_port = cluster.base_port + node_id
        self.http_port = cluster.base_port + 10 + node_id
        self.data = os.path.join(cluster.dir, "node%d" % node_id)
        self.proc = None
        self.log_path = os.path.join(cluster.dir, "node%d.log" % node_id)

    def start(self):
        os.makedirs(self.data, exist_ok=True)
        members = ",".join("%d=127.0.0.1:%d" % (n.id, n.raft_port) for n in self.cluster.nodes)
        args = [self.cluster.binary, "--id", str(self.id), "--cluster", members,
                "--http", "127.0.0.1:%d" % self.http_port, "--data", self.data] + self.cluster.extra
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method, path, body=None, timeout=3.0, headers=None):
        """One request on a fresh connection: (status, headers dict, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def status(self, timeout=1.0):
        """The /status JSON, or None if the node does not answer."""
        try:
            st, _, body = self.request("GET", "/status", timeout=timeout)
            return json.loads(body) if st == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            return None

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class Cluster:
    def __init__(self, binary, size=3, extra=None, keep_dir=False):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="raftkit-kv-")
        self.keep_dir = keep_dir
        # Ports below 32768 (outside Linux's ephemeral range), derived from the pid so
        # concurrent runs rarely collide.
        self.base_port = 20000 + (os.getpid() % 1200) * 10
        self.extra = list(extra or [])
        self.nodes = []
        self.nodes = [Node(self, i) for i in range(1, size + 1)]

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def start(self):
        for n in self.nodes:
            n.start()

    def close(self):
        for n in self.nodes:
            try:
                n.kill()
            except OSError:
                pass
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def wait_leader(self, deadline, exclude=()):
        """Polls until every running node (not in exclude) names the same leader, which
        says it is leader; returns its id."""
        while True:
            deadline.check("waiting for a leader")
            running = [n for n in self.nodes if n.alive() and n.id not in exclude]
            sts = [n.status() for n in running]
            if sts and all(s is not None for s in sts):
                leaders = {s["leader"] for s in sts}
                if len(leaders) == 1:
                    lid = leaders.pop()
                    if lid != 0 and lid not in exclude:
                        ls = self.node(lid).status()
                        if ls is not None and ls["role"] == "leader":
                            return lid
            time.sleep(0.02)

    def wait_applied(self, node_id, index, deadline):
        while True:
            deadline.check("waiting for node %d to apply %d" % (node_id, index))
            s = self.node(node_id).status()
            if s is not None and s["applied_index"] >= index:
                return s
            time.sleep(0.02)


class Client:
    """A keep-alive HTTP connection to one node, reconnecting after errors."""

    def __init__(self, port, timeout=3.0):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def put_retrying(client, key, value, deadline):
    """PUTs until 200 (PUT is idempotent, so retrying an unknown outcome is safe)."""
    while True:
        deadline.check("writing " + key)
        try:
            st, _, _ = client.request("PUT", "/kv/" + key, value)
            if st == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.01)
