"""Runs a raftkit-kv cluster of local processes; shared by test_kv.py and demo.py.

Standard library only. Every process started is killed by close(), which callers run in a
`finally`. Every wait polls with short timeouts against an explicit deadline.
"""

import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
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
    def __init__(self, cluster, node_id, launch="cluster"):
        self.cluster = cluster
        self.id = node_id
        # How start() launches it: "cluster" (--cluster with the initial members), "join"
        # (--join, empty data directory) or "record" (--id, --http and --data only: the data
        # directory's record says the rest).
        self.launch = launch
        self.raft_port = cluster.base_port + node_id
        self.http_port = cluster.base_port + 10 + node_id
        self.data = os.path.join(cluster.dir, "node%d" % node_id)
        self.proc = None
        self.log_path = os.path.join(cluster.dir, "node%d.log" % node_id)

    def args(self):
        """The command line that starts this node (see launch)."""
        how = []
        if self.launch == "cluster":
            members = ",".join("%d=127.0.0.1:%d" % (n.id, n.raft_port) for n in self.cluster.initial)
            how = ["--cluster", members]
        elif self.launch == "join":
            how = ["--join", "--raft", "127.0.0.1:%d" % self.raft_port]
        return [self.cluster.binary, "--id", str(self.id)] + how + [
            "--http", "127.0.0.1:%d" % self.http_port, "--data", self.data] + self.cluster.extra

    def addresses(self):
        """This node's addresses, as POST /admin/members takes them."""
        return {"id": self.id, "raft": "127.0.0.1:%d" % self.raft_port, "http": "127.0.0.1:%d" % self.http_port}

    def start(self, nofile=None):
        """Starts the process; nofile=(soft, hard) sets its RLIMIT_NOFILE."""
        os.makedirs(self.data, exist_ok=True)
        log = open(self.log_path, "ab")

        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        try:
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=limit if nofile else None)
        finally:
            log.close()

    def cpu_seconds(self):
        """User plus system CPU time the process has used so far (/proc/PID/stat)."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def open_fds(self):
        """How many file descriptors the process has open."""
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

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
        self.nodes = [Node(self, i) for i in range(1, size + 1)]
        self.initial = list(self.nodes)  # the members --cluster lists

    def node(self, node_id):
        return next(n for n in self.nodes if n.id == node_id)

    def add_node(self, node_id):
        """A node that joins the running cluster (--join, not started yet)."""
        n = Node(self, node_id, launch="join")
        self.nodes.append(n)
        return n

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


def unreadable(node, acked):
    """The acknowledged keys (dict key -> value) that `node` does not serve with their value
    (linearizable reads): [(key, status)]."""
    c = Client(node.http_port)
    bad = []
    try:
        for k, v in acked.items():
            st, _, body = c.request("GET", "/kv/" + k)
            if st != 200 or body != v:
                bad.append((k, st))
    finally:
        c.close()
    return bad


def read_response(f):
    """Reads one HTTP/1.1 response from a binary file object (a socket's makefile('rb')):
    (status, headers dict lowercased, body bytes), or None at end of stream. For answers
    to pipelined requests, which http.client does not read."""
    line = f.readline()
    if not line:
        return None
    status = int(line.split()[1])
    headers = {}
    while True:
        h = f.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


# --- checks shared by the test scripts

failures = []


def check(cond, what):
    """Prints ok/FAIL for one check and remembers failures."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def fail_exception(e):
    """A timeout or an unexpected error is a failure too."""
    check(False, "exception: %r" % (e,))


def fail_with_logs(cluster, e, tail=2000):
    """A test's exception: a failure, with the end of each node's log to explain it."""
    fail_exception(e)
    for n in cluster.nodes:
        print("--- node %d log:\n%s" % (n.id, n.log_text()[-tail:]))


def run_test(main):
    """The entry point of a test script taking PATH/TO/raftkit-kv: runs main(binary), then
    exits 0 only if no check failed."""
    if len(sys.argv) != 2:
        print("usage: %s PATH/TO/raftkit-kv" % os.path.basename(sys.argv[0]), file=sys.stderr)
        sys.exit(2)
    try:
        main(sys.argv[1])
    except Exception as e:  # noqa: BLE001
        fail_exception(e)
    if failures:
        print("%d check(s) failed" % len(failures))
        sys.exit(1)
    print("all checks passed")
    sys.exit(0)


def wait_served(node, deadline, timeout=3.0):
    """Polls until a fresh connection to node gets 200 for /status; True if it did."""
    while deadline.left() > 0:
        try:
            if node.request("GET", "/status", timeout=timeout)[0] == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    return False
