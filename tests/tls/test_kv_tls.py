#!/usr/bin/env python3
"""raftkit-kv over mutual TLS, with real processes on loopback and certificates made for
the run by make-certs.sh (next to this file):

1. Refusals. Members 2 and 3 run with good certificates; member 1's place is taken in turn
   by a process with a certificate from a foreign CA, an expired certificate, no TLS at
   all, and node 3's valid certificate answering at member 1's address (the wrong id).
   Each is refused, counted by reason in the members' /metrics, and the members keep
   serving writes; what the refused process saw is read from its own /metrics.
2. Rotation by SIGHUP. A healthy cluster moves to a new CA (trust both, present the new
   certificates, trust only the new CA), one SIGHUP per step, writing after each: nothing is
   refused and no process restarts. A bad file on SIGHUP keeps the old material. Then
   node 3 restarts with the new material alone and rejoins, which it can only do if the
   others' new connections use their reloaded certificates; HTTPS clients trusting only
   the new CA are served by every node.

3. Start-up: TLS flags that do not fit and bad material are usage errors (exit 2).

Usage: test_kv_tls.py PATH/TO/raftkit-kv. Python 3 standard library only.
"""

import http.client
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "kv"))
import kvcluster as kc  # noqa: E402

# raftkit-kv's Raft cluster id (cluster_id in examples/kv/main.cpp), which certificates name.
KV_CLUSTER_ID = 0x6b762d7261667431
METRIC_RE = re.compile(r'^raftkit_peer_handshakes_refused_total\{reason="(\w+)"\} (\d+)$', re.M)


class TlsNode(kc.Node):
    """A member whose TLS files live in a directory of its own (cert.pem, key.pem,
    ca.pem), rewritten by the test to rotate them. `peer_tls`/`https` turn TLS off for a
    plaintext impostor; `claim` makes it start as another id at this member's address."""

    def __init__(self, cluster, node_id):
        super().__init__(cluster, node_id)
        self.tls_dir = os.path.join(cluster.dir, "tls%d" % node_id)
        os.makedirs(self.tls_dir, exist_ok=True)
        self.peer_tls = True
        self.https = True
        self.claim = None

    def put_files(self, cert, cas):
        """This member's files: certificate `cert` (a make-certs.sh name), trusting `cas`."""
        certs = self.cluster.certs
        shutil.copyfile(os.path.join(certs, cert + ".pem"), os.path.join(self.tls_dir, "cert.pem.new"))
        shutil.copyfile(os.path.join(certs, cert + ".key"), os.path.join(self.tls_dir, "key.pem.new"))
        with open(os.path.join(self.tls_dir, "ca.pem.new"), "w") as out:
            for ca in cas:
                with open(os.path.join(certs, ca + ".pem")) as f:
                    out.write(f.read())
        for name in ("cert.pem", "key.pem", "ca.pem"):  # each file whole, as an operator's tool would
            os.replace(os.path.join(self.tls_dir, name + ".new"), os.path.join(self.tls_dir, name))

    def args(self):
        a = super().args()
        if self.claim is not None:
            # A one-member cluster of node `claim`, listening at this member's Raft address:
            # it answers the members' dials and dials nobody.
            a[a.index("--id") + 1] = str(self.claim)
            a[a.index("--cluster") + 1] = "%d=127.0.0.1:%d" % (self.claim, self.raft_port)
            a[a.index("--data") + 1] = self.data + "-impostor"
            os.makedirs(self.data + "-impostor", exist_ok=True)
        f = lambda name: os.path.join(self.tls_dir, name)  # noqa: E731
        if self.peer_tls:
            a += ["--peer-tls-cert", f("cert.pem"), "--peer-tls-key", f("key.pem"), "--peer-tls-ca", f("ca.pem")]
        if self.https:
            a += ["--http-tls-cert", f("cert.pem"), "--http-tls-key", f("key.pem")]
        return a

    def request(self, method, path, body=None, timeout=3.0, headers=None, context=None):
        if not self.https:
            return super().request(method, path, body, timeout, headers)
        conn = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=timeout,
                                           context=context or self.cluster.client_context)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def refusals(self):
        """/metrics' peer refusals by reason, plus "by_peer": the TLS alerts it received."""
        st, _, body = self.request("GET", "/metrics")
        if st != 200:
            return None
        text = body.decode()
        out = {k: int(v) for k, v in METRIC_RE.findall(text)}
        m = re.search(r"^raftkit_peer_refused_by_peer_total (\d+)$", text, re.M)
        out["by_peer"] = int(m.group(1)) if m else 0
        return out

    def hangup(self):
        self.proc.send_signal(signal.SIGHUP)

    def count_in_log(self, text):
        return self.log_text().count(text)


def make_cluster(binary):
    c = kc.Cluster(binary, size=3)
    c.nodes = [TlsNode(c, i) for i in (1, 2, 3)]
    c.certs = os.path.join(c.dir, "certs")
    subprocess.run(["sh", os.path.join(HERE, "make-certs.sh"), c.certs, str(KV_CLUSTER_ID), "3"], check=True)
    c.client_context = ssl.create_default_context(cafile=os.path.join(c.certs, "ca.pem"))
    c.client_context.load_verify_locations(cafile=os.path.join(c.certs, "next-ca.pem"))
    return c


def write_through(c, ids, key, value, deadline):
    """PUTs key through each of `ids`, then reads it back through each."""
    for i in ids:
        kc.put_retrying(Https(c.node(i)), "%s-%d" % (key, i), value, deadline)
    for i in ids:
        while True:
            deadline.check("reading %s-%d" % (key, i))
            try:
                st, _, body = c.node(i).request("GET", "/kv/%s-%d" % (key, i))
                if st == 200 and body == value:
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)


class Https:
    """kvcluster.put_retrying's client, on a fresh HTTPS connection per request."""

    def __init__(self, node):
        self.node = node

    def request(self, method, path, body=None):
        return self.node.request(method, path, body)


def refusals_test(binary):
    c = make_cluster(binary)
    try:
        d = kc.Deadline(120)
        for i in (2, 3):
            c.node(i).put_files("node%d" % i, ["ca"])
            c.node(i).start()
        for i in (2, 3):
            kc.check(kc.wait_served(c.node(i), d), "member %d serves HTTPS" % i)
        bad = c.node(1)
        cases = [
            # name, cert, trusted CAs, peer TLS, claimed id, reason counted by members 2 and 3
            ("foreign CA", "foreign-node1", ["ca", "foreign-ca"], True, None, "untrusted"),
            ("expired", "expired-node1", ["ca"], True, None, "expired"),
            ("plaintext", None, None, False, None, "plaintext"),
            ("wrong id", "node3", ["ca"], True, 3, "wrong_id"),
        ]
        for name, cert, cas, peer_tls, claim, reason in cases:
            before = {i: c.node(i).refusals() for i in (2, 3)}
            bad.peer_tls, bad.https, bad.claim = peer_tls, False, claim  # the impostor serves plain HTTP
            if cert:
                bad.put_files(cert, cas)
            bad.start()
            # The leader dials member 1; an impostor claiming id 1 also dials both members.
            while True:
                d.check("waiting for members 2 and 3 to count %s" % reason)
                now = {i: c.node(i).refusals() for i in (2, 3)}
                counted = {i: now[i][reason] - before[i][reason] for i in (2, 3)}
                if sum(counted.values()) >= 2 and (claim is not None or min(counted.values()) >= 1):
                    break
                time.sleep(0.05)
            write_through(c, (2, 3), "after-" + name.replace(" ", "-"), b"still working", d)
            saw = bad.refusals()
            others = {i: {k: v - before[i][k] for k, v in now[i].items() if k not in (reason, "by_peer")} for i in (2, 3)}
            kc.check(all(v == 0 for o in others.values() for v in o.values()),
                     "%s: members 2 and 3 counted only %s (%s)" % (name, reason, counted))
            print("     %s: members 2/3 counted %s %d/%d; the refused process counted %s" %
                  (name, reason, counted[2], counted[3],
                   {k: v for k, v in saw.items() if v} or "nothing"), flush=True)
            if peer_tls and claim is None:
                kc.check(saw["by_peer"] > 0, "%s: the refused process was told so by TLS alerts" % name)
            if not peer_tls:
                kc.check(saw["unexpected_tls"] > 0, "plaintext: the plaintext process refused the members' TLS dials")
            kc.check(bad.alive(), "%s: the refused process is still running" % name)
            bad.kill()
        kc.check(all(c.node(i).alive() for i in (2, 3)), "members 2 and 3 never exited")
    finally:
        c.close()


def rotation_test(binary):
    c = make_cluster(binary)
    try:
        d = kc.Deadline(120)
        for n in c.nodes:
            n.put_files("node%d" % n.id, ["ca"])
        c.start()
        c.wait_leader(d)
        write_through(c, (1, 2, 3), "start", b"v0", d)
        steps = [("trust both CAs", "node%d", ["ca", "next-ca"]),
                 ("present the next CA's certificates", "next-node%d", ["ca", "next-ca"]),
                 ("trust only the next CA", "next-node%d", ["next-ca"])]
        pids = {n.id: n.proc.pid for n in c.nodes}
        for k, (what, cert, cas) in enumerate(steps):
            for n in c.nodes:
                n.put_files(cert % n.id, cas)
                n.hangup()
            for n in c.nodes:
                while n.count_in_log("reloaded the peer TLS files") < k + 1 or \
                        n.count_in_log("reloaded the HTTPS TLS files") < k + 1:
                    d.check("node %d reloading" % n.id)
                    time.sleep(0.02)
            write_through(c, (1, 2, 3), "step%d" % k, b"v", d)
            kc.check(True, "after SIGHUP to %s, every node serves writes" % what)
        kc.check(all(c.node(i).refusals() is not None and
                     sum(v for k, v in c.node(i).refusals().items()) == 0 for i in (1, 2, 3)),
                 "nothing was refused during the rotation")
        kc.check({n.id: n.proc.pid for n in c.nodes} == pids and all(n.alive() for n in c.nodes),
                 "no process restarted")

        # A bad certificate file on SIGHUP: reported, the old material kept.
        n1 = c.node(1)
        good = open(os.path.join(n1.tls_dir, "cert.pem")).read()
        with open(os.path.join(n1.tls_dir, "cert.pem"), "w") as f:
            f.write("not a certificate\n")
        n1.hangup()
        # The peer and the HTTPS material reload one after the other, and each logs its own
        # line: wait for both (the deadline fails the test if one never comes).
        while n1.count_in_log("kept the peer TLS material") < 1 or n1.count_in_log("kept the HTTPS TLS material") < 1:
            d.check("node 1 reporting the bad file for both the peer and the HTTPS material")
            time.sleep(0.02)
        kc.check("kept the HTTPS TLS material" in n1.log_text(), "a bad file on SIGHUP keeps the HTTPS material too")
        write_through(c, (1, 2, 3), "after-bad-file", b"v", d)
        kc.check(True, "a bad file on SIGHUP keeps the old material and the cluster")
        with open(os.path.join(n1.tls_dir, "cert.pem"), "w") as f:
            f.write(good)

        # Node 3 restarts with the next CA alone: it rejoins only through new connections
        # that nodes 1 and 2 make with their reloaded material.
        c.node(3).kill()
        write_through(c, (1, 2), "while-3-down", b"v", d)
        c.node(3).start()
        write_through(c, (1, 2, 3), "after-restart", b"v", d)
        kc.check(True, "node 3 restarted on the next CA alone rejoins")
        only_next = ssl.create_default_context(cafile=os.path.join(c.certs, "next-ca.pem"))
        for n in c.nodes:
            st, _, _ = n.request("GET", "/status", context=only_next)
            kc.check(st == 200, "node %d serves HTTPS with its next-CA certificate after SIGHUP" % n.id)
    finally:
        c.close()


def startup_test(binary):
    """TLS flags that do not fit, and a certificate that does not name the node: one line
    on stderr and the usage status (2), before anything listens."""
    c = make_cluster(binary)
    try:
        n = c.node(1)
        certs = lambda name: os.path.join(c.certs, name)  # noqa: E731
        base = [binary, "--id", "1", "--cluster", "1=127.0.0.1:%d" % n.raft_port,
                "--http", "127.0.0.1:%d" % n.http_port, "--data", n.data]
        cases = [
            ("--peer-tls-cert alone", ["--peer-tls-cert", certs("node1.pem")], "go together"),
            ("--http-tls-cert alone", ["--http-tls-cert", certs("node1.pem")], "go together"),
            ("node 2's certificate for node 1",
             ["--peer-tls-cert", certs("node2.pem"), "--peer-tls-key", certs("node2.key"),
              "--peer-tls-ca", certs("ca.pem")], "does not name raftkit://cluster/%d/node/1" % KV_CLUSTER_ID),
            ("a key of another certificate",
             ["--peer-tls-cert", certs("node1.pem"), "--peer-tls-key", certs("node2.key"),
              "--peer-tls-ca", certs("ca.pem")], "peer TLS"),
            ("a missing HTTPS key", ["--http-tls-cert", certs("node1.pem"), "--http-tls-key", certs("none.key")],
             "HTTPS private key"),
        ]
        for what, extra, expect in cases:
            r = subprocess.run(base + extra, capture_output=True, text=True, timeout=30)
            kc.check(r.returncode == 2 and expect in r.stderr and r.stderr.count("\n") == 1,
                     "%s: exit 2 with one line naming it (%r)" % (what, r.stderr.strip()))
    finally:
        c.close()


def main(binary):
    startup_test(binary)
    refusals_test(binary)
    rotation_test(binary)


if __name__ == "__main__":
    kc.run_test(main)
