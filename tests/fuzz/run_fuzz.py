#!/usr/bin/env python3
"""Runs a libFuzzer target briefly, as a test.

Usage: run_fuzz.py FUZZER CORPUS_DIR [libFuzzer options...]
Runs every input of the checked-in corpus first (the regression inputs), then fuzzes for
as long as the options say. New inputs go to a temporary directory, never into the
checked-in corpus. On a failure prints the input that failed (hex) so it can be added to
the corpus. Exit status: the fuzzer's (0 when nothing was found).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    fuzzer, corpus, options = sys.argv[1], sys.argv[2], sys.argv[3:]
    if not os.path.isdir(corpus) or not os.listdir(corpus):
        print("run_fuzz: no corpus in %s" % corpus, file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="raftkit-fuzz-")
    try:
        new = os.path.join(work, "new")
        os.mkdir(new)
        cmd = [fuzzer, new, corpus, "-artifact_prefix=" + work + "/", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=1"] + options
        print(" ".join(cmd), flush=True)
        rc = subprocess.call(cmd)
        for path in sorted(glob.glob(os.path.join(work, "*-*"))):
            with open(path, "rb") as f:
                data = f.read()
            print("run_fuzz: %s (%d bytes): %s" % (os.path.basename(path), len(data), data[:4096].hex()))
        return rc
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
