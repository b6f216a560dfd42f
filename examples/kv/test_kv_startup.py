#!/usr/bin/env python3
"""kv_startup: every start-up failure of raftkit-kv is one line and a documented exit status.

Usage: test_kv_startup.py PATH/TO/raftkit-kv
Runs the real binary with: a bad flag, bad values, limits that cannot be replicated,
--log memory in a cluster, the HTTP port and the Raft port in use, a data directory locked
by another raftkit-kv, a corrupt hard state and a corrupt segment, an unwritable and a
non-directory data directory, and too low an RLIMIT_NOFILE. Each must exit with its status
(see --help) and print exactly one line on stderr naming the problem: no exception trace,
no abort. Exits non-zero on any failure; kills what it started.
"""

import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

EXIT = {"usage": 2, "listen": 3, "locked": 4, "corrupt": 5, "data_dir": 6, "descriptors": 7}
class Runner:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        # Below 10000: outside the ephemeral range (32768 up), where a parallel test's outgoing
        # connection could hold the port, and outside the other tests' ranges (10000-31999).
        base = 5000 + (os.getpid() % 450) * 10
        self.raft_port, self.http_port = base + 1, base + 2

    def args(self, data=None, cluster=None, http=None, extra=()):
        cluster = cluster or "1=127.0.0.1:%d" % self.raft_port
        return [self.binary, "--id", "1", "--cluster", cluster, "--http", http or "127.0.0.1:%d" % self.http_port,
                "--data", data or os.path.join(self.workdir, "data")] + list(extra)

    def fails(self, what, status, args, needle, preexec_fn=None, user=None):
        """Runs args to completion; checks exit status and one stderr line containing needle."""
        try:
            p = subprocess.run(args, capture_output=True, timeout=20, preexec_fn=preexec_fn, user=user,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            check(False, "%s: exits (it kept running)" % what)
            return
        err = p.stderr.decode(errors="replace")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        check(p.returncode == EXIT[status], "%s: exit %d (%s), got %d" % (what, EXIT[status], status, p.returncode))
        check(len(lines) == 1 and lines[0].startswith("raftkit-kv") and needle.lower() in lines[0].lower(),
              "%s: one line naming the problem: %r" % (what, err.strip()))
        check("terminate called" not in err and "what():" not in err and "Traceback" not in err,
              "%s: no exception trace" % what)

    def serves(self, what, args):
        """Starts args, checks it answers /status, stops it."""
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            line = p.stdout.readline().decode()
            check("http 127.0.0.1:%d" % self.http_port in line, "%s: starts (%r)" % (what, line.strip()))
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            p.stdout.close()
            p.stderr.close()
        check(rc == 0, "%s: SIGTERM exits 0 (got %r)" % (what, rc))


def make_log(r, data):
    """Runs a node on `data` until it has written a key, then stops it: a real log to corrupt."""
    p = subprocess.Popen(r.args(data=data), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    try:
        p.stdout.readline()
        kvcluster.put_retrying(kvcluster.Client(r.http_port), "k", b"v", kvcluster.Deadline(20))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        p.stdout.close()


def main(binary):
    workdir = tempfile.mkdtemp(prefix="raftkit-kv-startup-")
    r = Runner(binary, workdir)
    three = "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d" % (r.raft_port, r.raft_port + 3, r.raft_port + 4)
    try:
        p = subprocess.run([binary, "--help"], capture_output=True, timeout=10)
        out = p.stdout.decode()
        check(p.returncode == 0 and "Exit status" in out and "locked" in out, "--help exits 0 and lists the exit statuses")

        # --- the command line
        r.fails("unknown flag", "usage", r.args(extra=["--bogus"]), "bogus")
        r.fails("missing --id", "usage", [binary, "--cluster", "1=127.0.0.1:1", "--data", workdir], "--id")
        r.fails("bad port", "usage", r.args(cluster="1=127.0.0.1:port"), "port")
        r.fails("duplicate member", "usage", r.args(cluster="1=127.0.0.1:1,1=127.0.0.1:2"), "twice")
        r.fails("--id not in --cluster", "usage", r.args(cluster="2=127.0.0.1:%d" % r.raft_port), "not in --cluster")
        r.fails("bad --http", "usage", r.args(http="nowhere"), "address")
        r.fails("out-of-range value", "usage", r.args(extra=["--election-timeout-ms", "5"]), "election-timeout")
        r.fails("--max-header too large for a header field", "usage", r.args(extra=["--max-header", "70000"]),
                "max-header")
        r.fails("--max-body over a replication frame", "usage", r.args(extra=["--max-body", str(20 << 20)]), "max-body")
        r.fails("--max-body whose message is over a replication frame", "usage",
                r.args(extra=["--max-body", str((16 << 20) - 100)]), "replication message could take")

        # --- --log memory in a cluster needs --unsafe-memory-log
        r.fails("--log memory in a 3-member cluster", "usage", r.args(cluster=three, extra=["--log", "memory"]),
                "--unsafe-memory-log")
        r.serves("--log memory in a 3-member cluster with --unsafe-memory-log",
                 r.args(cluster=three, extra=["--log", "memory", "--unsafe-memory-log"]))
        r.serves("--log memory alone", r.args(extra=["--log", "memory"]))

        # --- addresses in use
        with socket.socket() as s:
            s.bind(("127.0.0.1", r.http_port))
            s.listen()
            r.fails("HTTP port in use", "listen", r.args(), "HTTP on 127.0.0.1:%d" % r.http_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", r.raft_port))
            s.listen()
            r.fails("Raft port in use", "listen", r.args(), "Raft peers on 127.0.0.1:%d" % r.raft_port)
        r.fails("address not on this host", "listen", r.args(http="192.0.2.1:8080"), "HTTP on 192.0.2.1")

        # --- the data directory
        data = os.path.join(workdir, "locked")
        first = subprocess.Popen(r.args(data=data), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 stdin=subprocess.DEVNULL)
        try:
            first.stdout.readline()  # it holds the directory
            other = Runner(binary, workdir)
            other.raft_port, other.http_port = r.raft_port + 5, r.http_port + 5
            r.fails("data directory used by another raftkit-kv", "locked", other.args(data=data), "locked")
        finally:
            first.kill()
            first.wait()
            first.stdout.close()

        data = os.path.join(workdir, "corrupt-hs")
        make_log(r, data)
        with open(os.path.join(data, "raft-log", "hard_state"), "r+b") as f:
            f.write(b"garbage!")
        r.fails("corrupt hard state", "corrupt", r.args(data=data), "corrupt: " + os.path.join(data, "raft-log", "hard_state"))

        data = os.path.join(workdir, "corrupt-seg")
        make_log(r, data)
        segs = sorted(n for n in os.listdir(os.path.join(data, "raft-log")) if n.endswith(".seg"))
        check(bool(segs), "the log has a segment to corrupt")
        if segs:
            with open(os.path.join(data, "raft-log", segs[0]), "r+b") as f:
                f.write(b"\xde\xad\xbe\xef")
            r.fails("corrupt segment", "corrupt", r.args(data=data), "corrupt: " + os.path.join(data, "raft-log", segs[0]))

        ro = os.path.join(workdir, "read-only")
        os.makedirs(ro)
        os.chmod(ro, 0o555)
        # root ignores permissions: run as nobody (who may reach the binary and workdir)
        user = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody").pw_uid
            os.chmod(workdir, 0o755)
        r.fails("unwritable data directory", "data_dir", r.args(data=ro), "permission denied", user=user)
        ro_log = os.path.join(workdir, "read-only-log")
        os.makedirs(os.path.join(ro_log, "raft-log"))
        os.chmod(os.path.join(ro_log, "raft-log"), 0o555)
        r.fails("unwritable log directory", "data_dir", r.args(data=ro_log), "permission denied", user=user)
        notdir = os.path.join(workdir, "a-file")
        with open(notdir, "w") as f:
            f.write("not a directory")
        r.fails("data directory is a file", "data_dir", r.args(data=notdir), notdir)

        # --- descriptors
        r.fails("RLIMIT_NOFILE too low", "descriptors", r.args(),
                "RLIMIT_NOFILE", preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24)))
    except Exception as e:  # noqa: BLE001
        kvcluster.fail_exception(e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    kvcluster.run_test(main)
