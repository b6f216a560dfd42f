// observability.hpp: the event log's lines and the Prometheus text the metrics writer makes.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "observability.hpp"

namespace ev = raftkit::events;

namespace {
const auto at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'764'601'331'120));  // 2025-12-01T15:02:11.120Z
raftkit::event role_event() {
  return {2, 3, ev::role_changed{raftkit::role::candidate, raftkit::role::leader, raftkit::event_reason::election_won}};
}
}  // namespace

TEST_CASE("an event is one text line: time, level, node, term, name and fields") {
  kv::event_logger log(stderr, kv::log_format::text, kv::log_level::info);
  CHECK(log.format(role_event(), kv::log_level::info, at) ==
        "2025-12-01T15:02:11.120Z info node=2 term=3 role_changed from=candidate to=leader why=election_won\n");
}

TEST_CASE("an event is one JSON object per line, errors with their name and message, durations in seconds") {
  kv::event_logger log(stderr, kv::log_format::json, kv::log_level::info);
  CHECK(log.format(role_event(), kv::log_level::info, at) ==
        "{\"ts\":\"2025-12-01T15:02:11.120Z\",\"level\":\"info\",\"node\":2,\"term\":3,\"event\":\"role_changed\","
        "\"from\":\"candidate\",\"to\":\"leader\",\"why\":\"election_won\"}\n");
  const raftkit::event stop{1, 4, ev::node_stopped{raftkit::errc::io_error}};
  CHECK(log.format(stop, kv::log_level::error, at).find("\"why\":\"io_error\",\"why_message\":\"I/O error\"}") !=
        std::string::npos);
  const raftkit::event stall{1, 4, ev::durability_stalled{3, 9, std::chrono::milliseconds(250)}};
  CHECK(log.format(stall, kv::log_level::warn, at).find("\"durable\":3,\"last\":9,\"waited_seconds\":0.25}") !=
        std::string::npos);
  std::string line = log.format(stop, kv::log_level::error, at);
  line.pop_back();  // the newline
  const auto parsed = raftkit::sim::parse_flat_json_object(line);
  CHECK_MESSAGE(parsed.error.empty(), parsed.error);
  CHECK(parsed.fields.size() == 7);
  const raftkit::event started{1, 4, ev::election_started{false, 5, raftkit::event_reason::transfer}};
  CHECK(log.format(started, kv::log_level::info, at).find("\"term\":4,\"event\":\"election_started\",\"pre_vote\":false,\"election_term\":5") !=
        std::string::npos);
}

TEST_CASE("events are logged at the level an operator needs") {
  CHECK(kv::level_of({1, 1, ev::storage_error{raftkit::errc::no_space}}) == kv::log_level::error);
  CHECK(kv::level_of({1, 1, ev::node_stopped{raftkit::errc::apply_failed}}) == kv::log_level::error);
  CHECK(kv::level_of({1, 1, ev::node_stopped{raftkit::errc::shutting_down}}) == kv::log_level::info);
  CHECK(kv::level_of({1, 1, ev::role_changed{raftkit::role::leader, raftkit::role::follower, raftkit::event_reason::lost_quorum}}) ==
        kv::log_level::warn);
  CHECK(kv::level_of(role_event()) == kv::log_level::info);
  CHECK(kv::level_of({1, 1, ev::proposal_refused{raftkit::errc::busy}}) == kv::log_level::debug);
  CHECK(kv::parse_log_level("warn") == kv::log_level::warn);
  CHECK_FALSE(kv::parse_log_level("loud"));
}

TEST_CASE("metrics: HELP and TYPE once per family, labels escaped, counters exact") {
  kv::metrics_writer w;
  w.counter("x_total", "things", std::uint64_t{18446744073709551615u});
  w.gauge("lag_entries", "lag", 3, {{"peer", "2"}});
  w.gauge("lag_entries", "lag", 0, {{"peer", "a\"b\\c"}});
  CHECK(w.text() ==
        "# HELP x_total things\n# TYPE x_total counter\nx_total 18446744073709551615\n"
        "# HELP lag_entries lag\n# TYPE lag_entries gauge\nlag_entries{peer=\"2\"} 3\nlag_entries{peer=\"a\\\"b\\\\c\"} 0\n");
}

TEST_CASE("metrics: a histogram has cumulative buckets up to +Inf, a sum and a count") {
  kv::latency_histogram h;
  h.observe(0.0004);                        // first bucket
  h.observe(std::chrono::milliseconds(3));  // le=0.005
  h.observe(60.0);                          // above every bound
  kv::metrics_writer w;
  w.histogram("op_seconds", "latency", h);
  const std::string t = w.text();
  CHECK(t.starts_with("# HELP op_seconds latency\n# TYPE op_seconds histogram\nop_seconds_bucket{le=\"0.0005\"} 1\n"));
  CHECK(t.find("op_seconds_bucket{le=\"0.0025\"} 1\nop_seconds_bucket{le=\"0.005\"} 2\n") != std::string::npos);
  CHECK(t.find("op_seconds_bucket{le=\"10\"} 2\nop_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(t.find("op_seconds_count 3\n") != std::string::npos);
  CHECK(t.find("op_seconds_sum 60.0034") != std::string::npos);
}
