// The simulator with snapshots: the invariant checker over compacted logs (it reads no
// compacted entry, fills what was compacted from what it saw committed, and reports a log
// compacted past its snapshots, a log that starts after an index nobody committed, and a
// snapshot that is not the replicas' state), replicas compared across a restore, and the
// default fault mix taking, installing and losing snapshots.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "raftkit/sim/invariants.hpp"
#include "raftkit/sim/main.hpp"
#include "raftkit/sim/runner.hpp"

using namespace std::chrono_literals;
using raftkit::entry;
using raftkit::index_t;
using raftkit::node_id;
namespace sim = raftkit::sim;

namespace {

using kv_cluster = sim::cluster<sim::kv_store>;
using checker = sim::invariant_checker<sim::kv_store>;

/// A cluster that snapshots every `every` applied entries and keeps no entry behind a
/// snapshot (every = 0: only on request), with snapshot writes taking `write` of time.
sim::cluster_options snapshotting(std::uint64_t every, raftkit::duration write = raftkit::duration{0}) {
  sim::cluster_options o;
  o.nodes = 3;
  o.node.snapshot_interval = every;
  o.node.snapshot_trailing_entries = 0;
  o.node.max_snapshot_chunk_bytes = 16;  // a transfer spans many messages
  o.snapshot_write_delay = write;
  return o;
}

/// Runs `c` for `d`, checking the invariants after every step; the first violation.
std::optional<std::string> run_checked(kv_cluster& c, checker& check, raftkit::duration d) {
  const auto end = c.now() + d;
  while (c.now() < end) {
    c.step(1ms);
    if (auto v = check.check()) return v;
  }
  return std::nullopt;
}

/// Puts `n` keys through the leader, one at a time, checking after every step.
std::optional<std::string> put_many(kv_cluster& c, checker& check, int n, std::string_view prefix = "k") {
  for (int i = 0; i < n; ++i) {
    const node_id l = c.elect();
    REQUIRE(l != raftkit::no_node);
    const std::string key = std::string(prefix) + std::to_string(i);
    const auto cmd = sim::encode_kv(sim::op_kind::put, key, "v" + std::to_string(i));
    c.node(l).propose(cmd.bytes(), [](std::error_code, index_t, const sim::kv_result&) {});
    if (auto v = run_checked(c, check, 5ms)) return v;
  }
  return std::nullopt;
}

/// Writes a snapshot of `map` at (i, t) into node `id`'s snapshot store.
void forge_snapshot(kv_cluster& c, node_id id, index_t i, raftkit::term_t t, const sim::kv_store::map_type& map) {
  sim::kv_store fake;
  fake.data = map;
  // With the configuration the node uses, so only what a test forges differs.
  auto sink = c.snapshots(id).create(i, t, raftkit::detail::encode_membership(c.node(id).members()));
  raftkit::snapshot_writer w(sink);
  REQUIRE_FALSE(fake.snapshot().write(w));
  REQUIRE_FALSE(sink.commit());
}

}  // namespace

TEST_SUITE("sim_snapshots") {

TEST_CASE("log matching and leader completeness hold over compacted logs, and the checker reads no compacted entry") {
  kv_cluster c(snapshotting(4));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 30));
  for (node_id id : c.ids()) CHECK(c.store(id).first_index() > 20);  // compacted: reading below would assert
  // A new leader, whose log starts after a compacted prefix, is checked for completeness.
  const node_id old = c.leader();
  c.crash(old);
  REQUIRE_FALSE(run_checked(c, check, 1s));
  const node_id l = c.leader();
  REQUIRE(l != raftkit::no_node);
  REQUIRE(l != old);
  c.restart(old);
  REQUIRE_FALSE(put_many(c, check, 10, "after"));
  CHECK(c.node(l).counters().snapshots_taken > 0);
}

TEST_CASE("a follower cut off while the leader compacts catches up by InstallSnapshot; the checker fills its log from what was committed") {
  kv_cluster c(snapshotting(4));
  checker check(c);
  REQUIRE(c.elect() != raftkit::no_node);
  const node_id f = c.leader() == 3 ? 1 : 3;
  c.isolate(f);
  REQUIRE_FALSE(put_many(c, check, 30));
  const node_id l = c.leader();
  REQUIRE(c.store(l).first_index() > c.store(f).last_index() + 1);  // f needs what l compacted
  c.rejoin(f);
  REQUIRE_FALSE(run_checked(c, check, 500ms));
  CHECK(c.node(f).counters().snapshots_installed >= 1);
  CHECK(c.node(f).applied_index() == c.node(l).applied_index());
  CHECK(c.store(f).first_index() > 1);
  // The entries after its snapshot are checked against the others' (same index and
  // term, same prefix): a forged one there is a log matching violation.
  REQUIRE_FALSE(put_many(c, check, 3, "more"));
  auto& s = c.store(f);
  const index_t last = s.last_index();
  REQUIRE(last >= s.first_index());
  const entry real = s.at(last);
  c.crash(f);
  s.truncate_after(last - 1);
  entry forged{real.term, last, raftkit::entry_type::normal, raftkit::shared_bytes::copy_of(std::string_view("forged"))};
  s.append(std::span<const entry>(&forged, 1));
  s.sync();
  const auto v = check.check();
  REQUIRE(v);
  CHECK(v->find("log matching violated at index " + std::to_string(last)) == 0);
}

TEST_CASE("a log compacted past its node's newest durable snapshot is reported") {
  kv_cluster c(snapshotting(0));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 6));
  c.store(2).compact_before(5);
  const auto v = check.check();
  REQUIRE(v);
  CHECK(*v == "node 2 compacted its log up to index 4, but its newest durable snapshot is none: entries 1 to 4 are in no durable snapshot");
}

TEST_CASE("a snapshot being written does not cover the log yet: compacting before it is durable is reported") {
  kv_cluster c(snapshotting(0, 20ms));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 6));
  bool written = false;
  c.node(2).snapshot_now([&](std::error_code ec, index_t) { written = !ec; });
  REQUIRE_FALSE(run_checked(c, check, 5ms));  // being written
  REQUIRE_FALSE(written);
  c.store(2).compact_before(c.node(2).applied_index());
  const auto v = check.check();
  REQUIRE(v);
  CHECK(v->find("node 2 compacted its log up to index") == 0);
}

TEST_CASE("a log that starts after an index no node committed is reported") {
  kv_cluster c(snapshotting(0));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 3));
  forge_snapshot(c, 2, 500, 1, {});  // covers it as far as the store is concerned
  c.store(2).reset(500, 1);
  const auto v = check.check();
  REQUIRE(v);
  CHECK(v->find("node 2's log starts after index 500 (compacted, or replaced by a snapshot), but no node was seen to commit index") == 0);
}

TEST_CASE("a snapshot whose state differs from the replicas' at its index is reported") {
  kv_cluster c(snapshotting(0));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 5));
  const index_t n = c.node(1).applied_index();
  REQUIRE(c.node(2).applied_index() == n);
  forge_snapshot(c, 2, n, c.store(2).term_at(n), {{"k0", "forged"}});
  const auto v = check.check();
  REQUIRE(v);
  INFO(*v);
  CHECK(v->find("replica states differ at applied index " + std::to_string(n) + ": node 2's snapshot at index " +
                std::to_string(n) + " has digest") == 0);
}

TEST_CASE("a snapshot at an index and term that were not committed together is reported") {
  kv_cluster c(snapshotting(0));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 5));
  const index_t n = c.node(1).applied_index();
  const raftkit::term_t t = c.store(2).term_at(n);
  forge_snapshot(c, 2, n, t + 7, {});
  const auto v = check.check();
  REQUIRE(v);
  CHECK(*v == "node 2's snapshot at index " + std::to_string(n) + " term " + std::to_string(t + 7) +
                  " is not of a committed entry (the committed entry there has term " + std::to_string(t) + ")");
}

TEST_CASE("a node restarted from its snapshot holds the state the others had at the snapshot's index") {
  kv_cluster c(snapshotting(4));
  checker check(c);
  REQUIRE_FALSE(put_many(c, check, 13));  // one at a time: every node is compared at every index
  const node_id f = c.leader() == 2 ? 3 : 2;
  c.crash(f);
  c.restart(f);
  REQUIRE(c.applied_at_start(f) > 0);  // it started from a snapshot
  CHECK(c.store(f).first_index() > 1);
  // Its digest at the snapshot's index is compared with the others' at that index.
  REQUIRE_FALSE(check.check());
  REQUIRE_FALSE(put_many(c, check, 5, "after"));
}

TEST_CASE("the default fault mix takes, installs and loses snapshots, isolates followers for long, and passes") {
  sim::run_stats total;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    sim::run_options o;
    o.seed = seed;
    o.all_faults();
    const auto r = sim::run(o);
    CHECK_MESSAGE(r.verdict != sim::run_verdict::failed, "seed " << seed << ": " << r.failure);
    total += r.stats;
  }
  CHECK(total.snapshots_taken > 100);
  CHECK(total.snapshots_installed > 10);
  CHECK(total.snapshot_writes_lost > 0);  // crashes hit snapshots being written
  CHECK(total.max_compacted > 50);
  CHECK(total.faults_by_kind[static_cast<std::size_t>(sim::fault_kind::long_isolation)] > 0);
  CHECK(total.snapshot_failures == 0);
}

TEST_CASE("with snapshots off the logs are kept whole") {
  sim::run_options o;
  o.all_faults();
  o.snapshots = false;
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    o.seed = seed;
    const auto r = sim::run(o);
    CHECK_MESSAGE(r.verdict != sim::run_verdict::failed, "seed " << seed << ": " << r.failure);
    CHECK(r.stats.snapshots_taken == 0);
    CHECK(r.stats.max_compacted == 0);
    CHECK(r.stats.faults_by_kind[static_cast<std::size_t>(sim::fault_kind::long_isolation)] == 0);
  }
}

// Found by a sweep (seeds 882 and 1560 of --snapshot-interval 4 --snapshot-chunk 16
// --snapshot-trailing 0): a follower with a slow disk had received entries and a commit
// index past the leader's newest snapshot without making them durable; the leader, its
// window stalled, sent that snapshot, and the follower acknowledged it as covered by its
// commit index. The leader's match index then counted entries the follower could lose in
// a crash (and did: "leader 3 of term 4 has match index 52 for node 2, but their logs do
// not agree up to it").
TEST_CASE("a follower acknowledges a snapshot its commit index covers only once it holds it durably") {
  kv_cluster c(snapshotting(4));
  checker check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id f = l == 3 ? 1 : 3;
  // f's disk is slow and the leader does not hear from it: f receives entries and the
  // commit index, the leader commits with the third node, compacts, and, f's window
  // stalled, turns to sending it the snapshot.
  c.store(f).set_write_delay(400ms);
  c.snapshots(f).inject_error(raftkit::errc::no_space);  // nor does it hold one of its own
  c.cut_one_way(f, l);
  for (int i = 0; i < 20; ++i) {
    const auto cmd = sim::encode_kv(sim::op_kind::put, "k" + std::to_string(i), "v");
    c.node(l).propose(cmd.bytes(), [](std::error_code, index_t, const sim::kv_result&) {});
    REQUIRE_FALSE(run_checked(c, check, 2ms));
  }
  REQUIRE_FALSE(run_checked(c, check, 100ms));
  REQUIRE(c.node(f).commit_index() > c.store(f).durable_index());
  REQUIRE(c.store(l).first_index() > c.node(l).match_index(f) + 1);  // f needs the snapshot
  c.heal();
  // The snapshot is covered by f's commit index but not durable there (in its log or a
  // snapshot of its own): the leader must not count it as held by f before it is.
  for (int k = 0; k < 500; ++k) {
    c.step(1ms);
    REQUIRE_FALSE(check.check());
    const auto snap = c.snapshots(f).latest();
    REQUIRE(c.node(l).match_index(f) <= std::max(c.store(f).durable_index(), snap ? snap->index : 0));
  }
  CHECK(c.node(l).counters().snapshots_sent >= 1);  // once durable, it was acknowledged
  CHECK(c.node(l).match_index(f) == c.node(l).commit_index());
}

TEST_CASE("seeds 882 and 1560 with small snapshots pass (a snapshot acknowledged before it was durable)") {
  for (std::uint64_t seed : {882u, 1560u}) {
    sim::run_options o;
    o.all_faults();
    o.seed = seed;
    o.snapshot_interval = 4;
    o.snapshot_chunk_bytes = 16;
    o.snapshot_trailing = 0;
    const auto r = sim::run(o);
    CHECK_MESSAGE(r.verdict != sim::run_verdict::failed, "seed " << seed << ": " << r.failure);
  }
}

TEST_CASE("the replay command of a failing seed carries the snapshot settings it ran with") {
  sim::main_settings s;
  s.run.snapshot_interval = 5;
  s.run.snapshot_trailing = 0;
  s.run.snapshot_chunk_bytes = 8;
  s.snapshot_write_delay = "10ms";
  s.isolation = "3s";
  const std::string cmd = sim::detail::replay_command("sim", s, 9);
  CHECK(cmd.find(" --snapshot-interval 5 --snapshot-trailing 0 --snapshot-chunk 8 --snapshot-write-delay 10ms --isolation 3s") !=
        std::string::npos);
  s.run.snapshots = false;
  CHECK(sim::detail::replay_command("sim", s, 9).find(" --no-snapshots") != std::string::npos);
  CHECK(sim::detail::replay_command("sim", sim::main_settings{}, 9).find("snapshot") == std::string::npos);
}

}  // TEST_SUITE
