// observability.hpp: the event log's lines and the Prometheus text the metrics writer makes.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

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
  const raftkit::event handed{1, 4, ev::transfer_ended{2, {}}};
  CHECK(log.format(handed, kv::log_level::info, at).ends_with(",\"event\":\"transfer_ended\",\"to\":2,\"error\":\"ok\"}\n"));
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
  CHECK(kv::level_of({1, 1, ev::transfer_ended{2, {}}}) == kv::log_level::info);
  CHECK(kv::level_of({1, 1, ev::transfer_ended{2, raftkit::errc::timeout}}) == kv::log_level::warn);
  CHECK(kv::level_of({1, 1, ev::snapshot_send_failed{9, 2}}) == kv::log_level::warn);
  CHECK(kv::level_of({1, 1, ev::snapshot_sent{9, 1, 10, 2}}) == kv::log_level::info);
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

TEST_CASE("metrics: a histogram from bounds and counts, and runs of equal observations") {
  kv::histogram h(kv::power_of_two_bounds(5));  // 1, 2, 4, 8
  CHECK(std::vector<double>(h.bounds().begin(), h.bounds().end()) == std::vector<double>{1, 2, 4, 8});
  h.observe(3, 10);  // ten of 3: le=4
  h.observe(1);
  h.observe(9);
  kv::metrics_writer w;
  w.histogram("batch_entries", "sizes", h);
  const std::string t = w.text();
  CHECK(t.find("batch_entries_bucket{le=\"1\"} 1\nbatch_entries_bucket{le=\"2\"} 1\nbatch_entries_bucket{le=\"4\"} 11\n"
               "batch_entries_bucket{le=\"8\"} 11\nbatch_entries_bucket{le=\"+Inf\"} 12\nbatch_entries_sum 40\n"
               "batch_entries_count 12\n") != std::string::npos);
}

namespace {
using tclock = kv::replication_tracker::clock;
const tclock::time_point t0{};
kv::step_view leader_at(raftkit::index_t last, raftkit::index_t commit, raftkit::index_t min_match,
                        std::uint64_t applied = 0, raftkit::term_t term = 2) {
  return {true, term, last, commit, applied, min_match};
}
}  // namespace

TEST_CASE("replication tracker: commit latency per entry appended in the leader's term, from append to commit") {
  kv::replication_tracker r(1024);
  r.step(leader_at(4, 3, 3), t0);                                       // became leader: 1..4 inherited
  r.step(leader_at(7, 3, 3), t0 + std::chrono::milliseconds(10));       // appends 5..7
  r.step(leader_at(9, 4, 4), t0 + std::chrono::milliseconds(20));       // appends 8..9; commits 4 (inherited)
  CHECK(r.commit_seconds.counts() == std::vector<std::uint64_t>(15, 0));
  r.step(leader_at(9, 8, 8), t0 + std::chrono::milliseconds(30));       // commits 5..7 (20 ms) and 8 (10 ms)
  auto c = r.commit_seconds.counts();
  CHECK(c[4] == 1);  // le=0.01: entry 8
  CHECK(c[5] == 3);  // le=0.025: entries 5..7
  CHECK(r.commit_seconds.sum() == doctest::Approx(0.07));
}

TEST_CASE("replication tracker: a follower's lag is the age of the oldest entry it does not hold") {
  kv::replication_tracker r(1024);
  r.step(leader_at(2, 2, 0), t0);                            // became leader: 1..2 inherited
  r.step(leader_at(5, 2, 0), t0 + std::chrono::seconds(1));  // 3..5
  r.step(leader_at(6, 5, 0), t0 + std::chrono::seconds(2));  // 6; the slowest follower still at 0
  const auto now = t0 + std::chrono::seconds(10);
  CHECK(r.lag_seconds(6, now) == 0);                          // holds everything
  CHECK(r.lag_seconds(5, now) == doctest::Approx(8.0));       // misses 6, appended at 2 s
  CHECK(r.lag_seconds(2, now) == doctest::Approx(9.0));       // misses 3.., appended at 1 s
  CHECK(r.lag_seconds(0, now) == doctest::Approx(10.0));      // misses what the leader inherited: from its start
  r.step({false, 3, 6, 5, 0, 0}, now);                        // no longer leader
  CHECK(r.lag_seconds(0, now) == 0);
}

TEST_CASE("replication tracker: entries applied per step, steps that applied nothing not counted") {
  kv::replication_tracker r(1024);
  r.step({false, 1, 10, 10, 3, 0}, t0);
  r.step({false, 1, 10, 10, 3, 0}, t0);
  r.step({false, 1, 20, 20, 13, 0}, t0);
  const auto c = r.apply_batch_entries.counts();
  CHECK(c[2] == 1);  // le=4: 3
  CHECK(c[4] == 1);  // le=16: 10
  CHECK(r.apply_batch_entries.sum() == 13);
  CHECK(r.apply_batch_entries.bounds().back() == 1024);
}

TEST_CASE("replication tracker: a slow follower keeps at most max_runs runs, and its lag is never under-reported") {
  kv::replication_tracker r(1024);
  r.step(leader_at(0, 0, 0), t0);
  for (raftkit::index_t i = 1; i <= 3 * kv::replication_tracker::max_runs; ++i)
    r.step(leader_at(i, i, 0), t0 + std::chrono::milliseconds(i));  // one entry per step, committed, follower at 0
  const auto now = t0 + std::chrono::hours(1);
  CHECK(r.lag_seconds(0, now) == doctest::Approx(3600 - 0.001));
  CHECK(r.lag_seconds(3 * kv::replication_tracker::max_runs - 1, now) ==
        doctest::Approx(3600 - 0.001 * 3 * kv::replication_tracker::max_runs));
}
