// The simulator: its fault controls, its invariant checks (shown to fire), determinism
// by seed, the regression seeds, and a sweep of seeds with mixed faults.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "raftkit/sim/invariants.hpp"
#include "raftkit/sim/runner.hpp"

using namespace std::chrono_literals;
using raftkit::entry;
using raftkit::node_id;
namespace sim = raftkit::sim;

namespace {

sim::run_options mixed(std::uint64_t seed, std::size_t nodes = 3) {
  sim::run_options o;
  o.seed = seed;
  o.nodes = nodes;
  o.all_faults();
  return o;
}

/// Runs seeds [first, first + count) and returns the failures, one line each.
std::string sweep(sim::run_options o, std::uint64_t first, std::uint64_t count, std::uint64_t& ok_ops) {
  std::string failures;
  for (std::uint64_t s = first; s < first + count; ++s) {
    o.seed = s;
    const auto r = sim::run(o);
    ok_ops += r.stats.ops_ok;
    if (!r.passed) failures += "seed " + std::to_string(s) + ": " + r.failure.substr(0, 200) + "\n";
  }
  return failures;
}

std::uint64_t seeds_from_env(std::uint64_t dflt) {
  if (const char* s = std::getenv("RAFTKIT_SIM_SEEDS")) return std::strtoull(s, nullptr, 10);
  return dflt;
}

using kv_cluster = sim::cluster<sim::kv_store>;

sim::cluster_options small(std::size_t n) {
  sim::cluster_options o;
  o.nodes = n;
  return o;
}

}  // namespace

TEST_SUITE("sim") {

TEST_CASE("the invariant checker reports a log matching violation") {
  kv_cluster c(small(3));
  sim::invariant_checker<sim::kv_store> check(c);
  REQUIRE(c.elect() != raftkit::no_node);
  c.run_for(50ms);
  CHECK_FALSE(check.check());
  // Forge node 3's log: same index and term as the real entry, another payload.
  auto& s = c.store(3);
  const entry real = s.at(1);
  c.crash(3);
  s.truncate_after(0);
  entry forged{real.term, 1, raftkit::entry_type::normal, raftkit::shared_bytes::copy_of(std::string_view("forged"))};
  s.append(std::span<const entry>(&forged, 1));
  s.sync();
  const auto v = check.check();
  REQUIRE(v);
  CHECK(v->find("log matching") != std::string::npos);
}

TEST_CASE("the invariant checker reports an acknowledged proposal that is not what committed") {
  kv_cluster c(small(3));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  CHECK_FALSE(check.check());
  const auto other = sim::encode_kv(sim::op_kind::put, "k", "never proposed");
  const auto v = check.acknowledged(1, other.bytes());  // index 1 holds the leader's no-op
  REQUIRE(v);
  CHECK(v->find("lost") != std::string::npos);
}

TEST_CASE("a paused leader is replaced, and steps down when it resumes") {
  kv_cluster c(small(3));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.pause(l);
  REQUIRE(c.run_until([&] { return c.leader() != raftkit::no_node && c.leader() != l; }, 5s));
  c.resume(l);
  c.run_for(200ms);
  CHECK_FALSE(c.node(l).is_leader());
  CHECK_FALSE(check.check());
}

TEST_CASE("clock drift and a slow disk slow a cluster down but keep it safe and live") {
  kv_cluster c(small(3));
  sim::invariant_checker<sim::kv_store> check(c);
  c.set_clock_rate(1, 2.0);
  c.set_clock_rate(2, 0.5);
  c.store(3).set_write_delay(20ms);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  bool done = false;
  const auto cmd = sim::encode_kv(sim::op_kind::put, "k", "v");
  c.node(l).propose(cmd.bytes(), [&](std::error_code ec, const sim::kv_result&) { done = !ec; });
  REQUIRE(c.run_until([&] { return done; }, 5s));
  for (int i = 0; i < 200; ++i) {
    c.step(1ms);
    REQUIRE_FALSE(check.check());
  }
}

TEST_CASE("a one-way cut: the cut-off node's elections do not unseat a leader that still reaches a majority") {
  kv_cluster c(small(3));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id f = l == 1 ? 2 : 1;
  c.cut_one_way(l, f);  // f hears nothing from the leader; the leader hears f
  c.run_for(2s);
  CHECK_FALSE(check.check());
  c.heal();
  CHECK(c.elect() != raftkit::no_node);
  CHECK_FALSE(check.check());
}

TEST_CASE("the same seed gives a byte-identical trace and history; another seed does not") {
  auto o = mixed(42);
  o.trace = true;
  const auto a = sim::run(o);
  const auto b = sim::run(o);
  REQUIRE(a.passed);
  CHECK(a.trace.size() > 1000);
  CHECK(a.trace == b.trace);
  std::ostringstream ha, hb;
  sim::write_history_jsonl(ha, sim::kv_model{}, std::span(a.hist.operations()));
  sim::write_history_jsonl(hb, sim::kv_model{}, std::span(b.hist.operations()));
  CHECK(ha.str() == hb.str());
  o.seed = 43;
  CHECK(sim::run(o).trace != a.trace);
}

TEST_CASE("regression seeds: duplicated forwarded proposals (found by the simulator)") {
  // Seed 915 (3 nodes) and 664 (5 nodes) failed linearizability before the fix: a
  // duplicated forward was appended twice, or answered "not leader" after the first
  // copy had been appended. They found it under the fault model of that day; the
  // engine test of the same name pins the bug itself.
  sim::run_options a;
  a.seed = 915;
  a.time = 30s;
  a.loss = 0.1;
  a.dup = 0.01;
  a.partitions = a.crashes = true;
  const auto ra = sim::run(a);
  CHECK_MESSAGE(ra.passed, ra.failure);
  sim::run_options b;
  b.seed = 664;
  b.nodes = 5;
  b.loss = 0.3;
  b.dup = 0.1;
  b.delay = 50ms;
  b.reorder = b.partitions = b.crashes = b.pauses = true;
  const auto rb = sim::run(b);
  CHECK_MESSAGE(rb.passed, rb.failure);
}

TEST_CASE("regression seed: a forward rejected by a restarted leader is an unknown outcome (found by the simulator)") {
  // Seed 959 failed linearizability: a duplicate of a forwarded proposal reached the
  // leader's next incarnation, which answered "not leader" although its earlier self
  // had appended the command; the follower reported it as not applied.
  sim::run_options o;
  o.seed = 959;
  o.time = 30s;
  o.loss = 0.1;
  o.dup = 0.01;
  o.delay = 100ms;
  o.crashes = o.reorder = true;
  const auto r = sim::run(o);
  CHECK_MESSAGE(r.passed, r.failure);
}

/// The fault mix and clients of issue 17's sweep.
sim::run_options issue17(std::uint64_t seed) {
  sim::run_options o;
  o.seed = seed;
  o.nodes = 3;
  o.slow_disk = o.partitions = o.reorder = true;
  o.delay = 50ms;
  o.clients = 8;
  o.keys = 1;
  return o;
}

TEST_CASE("regression seed 1007759: the linearizability check decides it, whether keys move or one key takes the whole run (issue 17)") {
  // With all 8 clients on one key for the whole run, 103 of its 324 operations ended
  // with unknown outcome and the search gave up: the seed was reported as failed. The
  // checker test decides the history of that day from tests/histories; this runs the
  // seed as the engine is now.
  auto o = issue17(1'007'759);
  const auto moving = sim::run(o);
  CHECK_MESSAGE(moving.verdict == sim::run_verdict::passed, moving.failure);
  CHECK(moving.stats.keys > 1);
  o.ops_per_key = 0;
  const auto one_key = sim::run(o);
  CHECK_MESSAGE(one_key.verdict == sim::run_verdict::passed, one_key.failure);
  CHECK(one_key.stats.keys == 1);
}

TEST_CASE("a run whose linearizability search runs out of steps is inconclusive, not failed") {
  auto o = issue17(1'007'759);
  o.check.method = sim::check_method::search;
  o.check.max_steps_per_key = 10;  // places at most 10 operations of a key
  const auto r = sim::run(o);
  CHECK(r.verdict == sim::run_verdict::inconclusive);
  CHECK_FALSE(r.passed);
  CHECK(r.failure.find("inconclusive") != std::string::npos);
  CHECK(r.failure.find("not linearizable") == std::string::npos);
  CHECK(sim::to_string(r.verdict) == "inconclusive");
}

TEST_CASE("clients move to a fresh key after ops_per_key operations; keys = 1 is one key at a time") {
  auto o = issue17(1'007'759);
  o.ops_per_key = 40;
  const auto r = sim::run(o);
  REQUIRE(r.passed);
  // Key ids in order of invocation: one key at a time means they never go back.
  std::vector<std::pair<std::int64_t, std::uint64_t>> calls;
  std::map<std::string, std::size_t> per_key;
  for (const auto& op : r.hist.operations()) {
    calls.emplace_back(op.call, std::stoull(op.input.key.substr(1)));
    ++per_key[op.input.key];
  }
  std::sort(calls.begin(), calls.end());
  for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i - 1].second <= calls[i].second);
  CHECK(per_key.size() == r.stats.keys);
  CHECK(per_key.size() >= r.hist.size() / (o.ops_per_key + o.clients));
  // A key takes ops_per_key operations, and the few still in flight when clients move on.
  for (const auto& [key, n] : per_key) CHECK_MESSAGE(n <= o.ops_per_key + o.clients, key);
  // With several keys at a time, as many are in use at once.
  o.keys = 3;
  const auto three = sim::run(o);
  REQUIRE(three.passed);
  std::set<std::string> first_keys;
  for (const auto& op : three.hist.operations())
    if (std::stoull(op.input.key.substr(1)) < 3) first_keys.insert(op.input.key);
  CHECK(first_keys.size() == 3);
}

TEST_CASE("with ops_per_key = 0 the clients keep the same keys for the whole run") {
  auto o = issue17(1'007'759);
  o.keys = 2;
  o.ops_per_key = 0;
  const auto r = sim::run(o);
  REQUIRE(r.passed);
  std::set<std::string> keys;
  for (const auto& op : r.hist.operations()) keys.insert(op.input.key);
  CHECK(keys == std::set<std::string>{"k0", "k1"});
  CHECK(r.hist.size() > 200);
}

TEST_CASE("seeds with file::log_store: real files, crashes close and recover them") {
  const std::uint64_t seeds = 6;
  std::uint64_t ok_ops = 0;
  for (std::uint64_t s = 1; s <= seeds; ++s) {
    char tmpl[] = "/tmp/raftkit-sim-file-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    auto o = mixed(500'000 + s);
    o.time = 3s;
    o.file_log_root = tmpl;
    const auto r = sim::run(o);
    std::filesystem::remove_all(tmpl);
    CHECK_MESSAGE(r.passed, "seed " << o.seed << ": " << r.failure);
    ok_ops += r.stats.ops_ok;
  }
  MESSAGE(seeds << " seeds on files, " << ok_ops << " acknowledged operations");
  CHECK(ok_ops > seeds * 10);
}

TEST_CASE("a sweep of seeds with mixed faults: 3, 5 and 7 nodes, loss up to 30%, crashes, partitions") {
  const std::uint64_t n = seeds_from_env(550);
  std::uint64_t ok_ops = 0;
  std::string failures;
  failures += sweep(mixed(0, 3), 1, n * 4 / 11, ok_ops);
  auto lossy = mixed(0, 5);
  lossy.loss = 0.3;
  failures += sweep(lossy, 100'001, n * 3 / 11, ok_ops);
  failures += sweep(mixed(0, 7), 200'001, n * 2 / 11, ok_ops);
  sim::run_options crashy;
  crashy.nodes = 3;
  crashy.crashes = crashy.reorder = true;
  crashy.loss = 0.1;
  crashy.delay = 100ms;
  failures += sweep(crashy, 300'001, n - n * 4 / 11 - n * 3 / 11 - n * 2 / 11, ok_ops);
  MESSAGE(n << " seeds, " << ok_ops << " acknowledged client operations");
  CHECK_MESSAGE(failures.empty(), failures);
  CHECK(ok_ops > n * 10);  // the clients really got work done
}

}  // TEST_SUITE
