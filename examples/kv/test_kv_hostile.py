#!/usr/bin/env python3
"""kv_hostile: raftkit-kv against hostile HTTP clients, over real sockets.

Usage: test_kv_hostile.py PATH/TO/raftkit-kv
A one-member raftkit-kv (file log) with small limits is attacked by: slowloris clients
(one header byte at a time) while a normal client is served; connections that never send
a byte; more connections than --max-connections; a huge header and a huge declared body;
a chunked body split where Beast 1.81 asserted; pipelined requests, in bulk; and, run
with a low RLIMIT_NOFILE, more connections than it has file descriptors, then its limit
lowered under it so accept() fails with EMFILE. It
must refuse each with an HTTP status or a closed connection, keep serving, and not spin
(CPU time read from /proc). Exits non-zero on any failure; kills what it started.
"""

import os
import resource
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvcluster  # noqa: E402
from kvcluster import check  # noqa: E402

MAX_CONNECTIONS = 6
IDLE_MS = 4000
READ_MS = 1000
MAX_HEADER = 4096
MAX_BODY = 4096
def connect(node, timeout=5.0):
    return socket.create_connection(("127.0.0.1", node.http_port), timeout=timeout)


def closed_by_server(sock):
    """True once the server has closed (EOF or reset), without blocking."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


def metric(node, name, client=None):
    """The value of a metric from /metrics (over `client` if given)."""
    if client is not None:
        st, _, body = client.request("GET", "/metrics")
    else:
        st, _, body = node.request("GET", "/metrics")
    if st != 200:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def read_status_line(sock):
    """The status of the response the server sends first, or None if it closes without one."""
    try:
        data = sock.recv(4096)
    except OSError:
        return None
    if not data.startswith(b"HTTP/1.1 "):
        return None
    return int(data.split()[1])


def test_slowloris(node):
    """Slow clients are cut off by the read time limit while a normal client is served."""
    slow_header = b"GET /status HTTP/1.1\r\nX-Slow: " + b"s" * 200 + b"\r\n\r\n"
    slow = [connect(node) for _ in range(2)]
    sent = [0, 0]
    cut = [False, False]
    served = 0
    normal = kvcluster.Client(node.http_port)
    deadline = kvcluster.Deadline(15)  # the header would take 23 s at this pace
    try:
        while not all(cut) and deadline.left() > 0:
            for i, s in enumerate(slow):
                if cut[i]:
                    continue
                if closed_by_server(s):
                    cut[i] = True
                    continue
                try:
                    s.send(slow_header[sent[i]:sent[i] + 1])
                    sent[i] += 1
                except OSError:
                    cut[i] = True
            if normal.request("GET", "/status")[0] == 200:
                served += 1
            time.sleep(0.1)
    finally:
        normal.close()
        for s in slow:
            s.close()
    check(all(cut), "slowloris clients are cut off (sent %r of %d header bytes)" % (sent, len(slow_header)))
    check(all(n < len(slow_header) for n in sent), "before their header was complete")
    check(served > 0, "a normal client is served meanwhile (%d requests)" % served)
    check((metric(node, "raftkit_http_read_timeouts_total") or 0) >= 2, "the cut-offs are counted as read timeouts")


def test_idle(node):
    """A connection that never sends a byte is closed after the idle time limit."""
    s = connect(node, timeout=3 * IDLE_MS / 1000)
    try:
        try:
            data = s.recv(100)
        except socket.timeout:
            data = None
        except OSError:
            data = b""
    finally:
        s.close()
    check(data == b"", "a silent connection is closed by the server (got %r)" % (data,))
    check((metric(node, "raftkit_http_idle_timeouts_total") or 0) >= 1, "and counted as an idle timeout")


def test_connection_bound(node):
    """Beyond --max-connections a connection gets 503 and is closed; a freed slot serves again."""
    held = []
    try:
        for _ in range(MAX_CONNECTIONS):
            c = kvcluster.Client(node.http_port)
            c.request("GET", "/status")  # accepted and served: it holds a slot
            held.append(c)
        extra = connect(node)
        try:
            st = read_status_line(extra)
            rest = extra.recv(4096)
        except OSError:
            rest = b""
        finally:
            extra.close()
        check(st == 503, "a connection over the bound gets 503 (got %r)" % st)
        check(rest == b"" or b"\r\n\r\n" not in rest, "and is closed after it")
        held.pop().close()
        check(kvcluster.wait_served(node, kvcluster.Deadline(10)), "once a held connection closes, a new one is served")
        check(all(c.request("GET", "/status")[0] == 200 for c in held), "the held connections are still served")
    finally:
        for c in held:
            c.close()
    check((metric(node, "raftkit_http_connections_refused_total") or 0) >= 1, "the refusal is counted")


def test_huge_header_and_body(node):
    """A huge header gets 431, a huge declared body 413; the connection closes; nothing else changes."""
    s = connect(node)
    try:
        s.sendall(b"GET /kv/a HTTP/1.1\r\nX-Big: " + b"h" * (100 * 1024) + b"\r\n\r\n")
        f = s.makefile("rb")
        r = kvcluster.read_response(f)
        closed = f.read() == b""
    finally:
        s.close()
    check(r is not None and r[0] == 431, "a 100 KiB header → 431 (got %r)" % (r and r[0],))
    check(closed, "and the connection closes")
    s = connect(node)
    try:
        s.sendall(b"PUT /kv/a HTTP/1.1\r\nContent-Length: 1000000000000\r\n\r\n")
        f = s.makefile("rb")
        r = kvcluster.read_response(f)
    finally:
        s.close()
    check(r is not None and r[0] == 413 and r[1].get("x-raftkit-outcome") == "not-applied",
          "a declared body of 10^12 bytes → 413 at once, outcome not-applied (got %r)" % (r and r[:2],))
    s = connect(node)
    try:
        s.sendall(b"GET /kv/a HTTP/1.1\r\n" + b"X-Many: m\r\n" * 2000 + b"\r\n")
        r = kvcluster.read_response(s.makefile("rb"))
    finally:
        s.close()
    check(r is not None and r[0] == 431, "2,000 small header fields → 431 (got %r)" % (r and r[0],))
    check(node.request("GET", "/status")[0] == 200, "the server still serves")


def test_chunked(node):
    """A chunked body gets 411, even a final chunk split after 0 CRLF (it aborted the server)."""
    s = connect(node)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Three segments: Beast 1.81 asserted on the 4 bytes "0\r\nX" (found by fuzz_kv).
        s.sendall(b"PUT /kv/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.05)
        s.sendall(b"0\r\n")
        time.sleep(0.05)
        s.sendall(b"X")
        r = kvcluster.read_response(s.makefile("rb"))
    except OSError:
        r = None
    finally:
        s.close()
    check(r is not None and r[0] == 411, "a chunked body → 411 (got %r)" % (r and r[0],))
    check(node.alive() and node.request("GET", "/status")[0] == 200, "the server is alive and serves")


def test_pipelining(node):
    """Pipelined requests are answered in order; those after Connection: close are not."""
    s = connect(node)
    try:
        s.sendall(b"PUT /kv/p HTTP/1.1\r\nContent-Length: 2\r\n\r\nv1"
                  b"GET /kv/p HTTP/1.1\r\n\r\n"
                  b"POST /kv/p HTTP/1.1\r\nContent-Length: 2\r\n\r\nv2"
                  b"GET /kv/p HTTP/1.1\r\n\r\n"
                  b"GET /kv/nothing-here HTTP/1.1\r\n\r\n")
        f = s.makefile("rb")
        rs = [kvcluster.read_response(f) for _ in range(5)]
    finally:
        s.close()
    got = [(r[0], r[2]) if r else None for r in rs]
    check(got == [(200, b""), (200, b"v1"), (200, b""), (200, b"v1v2"), (404, b"no such key\n")],
          "five pipelined requests are answered in order (got %r)" % got)

    n = 300
    s = connect(node, timeout=20)
    try:
        s.sendall(b"".join(b"PUT /kv/bulk%d HTTP/1.1\r\nContent-Length: %d\r\n\r\n%d" % (i, len(b"%d" % i), i)
                           for i in range(n)) +
                  b"".join(b"GET /kv/bulk%d HTTP/1.1\r\n\r\n" % i for i in range(n)))
        f = s.makefile("rb")
        rs = [kvcluster.read_response(f) for _ in range(2 * n)]
    finally:
        s.close()
    in_order = all(r is not None and r[0] == 200 for r in rs) and \
        [r[2] for r in rs[n:]] == [b"%d" % i for i in range(n)]
    check(in_order, "%d pipelined writes then %d reads in one send are answered in order" % (n, n))

    s = connect(node)
    try:
        s.sendall(b"GET /status HTTP/1.1\r\nConnection: close\r\n\r\nGET /status HTTP/1.1\r\n\r\n")
        f = s.makefile("rb")
        first = kvcluster.read_response(f)
        try:
            second = kvcluster.read_response(f)
        except OSError:
            second = None
    finally:
        s.close()
    check(first is not None and first[0] == 200 and second is None,
          "a request pipelined after Connection: close is not answered")


def test_descriptors(binary):
    """A low RLIMIT_NOFILE bounds the connections (503 beyond, never EMFILE), and when
    descriptors do run out (the limit lowered under the running server) accept backs off:
    it stays responsive and does not spin."""
    nofile = 80
    cluster = kvcluster.Cluster(binary, size=1, extra=["--max-connections", "1000", "--idle-timeout-ms", "20000"])
    held = []
    try:
        node = cluster.node(1)
        node.start(nofile=(nofile, nofile))
        deadline = kvcluster.Deadline(30)
        cluster.wait_leader(deadline)
        line = [ln for ln in node.log_text().splitlines() if "at most" in ln]
        bound = int(line[0].split("at most ")[1].split()[0]) if line else None
        check(bound is not None and bound < nofile, "with RLIMIT_NOFILE %d it serves at most %r connections" % (nofile, bound))

        answers = {}
        for _ in range(nofile + 20):  # more connections than it has descriptors
            s = connect(node)
            held.append(s)
            s.sendall(b"GET /status HTTP/1.1\r\n\r\n")
            st = read_status_line(s)
            answers[st] = answers.get(st, 0) + 1
        # None: closed without an answer (the 503 can be lost to the reset that closing a
        # socket with the unread request sends).
        check(set(answers) <= {200, 503, None} and answers.get(200) == bound,
              "%d connections: %r served, the rest refused (answers %r)" % (len(held), bound, answers))
        fds = node.open_fds()
        for s in held:
            s.close()
        held = []
        check(kvcluster.wait_served(node, deadline), "it serves once they close")
        errors = metric(node, "raftkit_http_accept_errors_total")
        check(errors == 0, "and accept never ran out of descriptors (%r failed accepts, %d open at most)" % (errors, fds))

        # Now run it out of descriptors: a soft limit just above what it holds.
        probe = kvcluster.Client(node.http_port)
        check(probe.request("GET", "/status")[0] == 200, "a probe connection is open")
        errors_before = metric(node, "raftkit_http_accept_errors_total", probe)
        resource.prlimit(node.proc.pid, resource.RLIMIT_NOFILE, (node.open_fds() + 2, nofile))
        for _ in range(10):
            held.append(connect(node))  # two are accepted, the others wait in the backlog
        cpu0, t0 = node.cpu_seconds(), time.monotonic()
        errors = errors_before
        while time.monotonic() - t0 < 1.5 or errors - errors_before < 3:
            deadline.check("waiting for accept errors")
            errors = metric(node, "raftkit_http_accept_errors_total", probe)
            time.sleep(0.05)
        cpu = node.cpu_seconds() - cpu0
        elapsed = time.monotonic() - t0
        print("     out of descriptors for %.2f s: %d failed accepts, %.2f s CPU" % (elapsed, errors - errors_before, cpu))
        check(errors - errors_before >= 3, "accept fails with EMFILE and it is counted")
        check(errors - errors_before <= 40, "accept backs off (%d failures in %.1f s)" % (errors - errors_before, elapsed))
        check(cpu < 0.3, "and does not spin (%.2f s CPU in %.1f s)" % (cpu, elapsed))
        check(probe.request("GET", "/status")[0] == 200, "an open connection is served meanwhile")
        resource.prlimit(node.proc.pid, resource.RLIMIT_NOFILE, (nofile, nofile))
        for s in held:
            s.close()
        held = []
        check(kvcluster.wait_served(node, deadline), "with descriptors back, new connections are served")
        probe.close()
        check(node.alive(), "the server is still running")
    finally:
        for s in held:
            s.close()
        cluster.close()


def main(binary):
    cluster = kvcluster.Cluster(binary, size=1, extra=[
        "--max-connections", str(MAX_CONNECTIONS), "--idle-timeout-ms", str(IDLE_MS),
        "--read-timeout-ms", str(READ_MS), "--max-header", str(MAX_HEADER), "--max-body", str(MAX_BODY)])
    try:
        cluster.start()
        cluster.wait_leader(kvcluster.Deadline(30))
        node = cluster.node(1)
        for t in (test_slowloris, test_idle, test_connection_bound, test_huge_header_and_body, test_chunked,
                  test_pipelining):
            print("--- " + t.__doc__.splitlines()[0], flush=True)
            t(node)
        check(node.alive(), "the server survived every attack")
    except Exception as e:  # a timeout or an unexpected error is a failure too
        kvcluster.fail_exception(e)
        print("--- log:\n%s" % cluster.node(1).log_text()[-2000:])
    finally:
        cluster.close()
    print("--- " + test_descriptors.__doc__.splitlines()[0], flush=True)
    test_descriptors(binary)


if __name__ == "__main__":
    kvcluster.run_test(main)
