#!/usr/bin/env python3
"""Keeps docs/ from rotting: compiles every C++ snippet the pages mark, and checks links.

  docs_snippets.py <source_root> <compiler command...>

- Every ```cpp block right after a `<!-- compile -->` line (blank lines between are fine)
  in docs/*.md and README.md is a whole translation unit: it is compiled with
  `-std=c++20 -fsyntax-only -Wall -Wextra -Werror -I<root>/include` (templates are
  instantiated, so a snippet using a renamed member fails). Unmarked blocks are
  fragments and are not compiled.
- Every relative link in docs/*.md (and README.md's links into docs/) names a file that
  exists, and every page in docs/ is linked from README.md.
Exit status 1 lists each failure with its file and line.
"""

import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys
import tempfile

MARK_RE = re.compile(r"^<!--\s*compile\s*-->\s*$")
LINK_RE = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def snippets(path: pathlib.Path):
    """(line number, code) of each marked cpp block of `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if MARK_RE.match(lines[i].strip()):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j >= len(lines) or lines[j].strip() != "```cpp":
                yield (i + 1, None)  # a mark without a cpp block after it
                i = j
                continue
            k = j + 1
            while k < len(lines) and lines[k].strip() != "```":
                k += 1
            yield (j + 2, "\n".join(lines[j + 1:k]) + "\n")
            i = k
        i += 1


def compile_one(compiler, root, where, code):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write(f'#line {where[1]} "{where[0]}"\n' + code)
        name = f.name
    try:
        cmd = compiler + ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                          "-I" + str(root / "include"), name]
        r = subprocess.run(cmd, capture_output=True, text=True)
        return where, r.returncode, r.stdout + r.stderr
    finally:
        os.unlink(name)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    root = pathlib.Path(argv[1]).resolve()
    compiler = argv[2:]
    pages = sorted((root / "docs").glob("*.md"))
    failures = []
    jobs = []
    for page in pages + [root / "README.md"]:
        rel = page.relative_to(root).as_posix()
        for line, code in snippets(page):
            if code is None:
                failures.append(f"{rel}:{line}: <!-- compile --> is not followed by a ```cpp block")
            else:
                jobs.append(((rel, line), code))
        text = page.read_text(encoding="utf-8")
        for n, l in enumerate(text.splitlines(), 1):
            for target, _ in LINK_RE.findall(l):
                if "://" in target or target.startswith("mailto:"):
                    continue
                if page.name == "README.md" and not target.startswith("docs/"):
                    continue
                if not (page.parent / target).exists():
                    failures.append(f"{rel}:{n}: link to {target}, which does not exist")
    readme = (root / "README.md").read_text(encoding="utf-8")
    for page in pages:
        if f"docs/{page.name}" not in readme:
            failures.append(f"README.md: does not link docs/{page.name}")
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for where, rc, out in pool.map(lambda j: compile_one(compiler, root, j[0], j[1]), jobs):
            if rc != 0:
                failures.append(f"{where[0]}:{where[1]}: snippet does not compile:\n{out}")
    print(f"{len(jobs)} snippets compiled from {len(pages)} pages and README.md")
    for f in failures:
        print(f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
