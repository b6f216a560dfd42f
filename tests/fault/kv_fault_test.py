#!/usr/bin/env python3
"""Multi-process fault test for raftkit-kv.

Starts three real raftkit-kv processes on loopback (file logs in a temporary
directory), runs concurrent clients that put/get/append through random nodes
while a nemesis SIGKILLs-and-restarts or SIGSTOPs-and-SIGCONTs one node at a
time, then heals the cluster, writes the client history (JSON lines, times
from time.monotonic_ns()) and checks it with `raftkit-sim --check-history`.

Exit 0 only if the history is linearizable, at least --min-ok operations
succeeded, every node serves a read of every key after healing, and no server
exited on its own. Every process it starts is killed and reaped on every exit path.

With --tls MAKE_CERTS (tests/tls/make-certs.sh) the same test runs over TLS: the peers
speak mutual TLS and the clients HTTPS, with certificates made for the run.

Usage: kv_fault_test.py RAFTKIT_KV RAFTKIT_SIM [--duration S] [--clients N] [--tls MAKE_CERTS] ...
Python 3 standard library only.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

NODES = (1, 2, 3)
# raftkit-kv's Raft cluster id (cluster_id in examples/kv/main.cpp, "kv-raft1"), which
# its peers' certificates name.
KV_CLUSTER_ID = 0x6b762d7261667431
# With --tls: the client side of HTTPS (trusting the test CA), else None for plain HTTP.
HTTPS_CONTEXT = None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Cluster:
    """The three raftkit-kv processes: start, kill, pause, resume, always cleaned up."""

    def __init__(self, kv_exe, workdir, base_port, log_kind, certs=None):
        self.kv_exe = kv_exe
        self.certs = certs     # a make-certs.sh directory: TLS for peers and clients
        self.workdir = workdir
        self.log_kind = log_kind
        self.raft_port = {i: base_port + i for i in NODES}
        self.http_port = {i: base_port + 10 + i for i in NODES}
        self.procs = {}        # id -> Popen (running or stopped)
        self.stopped = set()   # ids currently SIGSTOPped
        self.lock = threading.Lock()
        self.starts = 0

    def cluster_arg(self):
        return ",".join(f"{i}=127.0.0.1:{self.raft_port[i]}" for i in NODES)

    def start(self, i):
        with self.lock:
            assert i not in self.procs
            data = os.path.join(self.workdir, f"node{i}")
            os.makedirs(data, exist_ok=True)
            logf = open(os.path.join(self.workdir, f"node{i}.log"), "ab")
            cmd = [self.kv_exe, "--id", str(i), "--cluster", self.cluster_arg(),
                   "--http", f"127.0.0.1:{self.http_port[i]}", "--data", data,
                   "--log", self.log_kind]
            if self.certs:
                c = lambda name: os.path.join(self.certs, name)  # noqa: E731
                cmd += ["--peer-tls-cert", c(f"node{i}.pem"), "--peer-tls-key", c(f"node{i}.key"),
                        "--peer-tls-ca", c("ca.pem"),
                        "--http-tls-cert", c(f"node{i}.pem"), "--http-tls-key", c(f"node{i}.key")]
            if self.log_kind == "memory":
                cmd.append("--unsafe-memory-log")  # a 3-member cluster: raftkit-kv refuses it otherwise
            self.procs[i] = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            logf.close()
            self.starts += 1

    def kill(self, i):
        with self.lock:
            p = self.procs.pop(i, None)
            self.stopped.discard(i)
        if p is None:
            return None
        try:
            p.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return p.returncode

    def pause(self, i):
        with self.lock:
            p = self.procs.get(i)
            if p is None:
                return
            p.send_signal(signal.SIGSTOP)
            self.stopped.add(i)

    def resume(self, i):
        with self.lock:
            p = self.procs.get(i)
            if p is None or i not in self.stopped:
                return
            p.send_signal(signal.SIGCONT)
            self.stopped.discard(i)

    def died(self):
        """Ids of processes that exited without being killed by us."""
        with self.lock:
            return {i: p.returncode for i, p in self.procs.items() if p.poll() is not None}

    def shutdown(self):
        with self.lock:
            ids = list(self.procs)
        for i in ids:
            with self.lock:
                p = self.procs.get(i)
                if p is not None and i in self.stopped:
                    try:
                        p.send_signal(signal.SIGCONT)
                    except ProcessLookupError:
                        pass
            self.kill(i)


def http_request(port, method, path, body, timeout):
    """Returns (status, headers dict lowercased, body bytes); raises on transport errors."""
    if HTTPS_CONTEXT is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=HTTPS_CONTEXT)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/octet-stream"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def wait_ready(cluster, timeout):
    """Waits until every node answers /status and one of them knows a leader."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        dead = cluster.died()
        if dead:
            raise RuntimeError(f"raftkit-kv exited during start-up: {dead}")
        ok = 0
        leader = False
        for i in NODES:
            try:
                st, _, body = http_request(cluster.http_port[i], "GET", "/status", None, 1.0)
                if st == 200:
                    ok += 1
                    s = json.loads(body)
                    last = s
                    if s.get("leader") or s.get("role") == "leader":
                        leader = True
            except Exception as e:  # noqa: BLE001 - not up yet
                last = repr(e)
        if ok == len(NODES) and leader:
            return
        time.sleep(0.1)
    raise RuntimeError(f"cluster not ready after {timeout}s (last: {last})")


class History:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = []
        self.stats = {"ok": 0, "unknown": 0, "not_applied": 0, "ok_get": 0, "ok_put": 0,
                      "ok_append": 0, "unexpected": 0}

    def add(self, op):
        with self.lock:
            self.ops.append(op)

    def count(self, k):
        with self.lock:
            self.stats[k] += 1


class Clients:
    """Closed-loop clients; each records its operations. After an operation whose outcome
    is unknown a client continues under a new client id (its old one stays pending)."""

    def __init__(self, cluster, history, n, keys, timeout, rng_seed):
        self.cluster = cluster
        self.history = history
        self.n = n
        self.keys = keys
        self.timeout = timeout
        self.stop = threading.Event()
        self.threads = []
        self.next_client = n
        self.id_lock = threading.Lock()
        self.seed = rng_seed
        self.errors = []

    def new_client_id(self):
        with self.id_lock:
            c = self.next_client
            self.next_client += 1
            return c

    def run(self, idx):
        rng = random.Random(self.seed * 1000 + idx)
        client = idx
        seq = 0
        try:
            while not self.stop.is_set():
                node = rng.choice(NODES)
                key = rng.choice(self.keys)
                r = rng.random()
                kind = "get" if r < 0.4 else ("put" if r < 0.6 else "append")
                seq += 1
                value = f"{idx}.{seq};"
                path = f"/kv/{key}"
                if kind == "get":
                    method, body = "GET", None
                elif kind == "put":
                    method, body = "PUT", value.encode()
                else:
                    method, body = "POST", value.encode()
                call = time.monotonic_ns()
                outcome = "unknown"
                status = None
                output = None
                try:
                    status, hdrs, data = http_request(self.cluster.http_port[node], method, path,
                                                      body, self.timeout)
                    if status == 200:
                        outcome = "ok"
                        if kind == "get":
                            output = data.decode("utf-8", errors="surrogateescape")
                    elif status == 404 and kind == "get":
                        outcome = "ok"
                        output = ""
                    elif status == 503:
                        o = hdrs.get("x-raftkit-outcome", "unknown")
                        outcome = "not-applied" if o == "not-applied" else "unknown"
                    else:
                        # Anything else is a server bug for these requests; treat the
                        # outcome as unknown but remember it for the report.
                        self.history.count("unexpected")
                        if len(self.errors) < 20:
                            self.errors.append(f"{method} {path} -> {status}: {data[:200]!r}")
                        outcome = "unknown"
                except Exception:  # noqa: BLE001 - timeout, refused, reset: outcome unknown
                    outcome = "unknown"
                ret = time.monotonic_ns()
                op = {"client": client, "op": kind, "key": key, "call": call}
                if kind != "get":
                    op["value"] = value
                if outcome == "ok":
                    op["return"] = ret
                    if kind == "get":
                        op["output"] = output
                    self.history.add(op)
                    self.history.count("ok")
                    self.history.count("ok_" + kind)
                elif outcome == "not-applied":
                    self.history.count("not_applied")  # definitely no effect: omitted
                else:
                    if kind != "get":  # an unknown read constrains nothing: omitted
                        self.history.add(op)
                    self.history.count("unknown")
                    client = self.new_client_id()
                    time.sleep(0.02)
        except Exception as e:  # noqa: BLE001
            self.errors.append(f"client {idx} crashed: {e!r}")

    def start(self):
        for i in range(self.n):
            t = threading.Thread(target=self.run, args=(i,), name=f"client{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return all(not t.is_alive() for t in self.threads)


class Nemesis:
    """Every 0.5-2 s: SIGKILL a random node and restart it later with the same data, or
    SIGSTOP one and SIGCONT it after a while. At most one node is down at a time."""

    def __init__(self, cluster, rng):
        self.cluster = cluster
        self.rng = rng
        self.stop = threading.Event()
        self.thread = None
        self.actions = []

    def sleep(self, s):
        return self.stop.wait(s)

    def run(self):
        c = self.cluster
        while not self.stop.is_set():
            if self.sleep(self.rng.uniform(0.5, 2.0)):
                break
            i = self.rng.choice(NODES)
            down = self.rng.uniform(0.3, 2.0)
            if self.rng.random() < 0.5:
                self.actions.append(f"kill {i} for {down:.1f}s")
                log(f"nemesis: SIGKILL node {i}, restart in {down:.1f}s")
                c.kill(i)
                self.sleep(down)
                c.start(i)
            else:
                self.actions.append(f"pause {i} for {down:.1f}s")
                log(f"nemesis: SIGSTOP node {i}, SIGCONT in {down:.1f}s")
                c.pause(i)
                self.sleep(down)
                c.resume(i)

    def start(self):
        self.thread = threading.Thread(target=self.run, name="nemesis", daemon=True)
        self.thread.start()

    def heal(self):
        self.stop.set()
        if self.thread:
            self.thread.join(15)
        c = self.cluster
        for i in NODES:
            c.resume(i)
            with c.lock:
                running = i in c.procs
            if not running:
                c.start(i)


def main():
    global HTTPS_CONTEXT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kv", help="path to raftkit-kv")
    ap.add_argument("sim", help="path to raftkit-sim (history checker)")
    ap.add_argument("--duration", type=float, default=20.0, help="fault phase, seconds")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1.0, help="per-request timeout, seconds")
    ap.add_argument("--min-ok", type=int, default=50)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--log", default="file", choices=["file", "memory"])
    ap.add_argument("--tls", metavar="MAKE_CERTS", default=None,
                    help="peers over mutual TLS and clients over HTTPS, with certificates made by this script")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, history)")
    ap.add_argument("--history", default=None, help="also copy the history here")
    ap.add_argument("--corrupt", action="store_true",
                    help="self-check: falsify one successful read before checking, so the "
                         "run must FAIL (proves the checker sees this history)")
    args = ap.parse_args()

    seed = args.seed if args.seed is not None else (os.getpid() ^ time.time_ns()) & 0xFFFFFFFF
    rng = random.Random(seed)
    # Ports below 32768 (outside Linux's ephemeral range), spread by pid.
    base_port = 10000 + (os.getpid() % 1100) * 20
    log(f"seed {seed}, ports {base_port + 1}..{base_port + 13}")

    workdir = tempfile.mkdtemp(prefix="raftkit-kv-fault-")
    certs = None
    if args.tls:
        certs = os.path.join(workdir, "certs")
        subprocess.run(["sh", args.tls, certs, str(KV_CLUSTER_ID), str(len(NODES))], check=True)
        HTTPS_CONTEXT = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        log("TLS: mutual TLS between peers, HTTPS for clients")
    cluster = Cluster(os.path.abspath(args.kv), workdir, base_port, args.log, certs)
    history = History()
    clients = None
    nemesis = None
    rc = 1

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for i in NODES:
            cluster.start(i)
        wait_ready(cluster, 30)
        log("cluster ready")
        clients = Clients(cluster, history, args.clients,
                          [f"k{j}" for j in range(args.keys)], args.timeout, seed)
        nemesis = Nemesis(cluster, rng)
        clients.start()
        nemesis.start()
        time.sleep(args.duration)
        log("healing")
        nemesis.heal()
        # Let clients run a little on the healed cluster, then stop them.
        try:
            wait_ready(cluster, 30)
        except RuntimeError as e:
            log(f"warning: {e}")
        time.sleep(2.0)
        if not clients.finish(3 * args.timeout + 5):
            log("warning: some clients did not stop in time")
        dead = cluster.died()

        # Liveness after healing: every node serves a (linearizable, logged) read of every
        # key within 15 s; the reads join the history under a client of their own.
        final_client = clients.new_client_id()
        stuck = []
        for i in NODES:
            for key in [f"k{j}" for j in range(args.keys)]:
                deadline = time.monotonic() + 15
                while True:
                    call = time.monotonic_ns()
                    try:
                        st, _, data = http_request(cluster.http_port[i], "GET", f"/kv/{key}",
                                                   None, 2.0)
                    except Exception:  # noqa: BLE001
                        st, data = None, b""
                    if st in (200, 404):
                        history.add({"client": final_client, "op": "get", "key": key,
                                     "call": call, "return": time.monotonic_ns(),
                                     "output": data.decode("utf-8", errors="surrogateescape")
                                     if st == 200 else ""})
                        break
                    if time.monotonic() > deadline:
                        stuck.append(f"node {i} key {key} (last status {st})")
                        break
                    time.sleep(0.1)

        hist_path = os.path.join(workdir, "history.jsonl")
        with history.lock:
            ops = sorted(history.ops, key=lambda o: o["call"])
        if args.corrupt:
            gets = [o for o in ops if o["op"] == "get" and "return" in o]
            if gets:
                victim = gets[len(gets) // 2]
                victim["output"] = victim["output"] + "corrupted;"
                log(f"self-check: falsified the read {victim}"[:300])
        with open(hist_path, "w") as f:
            for op in ops:
                f.write(json.dumps(op, separators=(",", ":")) + "\n")
        if args.history:
            shutil.copyfile(hist_path, args.history)
        s = history.stats
        log(f"ops: {s['ok']} ok (get {s['ok_get']}, put {s['ok_put']}, append {s['ok_append']}), "
            f"{s['unknown']} unknown, {s['not_applied']} not applied, "
            f"{s['unexpected']} unexpected statuses; {len(ops)} in history; "
            f"nemesis: {len(nemesis.actions)} faults, {cluster.starts} process starts")
        for e in clients.errors[:10]:
            log(f"  client error: {e}")

        chk = subprocess.run([args.sim, "--check-history", hist_path], capture_output=True,
                             text=True, timeout=240)
        out = (chk.stdout + chk.stderr).strip()
        log(f"raftkit-sim --check-history: exit {chk.returncode}")
        if out:
            print(out[-4000:], flush=True)
        ok = True
        if chk.returncode != 0:
            log("FAIL: history is not linearizable" if chk.returncode == 1
                else f"FAIL: checker exit {chk.returncode}")
            ok = False
        if s["ok"] < args.min_ok:
            log(f"FAIL: only {s['ok']} operations succeeded (need {args.min_ok})")
            ok = False
        if stuck:
            log(f"FAIL: no read served after healing: {', '.join(stuck)}")
            ok = False
        if dead:
            log(f"FAIL: raftkit-kv processes exited on their own: {dead}")
            ok = False
        if any("crashed" in e for e in clients.errors):
            log("FAIL: a client thread crashed")
            ok = False
        rc = 0 if ok else 1
        if not ok:
            if not args.keep:
                log("(re-run with --seed and --keep to keep the history and node logs)")
            for i in NODES:
                p = os.path.join(workdir, f"node{i}.log")
                if os.path.exists(p):
                    with open(p, "rb") as f:
                        tail = f.read()[-1500:].decode(errors="replace")
                    print(f"--- node{i}.log (tail) ---\n{tail}", flush=True)
        log("PASS" if ok else f"FAIL (seed {seed})")
    except KeyboardInterrupt as e:
        log(f"interrupted: {e}")
        rc = 130
    except Exception as e:  # noqa: BLE001
        log(f"ERROR: {e!r}")
        rc = 1
    finally:
        if nemesis is not None:
            nemesis.stop.set()
        if clients is not None:
            clients.stop.set()
        cluster.shutdown()
        if nemesis is not None and nemesis.thread is not None:
            nemesis.thread.join(5)
            cluster.shutdown()  # a restart racing the first shutdown
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
