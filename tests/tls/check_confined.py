#!/usr/bin/env python3
"""OpenSSL stays in raftkit/asio/tls_transport.hpp: no other public header reaches an
OpenSSL or boost/asio/ssl header, directly or through raftkit headers, so a program that
does not include the TLS header neither compiles nor links OpenSSL.

  check_confined.py <include_dir>
"""

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
import check_headers  # noqa: E402  (tests/check_headers.py: the header list and include parsing)

TLS_HEADER = "raftkit/asio/tls_transport.hpp"
OPENSSL_RE = re.compile(r"^(openssl/|boost/asio/ssl(\.hpp|/))")


def openssl_chain(include_dir: pathlib.Path, start: str) -> list[str] | None:
    """The include chain from `start` to an OpenSSL header, or None."""
    seen = {start}
    stack = [[start]]
    while stack:
        chain = stack.pop()
        for target, ours in check_headers.includes(include_dir, chain[-1]):
            if ours:
                if target not in seen:
                    seen.add(target)
                    stack.append(chain + [target])
            elif OPENSSL_RE.match(target):
                return chain + [target]
    return None


def main(argv: list[str]) -> int:
    include_dir = pathlib.Path(argv[1])
    bad = 0
    for h in check_headers.headers(include_dir):
        if h == TLS_HEADER:
            continue
        chain = openssl_chain(include_dir, h)
        if chain:
            print("OpenSSL outside the TLS header: " + " -> ".join(chain), file=sys.stderr)
            bad += 1
    if openssl_chain(include_dir, TLS_HEADER) is None:
        print(TLS_HEADER + " includes no OpenSSL header: is this check still looking at the right thing?",
              file=sys.stderr)
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
