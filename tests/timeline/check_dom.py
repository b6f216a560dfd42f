#!/usr/bin/env python3
"""Checks the DOM headless Chromium produced from a raftkit timeline page.

    check_dom.py page.html full.dom zoomed.dom VIEW CULPRIT-ID invariant|model NODES

`page.html` is the page as written (it must load nothing from the network); `full.dom`
is Chromium's --dump-dom of it as opened, `zoomed.dom` of it opened at
`#view=VIEW&hover=CULPRIT-ID`. The script that draws the page must have run (lanes laid
out, axis ticks drawn, body[data-ready]); for a run that failed in the model the
operation CULPRIT-ID is the one culprit and others are marked as not linearizable; for
an invariant the named nodes carry the failure. Zooming to VIEW must widen the culprit
or the failure mark, and the hover must show its details. Exit 0 when all hold.
"""

import html.parser
import re
import sys


class Dom(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements = []  # (tag, attrs dict, text)
        self._open = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        el = [tag, dict(attrs), ""]
        self.elements.append(el)
        if tag not in ("line", "rect", "br", "meta", "input", "img"):
            self._open.append(el)

    def handle_startendtag(self, tag, attrs):
        self.elements.append([tag, dict(attrs), ""])

    def handle_endtag(self, tag):
        while self._open:
            el = self._open.pop()
            if el[0] == tag:
                break

    def handle_data(self, data):
        if self._open:
            self._open[-1][2] += data

    def with_class(self, *names, tag=None):
        out = []
        for t, a, _ in self.elements:
            classes = a.get("class", "").split()
            if all(n in classes for n in names) and (tag is None or t == tag):
                out.append(a)
        return out

    def by_id(self, ident):
        for t, a, text in self.elements:
            if a.get("id") == ident:
                return t, a, text
        return None


failures = []


def expect(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def main(argv):
    page_path, full_path, zoomed_path, view, culprit, kind, nodes = argv[1:8]
    nodes = int(nodes)
    page = open(page_path, encoding="utf-8").read()
    # Self-contained: no address but the SVG namespace, nothing loaded from elsewhere.
    addresses = set(re.findall(r"https?://[^\s\"'<>)]+", page)) - {"http://www.w3.org/2000/svg"}
    expect(not addresses, "the page names no address to load (found: %s)" % sorted(addresses)[:3])
    expect(not re.search(r"<(link|img|iframe)\b|\bsrc=", page), "the page has no link, image, frame or src")

    full = Dom(open(full_path, encoding="utf-8").read())
    zoomed = Dom(open(zoomed_path, encoding="utf-8").read())
    expect(any(b.get("data-ready") == "1" for b in [a for t, a, _ in full.elements if t == "body"]),
           "the page's script ran to the end (body[data-ready=1])")
    expect(len(full.with_class("lane", "node")) == nodes, "one lane per node (%d)" % nodes)
    expect(len(full.with_class("lane", "client")) >= 1, "client lanes")
    expect(len(full.with_class("tick", tag="line")) >= 3, "the script drew the time axis")
    expect(len(full.with_class("span", "leader")) >= 1, "leader spans")
    expect(len(full.with_class("span", "follower")) >= 1, "follower spans")
    expect(len(full.with_class("span", "down")) >= 1, "crashes as shaded spans")
    # The script lays every span out: a width and position from its times.
    laid_out = [a for a in full.with_class("span") if "x" in a and float(a.get("width", "0")) > 0]
    expect(len(laid_out) >= len(full.with_class("span")) // 2, "spans laid out by the script (x, width)")
    for outcome in ("ok", "unknown", "failed"):
        expect(len(full.with_class("op", outcome)) >= 1, "operations that ended %s" % outcome)
    expect(len(full.with_class("failure-line")) == 1, "one failure line")
    expect(len(full.with_class("event")) >= 1, "faults injected, on the axis")
    named = full.with_class("lane-label", "named")
    if kind == "model":
        culprits = full.with_class("op", "culprit")
        expect(len(culprits) == 1 and culprits[0].get("id") == culprit, "the checker's culprit, %s, is highlighted" % culprit)
        expect(len(full.with_class("op", "unplaced")) >= 1, "operations no linearization could place are highlighted")
        expect(len(full.with_class("op", "in-failed-partition")) >= 2, "the failing key's operations are marked")
        expect(len(named) == 1, "the node that answered the culprit is named")
    else:
        expect(not full.with_class("op", "culprit"), "no culprit operation for an invariant")
        expect(len(named) == 2, "the invariant's two nodes are named")
        expect(len(full.with_class("failure-node")) == 2, "failure marks on their lanes")

    zview = [a for t, a, _ in zoomed.elements if a.get("id") == "timeline"]
    expect(zview and zview[0].get("data-view") == view, "zoomed to the view asked for (%s)" % view)
    fview = [a for t, a, _ in full.elements if a.get("id") == "timeline"]
    expect(fview and fview[0].get("data-view", "").startswith("0.000-"), "opened on the whole run")
    target = culprit if kind == "model" else "failure-node-" + str(named_node(full))
    f_el, z_el = full.by_id(target), zoomed.by_id(target)
    expect(f_el is not None and z_el is not None, "the element %s is on both pages" % target)
    if f_el and z_el:
        fw, zw = float(f_el[1].get("width", 0)), float(z_el[1].get("width", 0))
        if kind == "model":
            expect(zw > fw * 3, "zooming in widens it (%.2f px -> %.2f px)" % (fw, zw))
        else:
            fl = [text for t, a, text in full.elements if "tick-label" in a.get("class", "")]
            zl = [text for t, a, text in zoomed.elements if "tick-label" in a.get("class", "")]
            expect(fl and zl and "ms" in zl[0] and fl != zl, "zooming in relabels the axis (%s -> %s)" % (fl[:1], zl[:1]))
    tip = zoomed.by_id("tip")
    expect(tip is not None and "hidden" not in tip[1], "hovering shows the details box")
    if tip and kind == "model":
        expect(tip[1].get("data-for") == culprit and "culprit" in tip[2], "the details are the culprit's: %r" % tip[2][:80])
    elif tip:
        expect("replica states differ" in tip[2], "the details say the replicas differ: %r" % tip[2][:80])
    return 1 if failures else 0


def named_node(dom):
    for a in dom.with_class("failure-node"):
        return a["id"].rsplit("-", 1)[1]
    return "?"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
