#pragma once
// raftkit-kv's logs and metrics, in one place:
//  - event_logger: each engine event (raftkit/events.hpp) as one line on a stream, text or
//    JSON lines, filtered by level;
//  - latency_histogram and metrics_writer: the Prometheus text format (HELP and TYPE once
//    per family, labels, histograms with cumulative buckets, `_total` counters, units in
//    names). Every metric /metrics serves goes through one metrics_writer call, so a new
//    metric is one line and cannot get the format wrong.

#include <atomic>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

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
      e.get<ev::election_lost>())
    return log_level::warn;
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
/// own; errors as their errc name or `category:value`, with `<key>_message`; durations
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

/// A Prometheus histogram of seconds (or of any unit the caller picks with `bounds`),
/// observed from any thread.
class latency_histogram {
 public:
  static constexpr std::array<double, 14> default_bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  void observe(double v) noexcept {
    std::size_t i = 0;
    while (i < default_bounds.size() && v > default_bounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);  // non-cumulative here; summed when written
    sum_.fetch_add(v, std::memory_order_relaxed);
  }
  void observe(std::chrono::steady_clock::duration d) noexcept {
    observe(std::chrono::duration<double>(d).count());
  }
  /// Counts per bucket (the last one: above every bound), not cumulative.
  std::array<std::uint64_t, default_bounds.size() + 1> counts() const noexcept {
    std::array<std::uint64_t, default_bounds.size() + 1> c{};
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = buckets_[i].load(std::memory_order_relaxed);
    return c;
  }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::uint64_t>, default_bounds.size() + 1> buckets_{};
  std::atomic<double> sum_{0};
};

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
  void histogram(std::string_view name, std::string_view help, const latency_histogram& h,
                 std::initializer_list<label> labels = {}) {
    family(name, "histogram", help);
    const auto counts = h.counts();
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      const std::string le = i < latency_histogram::default_bounds.size()
                                 ? fmt::format("{}", latency_histogram::default_bounds[i])
                                 : std::string("+Inf");
      sample(name, "_bucket", labels, cumulative, label{"le", le});
    }
    sample(name, "_sum", labels, h.sum());
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

}  // namespace kv
