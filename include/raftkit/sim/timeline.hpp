#pragma once
/// \file A run's timeline: what each node was (role and term, down, paused, cut off)
/// over virtual time, the faults injected, every client operation and how it ended, and
/// where a failing run failed; and the self-contained HTML page that shows it.
///
/// sim::run records one when run_options::timeline is set. The page (write_timeline_html)
/// is one file with inline SVG, style and script and no network access: one lane per
/// node, shaded spans for crashes, pauses and partitions, one lane per client with its
/// operations as bars coloured by outcome, and for a failing run a red line where it
/// failed, the nodes an invariant names, and the operations the linearizability checker
/// could not place. Wheel or the buttons zoom, dragging pans, hovering shows details.
/// The page also reads its address's fragment: `#view=A-B` shows A to B ms, `#hover=ID`
/// opens the details of the element with that id (a browser test uses both).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "raftkit/sim/scenario.hpp"
#include "raftkit/status.hpp"
#include "raftkit/types.hpp"

namespace raftkit::sim {

/// What happened in one run, over virtual time (nanoseconds since the run began).
struct timeline {
  /// What a node was during a span.
  enum class span_kind : std::uint8_t { follower, pre_candidate, candidate, leader, down, paused, cut };
  /// A node's state from `from` to `to`.
  struct span {
    node_id node = no_node;
    std::int64_t from = 0, to = 0;
    span_kind kind = span_kind::follower;
    term_t term = 0;     ///< for roles
    std::string detail;  ///< for cuts: whom the node cannot reach or hear
  };
  /// One client operation.
  struct op {
    std::size_t client = 0;
    node_id via = no_node;         ///< the node it was sent to
    std::int64_t call = 0, ret = 0;  ///< ret: when it completed, failed, or the client gave up
    op_outcome outcome = op_outcome::unknown;
    std::string request, answer;   ///< what it asked, and (if ok) what it was told
    std::string path;              ///< "log", "ReadIndex" or "lease"
    std::int64_t history = -1;     ///< its index in the run's history (-1: not in it)
    bool in_failed_partition = false;  ///< in the partition the checker could not linearize
    bool unplaced = false;             ///< ... and not in the longest linearizable prefix
    bool culprit = false;              ///< the operation the checker's explanation is about
  };
  /// A fault injected, or the faults stopping.
  struct event {
    std::int64_t at = 0;
    std::string text;
  };
  /// Where and why the run failed.
  struct failure_mark {
    std::int64_t at = 0;
    std::string text;
    std::vector<node_id> nodes;  ///< the nodes an invariant names (empty for the checker)
  };

  std::size_t nodes = 0;
  std::size_t clients = 0;
  std::int64_t end = 0;
  std::vector<span> spans;
  std::vector<op> ops;
  std::vector<event> events;
  std::optional<failure_mark> failure;
  std::string title;    ///< "ledger, seed 42"
  std::string verdict;  ///< "passed", "failed", "inconclusive"
  std::string detail;   ///< the failure's full text
  std::string replay;   ///< the command that replays the run
};

/// The name of a span kind, as the page's classes use it.
constexpr std::string_view to_string(timeline::span_kind k) noexcept {
  switch (k) {
    case timeline::span_kind::follower: return "follower";
    case timeline::span_kind::pre_candidate: return "pre-candidate";
    case timeline::span_kind::candidate: return "candidate";
    case timeline::span_kind::leader: return "leader";
    case timeline::span_kind::down: return "down";
    case timeline::span_kind::paused: return "paused";
    case timeline::span_kind::cut: return "cut";
  }
  return "?";
}

/// Builds a timeline as a run goes: spans open when a node's state changes and close at
/// the next change.
class timeline_recorder {
 public:
  void start(std::size_t nodes, std::size_t clients) {
    t_.nodes = nodes;
    t_.clients = clients;
    state_.assign(nodes + 1, open_span{});
    cut_.assign(nodes + 1, open_span{});
  }

  /// Node `id` is `kind` (a role, down or paused) in `term` at `now`.
  void node(node_id id, timeline::span_kind kind, term_t term, std::int64_t now) {
    open_span& o = state_[id];
    if (o.open && o.kind == kind && o.term == term) return;
    close(id, o, now);
    o = {true, kind, term, now, {}};
  }

  /// Node `id` cannot reach or hear `peers` at `now` (empty: it can reach everyone).
  void cut(node_id id, const std::string& peers, std::int64_t now) {
    open_span& o = cut_[id];
    if (o.open && o.detail == peers) return;
    if (!o.open && peers.empty()) return;
    close(id, o, now);
    if (!peers.empty()) o = {true, timeline::span_kind::cut, 0, now, peers};
  }

  /// A client operation started; returns its number.
  std::size_t op_start(std::size_t client, node_id via, std::int64_t call, std::string request, std::string path) {
    timeline::op o;
    o.client = client;
    o.via = via;
    o.call = o.ret = call;
    o.request = std::move(request);
    o.path = std::move(path);
    t_.ops.push_back(std::move(o));
    return t_.ops.size() - 1;
  }
  /// Operation `i` ended at `at` with `outcome`.
  void op_end(std::size_t i, std::int64_t at, op_outcome outcome, std::string answer = {}, std::int64_t history = -1) {
    auto& o = t_.ops[i];
    o.ret = at;
    o.outcome = outcome;
    o.answer = std::move(answer);
    o.history = history;
  }
  /// The path an operation took after it started (a read may fall back to the log).
  void op_path(std::size_t i, std::string path) { t_.ops[i].path = std::move(path); }

  void event(std::int64_t at, std::string text) { t_.events.push_back({at, std::move(text)}); }

  /// Closes every open span at `end` and hands the timeline over.
  timeline finish(std::int64_t end) {
    for (node_id id = 1; id < state_.size(); ++id) {
      close(id, state_[id], end);
      close(id, cut_[id], end);
    }
    t_.end = end;
    std::stable_sort(t_.spans.begin(), t_.spans.end(),
                     [](const timeline::span& a, const timeline::span& b) { return a.node < b.node; });
    return std::move(t_);
  }

 private:
  struct open_span {
    bool open = false;
    timeline::span_kind kind = timeline::span_kind::follower;
    term_t term = 0;
    std::int64_t from = 0;
    std::string detail;
  };
  void close(node_id id, open_span& o, std::int64_t now) {
    if (!o.open) return;
    t_.spans.push_back({id, o.from, now, o.kind, o.term, o.detail});
    o.open = false;
  }
  timeline t_;
  std::vector<open_span> state_, cut_;
};

namespace detail {

/// Text for HTML content and attribute values.
inline std::string html_escape(std::string_view s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&#39;"; break;
      case '\n': r += "&#10;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) r += ' ';
        else r += c;
    }
  }
  return r;
}

/// Nanoseconds as milliseconds with microsecond precision ("1234.567").
inline std::string ms_text(std::int64_t ns) {
  char b[48];
  std::snprintf(b, sizeof b, "%.3f", static_cast<double>(ns) / 1e6);
  return b;
}

inline constexpr std::string_view timeline_style = R"css(
body{font:13px/1.4 system-ui,sans-serif;margin:12px;color:#222;background:#fafafa}
h1{font-size:17px;margin:0 0 6px}
.verdict{display:inline-block;padding:2px 8px;border-radius:3px;font-weight:600;color:#fff}
.verdict.passed{background:#2e7d32}.verdict.failed{background:#c62828}.verdict.inconclusive{background:#ef6c00}
#failure-text{white-space:pre-wrap;background:#fff3f3;border:1px solid #e5b4b4;padding:6px 8px;margin:6px 0;max-height:9em;overflow:auto;font:12px ui-monospace,monospace}
#replay{font:12px ui-monospace,monospace;color:#555}
.controls{margin:8px 0}.controls button{font:inherit;margin-right:4px}
#range{color:#555;margin-left:8px}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:14px;height:10px;margin-right:4px;vertical-align:middle}
svg{background:#fff;border:1px solid #ccc;user-select:none;cursor:grab}
.lane-label{font:12px ui-monospace,monospace;fill:#333}.lane-label.named{fill:#c62828;font-weight:700}
.lane-bg{fill:#f5f5f5}
.span.follower{fill:#cfd8dc}.span.pre-candidate{fill:#fff59d}.span.candidate{fill:#ffca28}.span.leader{fill:#43a047}
.span.down{fill:url(#hatch-down)}.span.paused{fill:url(#hatch-paused)}.span.cut{fill:#8e24aa}
.term{font:10px ui-monospace,monospace;fill:#000;pointer-events:none}
.op{stroke:none}.op.ok{fill:#66bb6a}.op.failed{fill:#bdbdbd}.op.unknown{fill:#ffb74d}
.op.in-failed-partition{stroke:#1565c0;stroke-width:1}
.op.unplaced{stroke:#d50000;stroke-width:2.5}
.op.culprit{fill:#d50000;stroke:#000;stroke-width:1.5}
.event{stroke:#7b1fa2;stroke-width:1}
.failure-line{stroke:#d50000;stroke-width:2;stroke-dasharray:5 3}
.failure-node{fill:#d50000}
.tick{stroke:#ddd}.tick-label{font:10px ui-monospace,monospace;fill:#666}
.separator{font:11px system-ui;fill:#666}
#tip{position:fixed;pointer-events:none;background:#263238;color:#fff;padding:5px 7px;border-radius:3px;font:12px ui-monospace,monospace;white-space:pre;max-width:70ch;z-index:2}
#pinned{white-space:pre-wrap;font:12px ui-monospace,monospace;background:#fff;border:1px solid #ccc;padding:6px;min-height:2em}
)css";

inline constexpr std::string_view timeline_script = R"js(
(function () {
  'use strict';
  const svg = document.getElementById('timeline');
  const W = +svg.dataset.width, L = +svg.dataset.left, END = +svg.dataset.end;
  const tip = document.getElementById('tip'), pinned = document.getElementById('pinned');
  const range = document.getElementById('range'), axis = document.getElementById('axis');
  const H = +svg.getAttribute('height');
  const timed = Array.from(svg.querySelectorAll('[data-t0]'));
  let v0 = 0, v1 = END > 0 ? END : 1;
  const x = t => L + (t - v0) / (v1 - v0) * (W - L);
  function niceStep(span) {
    const raw = span / 10, p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
    return 10 * p;
  }
  function render() {
    for (const e of timed) {
      const t0 = +e.dataset.t0, t1 = e.dataset.t1 !== undefined ? +e.dataset.t1 : t0;
      if (e.tagName === 'line') {
        e.setAttribute('x1', x(t0)); e.setAttribute('x2', x(t0));
      } else if (e.tagName === 'text') {
        const a = x(t0), b = x(t1);
        e.setAttribute('x', (Math.max(a, L) + Math.min(b, W)) / 2);
        e.style.display = Math.min(b, W) - Math.max(a, L) > 26 ? '' : 'none';
      } else {
        const a = x(t0), b = x(t1), min = +(e.dataset.min || 0);
        const w = Math.max(b - a, min);
        e.setAttribute('x', a - (w - (b - a)) / 2); e.setAttribute('width', w);
      }
    }
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    const step = niceStep(v1 - v0);
    for (let t = Math.ceil(v0 / step) * step; t <= v1; t += step) {
      const l = document.createElementNS('http://www.w3.org/2000/svg', 'line');
      l.setAttribute('class', 'tick'); l.setAttribute('x1', x(t)); l.setAttribute('x2', x(t));
      l.setAttribute('y1', 18); l.setAttribute('y2', H); axis.appendChild(l);
      const s = document.createElementNS('http://www.w3.org/2000/svg', 'text');
      s.setAttribute('class', 'tick-label'); s.setAttribute('x', x(t) + 2); s.setAttribute('y', 12);
      s.textContent = (step >= 1000 ? (t / 1000).toFixed(step >= 10000 ? 0 : 1) + ' s' : +t.toFixed(3) + ' ms');
      axis.appendChild(s);
    }
    svg.dataset.view = v0.toFixed(3) + '-' + v1.toFixed(3);
    range.textContent = 'showing ' + v0.toFixed(1) + ' to ' + v1.toFixed(1) + ' ms of ' + END.toFixed(1) + ' ms';
  }
  function setView(a, b) {
    const span = Math.max(b - a, 0.001);
    a = Math.max(0, Math.min(a, END - span)); b = Math.min(END, a + span);
    v0 = a; v1 = b > a ? b : a + 0.001; render();
  }
  function zoom(f, at) {
    const c = at === undefined ? (v0 + v1) / 2 : at;
    setView(c - (c - v0) * f, c + (v1 - c) * f);
  }
  const timeAt = ev => { const r = svg.getBoundingClientRect(); return v0 + (ev.clientX - r.left - L) / (W - L) * (v1 - v0); };
  svg.addEventListener('wheel', ev => { ev.preventDefault(); zoom(ev.deltaY < 0 ? 0.8 : 1.25, timeAt(ev)); }, {passive: false});
  let drag = null;
  svg.addEventListener('mousedown', ev => { drag = {x: ev.clientX, a: v0, b: v1}; svg.style.cursor = 'grabbing'; });
  window.addEventListener('mouseup', () => { drag = null; svg.style.cursor = ''; });
  window.addEventListener('mousemove', ev => {
    if (!drag) return;
    const dt = (ev.clientX - drag.x) / (W - L) * (drag.b - drag.a);
    setView(drag.a - dt, drag.b - dt);
  });
  svg.addEventListener('dblclick', () => setView(0, END));
  document.getElementById('zoom-in').onclick = () => zoom(0.5);
  document.getElementById('zoom-out').onclick = () => zoom(2);
  document.getElementById('zoom-reset').onclick = () => setView(0, END);
  const failure = svg.querySelector('.failure-line');
  document.getElementById('zoom-failure').onclick = () => {
    if (failure) { const t = +failure.dataset.t0; setView(t - 300, t + 100); }
  };
  window.addEventListener('keydown', ev => {
    if (ev.key === '+' || ev.key === '=') zoom(0.5);
    else if (ev.key === '-') zoom(2);
    else if (ev.key === '0') setView(0, END);
  });
  function show(el, cx, cy) {
    tip.textContent = el.dataset.tip; tip.hidden = false;
    tip.style.left = Math.min(cx + 12, window.innerWidth - 420) + 'px'; tip.style.top = (cy + 14) + 'px';
    tip.dataset.for = el.id || '';
  }
  svg.addEventListener('mousemove', ev => {
    const el = ev.target.closest('[data-tip]');
    if (el) show(el, ev.clientX, ev.clientY); else tip.hidden = true;
  });
  svg.addEventListener('mouseleave', () => { tip.hidden = true; });
  svg.addEventListener('click', ev => {
    const el = ev.target.closest('[data-tip]');
    if (el) { pinned.textContent = el.dataset.tip; pinned.dataset.for = el.id || ''; }
  });
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has('view')) {
    const [a, b] = params.get('view').split('-').map(Number);
    if (isFinite(a) && isFinite(b) && b > a) { v0 = a; v1 = b; }
  }
  render();
  if (params.has('hover')) {
    const el = document.getElementById(params.get('hover'));
    if (el && el.dataset.tip) {
      const r = el.getBoundingClientRect();
      show(el, r.left + r.width / 2, r.top + r.height / 2);
      pinned.textContent = el.dataset.tip; pinned.dataset.for = el.id;
    }
  }
  document.body.dataset.ready = '1';
})();
)js";

}  // namespace detail

/// Writes `t` as one self-contained HTML page (see the file comment).
inline void write_timeline_html(std::ostream& os, const timeline& t) {
  using detail::html_escape;
  using detail::ms_text;
  constexpr int width = 1500, left = 96, axis_h = 22, node_h = 34, client_h = 14, gap = 22;
  const int nodes_top = axis_h + 4;
  const int clients_top = nodes_top + static_cast<int>(t.nodes) * node_h + gap;
  const int height = clients_top + static_cast<int>(t.clients) * client_h + 10;
  auto timed = [](std::int64_t a, std::int64_t b) {
    return " data-t0=\"" + ms_text(a) + "\" data-t1=\"" + ms_text(b) + "\"";
  };
  auto is_named = [&](node_id id) {
    return t.failure && std::find(t.failure->nodes.begin(), t.failure->nodes.end(), id) != t.failure->nodes.end();
  };

  os << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>raftkit timeline: "
     << html_escape(t.title) << "</title>\n<style>" << detail::timeline_style << "</style></head>\n<body>\n";
  os << "<h1>raftkit timeline: " << html_escape(t.title) << " <span class=\"verdict " << html_escape(t.verdict)
     << "\" id=\"verdict\">" << html_escape(t.verdict) << "</span></h1>\n";
  if (!t.detail.empty()) os << "<div id=\"failure-text\">" << html_escape(t.detail) << "</div>\n";
  if (!t.replay.empty()) os << "<div id=\"replay\">replay: " << html_escape(t.replay) << "</div>\n";
  os << "<div class=\"controls\"><button id=\"zoom-in\" title=\"zoom in (+)\">zoom in</button>"
        "<button id=\"zoom-out\" title=\"zoom out (-)\">zoom out</button>"
        "<button id=\"zoom-reset\" title=\"whole run (0, or double-click)\">whole run</button>"
        "<button id=\"zoom-failure\">to the failure</button><span id=\"range\"></span></div>\n";
  os << "<div class=\"legend\"><span><i style=\"background:#43a047\"></i>leader</span>"
        "<span><i style=\"background:#ffca28\"></i>candidate</span>"
        "<span><i style=\"background:#fff59d\"></i>pre-candidate</span>"
        "<span><i style=\"background:#cfd8dc\"></i>follower</span>"
        "<span><i style=\"background:#555\"></i>down (crashed)</span>"
        "<span><i style=\"background:#fb8c00\"></i>paused</span>"
        "<span><i style=\"background:#8e24aa\"></i>cut off (partition)</span>"
        "<span><i style=\"background:#66bb6a\"></i>op ok</span>"
        "<span><i style=\"background:#bdbdbd\"></i>op failed (not applied)</span>"
        "<span><i style=\"background:#ffb74d\"></i>op unknown</span>"
        "<span><i style=\"background:#fff;outline:2px solid #d50000\"></i>could not be linearized</span>"
        "<span><i style=\"background:#d50000\"></i>the checker's culprit</span></div>\n";
  os << "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" data-width=\"" << width << "\" data-left=\"" << left << "\" data-end=\"" << ms_text(t.end) << "\">\n";
  os << "<defs><pattern id=\"hatch-down\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#757575\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#212121\" stroke-width=\"3\"/></pattern>"
        "<pattern id=\"hatch-paused\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
        "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#ffe0b2\"/>"
        "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#fb8c00\" stroke-width=\"3\"/></pattern>"
        "<clipPath id=\"plot\"><rect x=\""
     << left << "\" y=\"0\" width=\"" << width - left << "\" height=\"" << height << "\"/></clipPath></defs>\n";
  os << "<g id=\"axis\" clip-path=\"url(#plot)\"></g>\n";

  // Node lanes.
  for (std::size_t n = 1; n <= t.nodes; ++n) {
    const int y = nodes_top + static_cast<int>(n - 1) * node_h;
    os << "<g class=\"lane node\" id=\"lane-node-" << n << "\" data-node=\"" << n << "\">"
       << "<rect class=\"lane-bg\" x=\"" << left << "\" y=\"" << y + 2 << "\" width=\"" << width - left
       << "\" height=\"" << node_h - 4 << "\"/>"
       << "<text class=\"lane-label" << (is_named(n) ? " named" : "") << "\" x=\"6\" y=\"" << y + 17 << "\">node " << n
       << "</text><g clip-path=\"url(#plot)\">\n";
    std::size_t k = 0;
    for (const auto& s : t.spans) {
      if (s.node != n) continue;
      const bool role = s.kind != timeline::span_kind::down && s.kind != timeline::span_kind::paused &&
                        s.kind != timeline::span_kind::cut;
      std::string tip = "node " + std::to_string(n) + ": " + std::string(to_string(s.kind));
      if (role) tip += " in term " + std::to_string(s.term);
      if (!s.detail.empty()) tip += " (" + s.detail + ")";
      tip += "\n" + ms_text(s.from) + " to " + ms_text(s.to) + " ms";
      const int sy = s.kind == timeline::span_kind::cut ? y + 25 : y + 5;
      const int sh = s.kind == timeline::span_kind::cut ? 6 : 19;
      os << "<rect class=\"span " << to_string(s.kind) << "\" id=\"span-" << n << "-" << k++ << "\"" << timed(s.from, s.to)
         << " x=\"" << left << "\" y=\"" << sy << "\" width=\"0\" height=\"" << sh << "\" data-tip=\""
         << html_escape(tip) << "\"><title>" << html_escape(tip) << "</title></rect>";
      if (role && s.kind != timeline::span_kind::follower)
        os << "<text class=\"term\"" << timed(s.from, s.to) << " y=\"" << y + 18 << "\" text-anchor=\"middle\">T" << s.term
           << "</text>";
      else if (role)
        os << "<text class=\"term\"" << timed(s.from, s.to) << " y=\"" << y + 18 << "\" text-anchor=\"middle\">t" << s.term
           << "</text>";
      os << "\n";
    }
    os << "</g></g>\n";
  }

  // Client lanes.
  os << "<text class=\"separator\" x=\"6\" y=\"" << clients_top - 6 << "\">clients</text>\n";
  for (std::size_t c = 0; c < t.clients; ++c) {
    const int y = clients_top + static_cast<int>(c) * client_h;
    os << "<g class=\"lane client\" id=\"lane-client-" << c << "\" data-client=\"" << c << "\">"
       << "<text class=\"lane-label\" x=\"6\" y=\"" << y + 11 << "\">client " << c << "</text><g clip-path=\"url(#plot)\">\n";
    for (std::size_t i = 0; i < t.ops.size(); ++i) {
      const auto& o = t.ops[i];
      if (o.client != c) continue;
      std::string cls = "op " + std::string(to_string(o.outcome));
      if (o.in_failed_partition) cls += " in-failed-partition";
      if (o.unplaced) cls += " unplaced";
      if (o.culprit) cls += " culprit";
      std::string tip = o.request + "\n" + std::string(to_string(o.outcome));
      if (o.outcome == op_outcome::ok) tip += ": " + o.answer;
      tip += "\nclient " + std::to_string(c) + " via node " + std::to_string(o.via) + " (" + o.path + ")\n" +
             ms_text(o.call) + " to " + ms_text(o.ret) + " ms";
      if (o.history >= 0) tip += "\nhistory #" + std::to_string(o.history);
      if (o.culprit) tip += "\nthe checker's culprit: no linearization can place it";
      else if (o.unplaced) tip += "\nnot in the longest linearizable prefix of its partition";
      // Refused operations (not applied) are many and say little: drawn thin.
      const bool thin = o.outcome == op_outcome::failed;
      os << "<rect class=\"" << cls << "\" id=\"op-" << i << "\"" << timed(o.call, o.ret) << " data-min=\"2\""
         << (o.history >= 0 ? " data-history=\"" + std::to_string(o.history) + "\"" : std::string()) << " x=\"" << left
         << "\" y=\"" << y + (thin ? 5 : 2) << "\" width=\"0\" height=\"" << (thin ? 4 : client_h - 4)
         << "\" data-tip=\"" << html_escape(tip)
         << "\"><title>" << html_escape(tip) << "</title></rect>\n";
    }
    os << "</g></g>\n";
  }

  // Faults injected, on the axis row; the failure across every lane.
  os << "<g id=\"events\" clip-path=\"url(#plot)\">\n";
  for (std::size_t i = 0; i < t.events.size(); ++i) {
    const auto& e = t.events[i];
    const std::string tip = ms_text(e.at) + " ms: " + e.text;
    os << "<line class=\"event\" id=\"event-" << i << "\" data-t0=\"" << ms_text(e.at) << "\" y1=\"14\" y2=\""
       << nodes_top << "\" data-tip=\"" << html_escape(tip) << "\"><title>" << html_escape(tip) << "</title></line>\n";
  }
  if (t.failure) {
    const std::string tip = "failed at " + ms_text(t.failure->at) + " ms: " + t.failure->text;
    os << "<line class=\"failure-line\" id=\"failure\" data-t0=\"" << ms_text(t.failure->at) << "\" y1=\"14\" y2=\""
       << height << "\" data-tip=\"" << html_escape(tip) << "\"><title>" << html_escape(tip) << "</title></line>\n";
    for (node_id n : t.failure->nodes) {
      const int y = nodes_top + static_cast<int>(n - 1) * node_h;
      os << "<rect class=\"failure-node\" id=\"failure-node-" << n << "\"" << timed(t.failure->at, t.failure->at)
         << " data-min=\"8\" x=\"" << left << "\" y=\"" << y + 1 << "\" width=\"0\" height=\"" << node_h - 2
         << "\" data-tip=\"" << html_escape("node " + std::to_string(n) + ": " + tip) << "\"/>\n";
    }
  }
  os << "</g>\n</svg>\n<div id=\"tip\" hidden></div>\n<p>Click an element to keep its details here:</p>"
        "<div id=\"pinned\"></div>\n<script>"
     << detail::timeline_script << "</script>\n</body></html>\n";
}

}  // namespace raftkit::sim
