#pragma once
// raftkit-kv's logs and metrics, in one place:
//  - event_logger: each engine event (raftkit/events.hpp) as one line on a stream, text or
//    JSON lines, filtered by level;
//  - latency_histogram and metrics_writer: the Prometheus text format (HELP and TYPE once
//    per family, labels, histograms with cumulative buckets, `_total` counters, units in
//    names). Every metric /metrics serves goes through one metrics_writer call, so a new
//    metric is one line and cannot get the format wrong.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <ctime>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "raftkit/events.hpp"
#include "raftkit/fmt.hpp"
#include "raftkit/sim/json_lines.hpp"

namespace kv {

// ---------------------------------------------------------------- event log

enum class log_level { debug = 0, info = 1, warn = 2, error = 3 };
enum class log_format { text, json };

constexpr std::string_view to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
  }
  return "info";
}

inline std::optional<log_level> parse_log_level(std::string_view s) {
  for (log_level l : {log_level::debug, log_level::info, log_level::warn, log_level::error})
    if (s == to_string(l)) return l;
  return std::nullopt;
}

/// How much an operator needs to see an event: failures are errors, things that hint at
/// trouble warnings, the ordinary life of a cluster info, and the per-request refusals
/// (one per refused request under overload) debug.
inline log_level level_of(const raftkit::event& e) {
  namespace ev = raftkit::events;
  if (e.get<ev::storage_error>()) return log_level::error;
  if (const auto* s = e.get<ev::node_stopped>()) return s->why == raftkit::errc::shutting_down ? log_level::info : log_level::error;
  if (e.get<ev::durability_stalled>() || e.get<ev::log_truncated>() || e.get<ev::snapshot_failed>() ||
      e.get<ev::snapshot_send_failed>() || e.get<ev::election_lost>())
    return log_level::warn;
  if (const auto* t = e.get<ev::transfer_ended>(); t && t->error) return log_level::warn;
  if (const auto* r = e.get<ev::role_changed>(); r && r->why == raftkit::event_reason::lost_quorum) return log_level::warn;
  if (e.get<ev::proposal_refused>()) return log_level::debug;
  return log_level::info;
}

/// `2026-12-01T15:02:11.120Z`: UTC wall-clock time with milliseconds.
inline std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
}

/// `s` as a JSON string literal (the simulator's history files use the same writer).
inline void append_json_string(std::string& out, std::string_view s) {
  std::ostringstream os;
  raftkit::sim::write_json_string(os, s);
  out += os.str();
}

/// One line per event: `TIME LEVEL node=N term=T NAME key=value...`, or with json a JSON
/// object with the same fields (`ts`, `level`, `node`, `term`, `event`, then the event's
/// own; errors as their errc name or `category:value`, with `<key>_message` (no error:
/// `ok`, without one); durations
/// as `<key>_seconds`). Each line is written with one call, so lines never interleave.
class event_logger final : public raftkit::event_sink {
 public:
  event_logger(std::FILE* out, log_format format, log_level min_level) noexcept
      : out_(out), format_(format), min_(min_level) {}

  void on_event(const raftkit::event& e) override {
    const log_level level = level_of(e);
    if (level < min_) return;
    const std::string line = format(e, level, std::chrono::system_clock::now());
    std::fputs(line.c_str(), out_);
    std::fflush(out_);
  }

  /// The line for `e` (with its newline), as on_event writes it.
  std::string format(const raftkit::event& e, log_level level, std::chrono::system_clock::time_point at) const {
    const std::string ts = utc_timestamp(at);
    if (format_ == log_format::text)
      return fmt::format("{} {} node={} term={} {}\n", ts, to_string(level), e.node, e.term, e);
    std::string out = "{\"ts\":\"" + ts + "\",\"level\":\"" + std::string(to_string(level)) + "\",\"node\":" +
                      std::to_string(e.node) + ",\"term\":" + std::to_string(e.term) + ",\"event\":\"" +
                      std::string(e.name()) + '"';
    raftkit::visit_fields(e.data, [&](std::string_view key, const auto& value) {
      using V = std::decay_t<decltype(value)>;
      out += ",\"";
      out += key;
      if constexpr (std::is_same_v<V, raftkit::duration>) {
        out += "_seconds\":" + fmt::format("{}", std::chrono::duration<double>(value).count());
      } else if constexpr (std::is_same_v<V, std::error_code>) {
        if (!value) {  // no error (a transfer that succeeded): as the text format says it
          out += "\":\"ok\"";
          return;
        }
        out += "\":";
        append_json_string(out, value.category() == raftkit::raftkit_category()
                                    ? std::string(raftkit::errc_name(static_cast<raftkit::errc>(value.value())))
                                    : fmt::format("{}:{}", value.category().name(), value.value()));
        out += ",\"";
        out += key;
        out += "_message\":";
        append_json_string(out, value.message());
      } else if constexpr (std::is_same_v<V, bool>) {
        out += value ? "\":true" : "\":false";
      } else if constexpr (std::is_same_v<V, std::string_view>) {
        out += "\":";
        append_json_string(out, value);
      } else {
        out += "\":" + std::to_string(value);
      }
    });
    out += "}\n";
    return out;
  }

 private:
  std::FILE* out_;
  log_format format_;
  log_level min_;
};

// ---------------------------------------------------------------- metrics

/// A Prometheus histogram over fixed bucket bounds (ascending), observed from any thread.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
  }
  /// Counts `n` observations of `v` (n > 1: a run of equal values, e.g. entries committed together).
  void observe(double v, std::uint64_t n = 1) noexcept {
    if (n == 0) return;
    const std::size_t i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    buckets_[i].fetch_add(n, std::memory_order_relaxed);  // non-cumulative here; summed when written
    sum_.fetch_add(v * static_cast<double>(n), std::memory_order_relaxed);
  }
  void observe(std::chrono::steady_clock::duration d, std::uint64_t n = 1) noexcept {
    observe(std::chrono::duration<double>(d).count(), n);
  }
  std::span<const double> bounds() const noexcept { return bounds_; }
  /// Counts per bucket (the last one: above every bound), not cumulative.
  std::vector<std::uint64_t> counts() const {
    std::vector<std::uint64_t> c(bounds_.size() + 1);
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = buckets_[i].load(std::memory_order_relaxed);
    return c;
  }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

/// A histogram of seconds: 0.5 ms to 10 s.
class latency_histogram : public histogram {
 public:
  latency_histogram() : histogram({0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}) {}
};

/// A histogram of counts in powers of two, 1 to `max` (rounded up to a power of two).
inline std::vector<double> power_of_two_bounds(std::uint64_t max) {
  std::vector<double> b;
  for (std::uint64_t v = 1;; v *= 2) {
    b.push_back(static_cast<double>(v));
    if (v >= max) break;
  }
  return b;
}

/// One label: name and value.
using label = std::pair<std::string_view, std::string>;

/// Writes the Prometheus text exposition format (version 0.0.4). Samples of one family
/// must be written one after another (its HELP and TYPE lines are written before the first).
class metrics_writer {
 public:
  /// A counter: its name ends in `_total`.
  template <class V>
  void counter(std::string_view name, std::string_view help, V v, std::initializer_list<label> labels = {}) {
    family(name, "counter", help);
    sample(name, "", labels, v);
  }
  template <class V>
  void gauge(std::string_view name, std::string_view help, V v, std::initializer_list<label> labels = {}) {
    family(name, "gauge", help);
    sample(name, "", labels, v);
  }
  void histogram(std::string_view name, std::string_view help, const kv::histogram& h,
                 std::initializer_list<label> labels = {}) {
    const auto counts = h.counts();
    histogram(name, help, h.bounds(), counts, h.sum(), labels);
  }
  /// A histogram from its bucket bounds and per-bucket (not cumulative) counts, one more
  /// than the bounds (the last: above every bound), and the sum of what was observed.
  void histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                 std::span<const std::uint64_t> counts, double sum, std::initializer_list<label> labels = {}) {
    family(name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      const std::string le = i < bounds.size() ? fmt::format("{}", bounds[i]) : std::string("+Inf");
      sample(name, "_bucket", labels, cumulative, label{"le", le});
    }
    sample(name, "_sum", labels, sum);
    sample(name, "_count", labels, cumulative);
  }
  /// A summary from a count and a sum (no quantiles): `name_sum`, `name_count`.
  void summary(std::string_view name, std::string_view help, std::uint64_t count, double sum) {
    family(name, "summary", help);
    sample(name, "_sum", {}, sum);
    sample(name, "_count", {}, count);
  }
  const std::string& text() const noexcept { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    if (name == last_family_) return;
    last_family_ = std::string(name);
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <class V>
  void sample(std::string_view name, std::string_view suffix, std::initializer_list<label> labels, V v,
              std::optional<label> extra = std::nullopt) {
    static_assert(std::is_arithmetic_v<V>);
    out_ += name;
    out_ += suffix;
    if (labels.size() || extra) {
      out_ += '{';
      bool first = true;
      auto one = [&](const label& l) {
        if (!first) out_ += ',';
        first = false;
        out_ += l.first;
        out_ += "=\"";
        for (char c : l.second) {
          if (c == '\\' || c == '"') out_ += '\\';
          if (c == '\n') {
            out_ += "\\n";
            continue;
          }
          out_ += c;
        }
        out_ += '"';
      };
      for (const auto& l : labels) one(l);
      if (extra) one(*extra);
      out_ += '}';
    }
    out_ += fmt::format(" {}\n", v);
  }

  std::string out_;
  std::string last_family_;
};

// ---------------------------------------------------------------- replication timing

/// What replication_tracker reads from the engine after one of its steps.
struct step_view {
  bool leader = false;
  raftkit::term_t term = 0;
  raftkit::index_t last_index = 0;
  raftkit::index_t commit_index = 0;
  std::uint64_t applied_total = 0;  ///< node_counters::applied
  raftkit::index_t min_match = 0;   ///< leader: the lowest match index of its followers
};

/// Follows the engine step by step (raftkit::asio::node::set_step_observer) to time what
/// the engine does not: each entry's append on the leader, so commit latency and each
/// follower's lag can be told in seconds, and how many entries each step applied.
///
///  - commit_seconds: leader, per entry appended in its term, from the step that appended
///    it to the step that saw it committed;
///  - apply_batch_entries: per step that applied entries, how many (the engine applies at
///    most node_config::max_apply_batch per input);
///  - lag_seconds(match): how long ago this leader appended the oldest entry a follower
///    with that match index is not known to hold durably (0 when it holds the whole log);
///    entries from before this node led count from when it became leader.
///
/// Appends are kept as runs (the entries one step appended share a time); runs every
/// follower holds are dropped, and beyond max_runs the oldest committed runs are merged
/// (keeping the older time, so lag is never under-reported).
class replication_tracker {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t max_runs = 4096;

  explicit replication_tracker(std::size_t max_apply_batch)
      : apply_batch_entries(power_of_two_bounds(max_apply_batch)) {}

  /// After a step of `engine` (a raftkit::basic_node), on its thread.
  template <class Engine>
  void observe_engine(const Engine& engine, clock::time_point now) {
    step_view v;
    v.leader = engine.is_leader();
    v.term = engine.term();
    v.last_index = engine.log().last_index();
    v.commit_index = engine.commit_index();
    v.applied_total = engine.counters().applied;
    if (v.leader) {
      v.min_match = v.last_index;
      for (raftkit::node_id id : engine.config().members)
        if (id != engine.id()) v.min_match = std::min(v.min_match, engine.match_index(id));
    }
    step(v, now);
  }

  /// After a step that left the engine as `v`, at `now`.
  void step(const step_view& v, clock::time_point now) {
    if (v.applied_total > applied_seen_) apply_batch_entries.observe(static_cast<double>(v.applied_total - applied_seen_));
    applied_seen_ = v.applied_total;
    std::lock_guard lk(mu_);
    if (!v.leader) {
      leading_ = false;
      runs_.clear();
      return;
    }
    if (!leading_ || v.term != term_ || v.last_index < last_) {
      leading_ = true;
      term_ = v.term;
      runs_.clear();
      if (v.last_index > 0) runs_.push_back({1, v.last_index, now, true});
      last_ = v.last_index;
      committed_ = v.commit_index;
    }
    if (v.last_index > last_) {
      runs_.push_back({last_ + 1, v.last_index, now, false});
      last_ = v.last_index;
    }
    if (v.commit_index > committed_) {
      for (const run& r : runs_) {
        if (r.last <= committed_) continue;
        if (r.first > v.commit_index) break;
        const raftkit::index_t n = std::min(r.last, v.commit_index) - std::max(r.first, committed_ + 1) + 1;
        if (!r.inherited) commit_seconds.observe(now - r.at, n);
      }
      committed_ = v.commit_index;
    }
    const raftkit::index_t held = std::min(committed_, v.min_match);
    while (!runs_.empty() && runs_.front().last <= held) runs_.pop_front();
    if (runs_.size() > max_runs && runs_[1].last <= committed_) {
      runs_[1].first = runs_[0].first;
      runs_[1].at = runs_[0].at;
      runs_.pop_front();
    }
  }

  /// Leader: seconds since it appended the oldest entry after `match` (see the class
  /// comment); 0 when it is not leading or `match` covers its log.
  double lag_seconds(raftkit::index_t match, clock::time_point now) const {
    std::lock_guard lk(mu_);
    if (!leading_ || match >= last_ || runs_.empty()) return 0;
    auto it = std::lower_bound(runs_.begin(), runs_.end(), match + 1, [](const run& r, raftkit::index_t i) { return r.last < i; });
    if (it == runs_.end()) return 0;
    return std::max(0.0, std::chrono::duration<double>(now - it->at).count());
  }

  latency_histogram commit_seconds;
  histogram apply_batch_entries;

 private:
  struct run {
    raftkit::index_t first = 0, last = 0;
    clock::time_point at{};
    bool inherited = false;  // in the log before this leader's term began: not timed for commit
  };

  std::uint64_t applied_seen_ = 0;  // the engine's thread only
  mutable std::mutex mu_;           // the rest: the engine's thread, and lag_seconds from /metrics
  bool leading_ = false;
  raftkit::term_t term_ = 0;
  raftkit::index_t last_ = 0, committed_ = 0;
  std::deque<run> runs_;
};

}  // namespace kv
