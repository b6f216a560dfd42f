// The simulator with membership changes (issue 13): spares that join, an operator that
// changes the configuration under faults, and the checks that read configurations from
// the logs (commitment by the configuration in force, one change at a time), each shown
// to fire.

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "raftkit/membership.hpp"
#include "raftkit/sim/invariants.hpp"
#include "raftkit/sim/runner.hpp"

using namespace std::chrono_literals;
using raftkit::member_change;
using raftkit::node_id;
namespace sim = raftkit::sim;

namespace {

using kv_cluster = sim::cluster<sim::kv_store>;

sim::cluster_options with_spares(std::size_t nodes, std::size_t spares) {
  sim::cluster_options o;
  o.nodes = nodes;
  o.spares = spares;
  return o;
}

/// Asks leader `l` for `changes` and runs until it answers (or 5 virtual seconds passed).
std::optional<std::error_code> change(kv_cluster& c, sim::invariant_checker<sim::kv_store>& check, node_id l,
                                      std::vector<member_change> changes) {
  std::optional<std::error_code> answer;
  c.node(l).change_membership(std::move(changes), [&](std::error_code ec, raftkit::index_t) { answer = ec; });
  c.run_until([&] {
    REQUIRE_FALSE(check.check());
    return answer.has_value();
  }, 5s);
  return answer;
}

sim::run_options membership_mix(std::uint64_t seed) {
  sim::run_options o;
  o.seed = seed;
  o.membership = true;
  o.partitions = o.crashes = true;
  o.loss = 0.02;
  return o;
}

}  // namespace

TEST_SUITE("sim_membership") {

TEST_CASE("a spare starts with no configuration and takes part once a leader adds it as a voter") {
  kv_cluster c(with_spares(3, 1));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  CHECK(c.is_joiner(4));
  CHECK_FALSE(c.node(4).members().contains(4));
  c.run_for(1s);
  CHECK_FALSE(c.node(4).is_leader());  // it never campaigns
  const auto ec = change(c, check, l, {member_change::add_voter(4)});
  REQUIRE(ec);
  CHECK_MESSAGE(!*ec, ec->message());
  CHECK(c.node(l).members().is_voter(4));
  c.run_for(200ms);
  CHECK(c.node(4).members().is_voter(4));
  CHECK(c.store(4).last_index() == c.store(l).last_index());
}

TEST_CASE("a removed node that stays up does no harm, and is caught up again when added back") {
  kv_cluster c(with_spares(3, 0));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id gone = l == 3 ? 2 : 3;
  const auto ec = change(c, check, l, {member_change::remove(gone)});
  REQUIRE(ec);
  CHECK_MESSAGE(!*ec, ec->message());
  c.run_for(2s);  // it hears nothing more: its elections must not unseat the leader
  CHECK_FALSE(check.check());
  CHECK(c.node(l).is_leader());
  const auto again = change(c, check, l, {member_change::add_voter(gone)});
  REQUIRE(again);
  CHECK_MESSAGE(!*again, again->message());
  c.run_for(200ms);
  CHECK(c.store(gone).last_index() == c.store(l).last_index());
}

TEST_CASE("the invariant checker reports an index a leader committed that no majority holds durably") {
  kv_cluster c(with_spares(3, 0));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  REQUIRE_FALSE(check.check());  // the checker has seen l lead
  bool done = false;
  const auto put = sim::encode_kv(sim::op_kind::put, "k", "v");
  c.node(l).propose(put.bytes(), [&](std::error_code, raftkit::index_t, const auto&) { done = true; });
  c.run_until([&] { return done; }, 1s);
  REQUIRE(done);
  // Take the entry back from both followers' disks behind the checker's back, as if
  // they had acknowledged what they never made durable.
  const raftkit::index_t committed = c.node(l).commit_index();
  for (node_id f : c.ids()) {
    if (f == l) continue;
    c.crash(f);
    c.store(f).truncate_after(committed - 1);
  }
  const auto v = check.check();
  REQUIRE(v);
  CHECK_MESSAGE(v->find("not a majority of any configuration") != std::string::npos, *v);
}

TEST_CASE("the invariant checker reports two config entries above the committed index on a leader") {
  kv_cluster c(with_spares(3, 2));
  sim::invariant_checker<sim::kv_store> check(c);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  REQUIRE_FALSE(check.check());
  // Two changes appended at once, as a leader that broke the rule would.
  raftkit::membership m = c.node(l).members();
  auto& store = c.store(l);
  const auto term = c.node(l).term();
  std::vector<raftkit::entry> two;
  for (node_id learner : {node_id{4}, node_id{5}}) {
    m.learners.push_back({learner, {}});
    two.push_back(raftkit::entry{term, store.last_index() + 1 + two.size(), raftkit::entry_type::config,
                        raftkit::shared_bytes::copy_of(std::span<const std::byte>(raftkit::detail::encode_membership(m)))});
  }
  store.append(two);
  const auto v = check.check();
  REQUIRE(v);
  CHECK_MESSAGE(v->find("one membership change at a time") != std::string::npos, *v);
}

TEST_CASE("membership runs change the configuration under partitions and crashes and pass every check") {
  sim::run_stats total;
  std::string failures;
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    const auto r = sim::run(membership_mix(seed));
    total += r.stats;
    if (!r.passed) failures += "seed " + std::to_string(seed) + ": " + r.failure.substr(0, 300) + "\n";
  }
  CHECK_MESSAGE(failures.empty(), failures);
  MESSAGE(total.changes_started << " changes started, " << total.changes_completed << " completed, "
          << total.changes_failed << " failed, " << total.nodes_stopped << " removed nodes stopped");
  CHECK(total.changes_started > 0);
  CHECK(total.changes_completed > 0);
  CHECK(total.changes_failed > 0);  // refused (in progress, invalid) or not caught up
  CHECK(total.nodes_stopped > 0);
  CHECK(total.ops_ok > 100);
}

TEST_CASE("membership runs on five nodes with heavy loss and small snapshots pass every check") {
  sim::run_stats total;
  std::string failures;
  for (std::uint64_t seed = 1000; seed < 1006; ++seed) {
    auto o = membership_mix(seed);
    o.nodes = 5;
    o.loss = 0.3;
    o.snapshot_interval = 4;
    const auto r = sim::run(o);
    total += r.stats;
    if (!r.passed) failures += "seed " + std::to_string(seed) + ": " + r.failure.substr(0, 300) + "\n";
  }
  CHECK_MESSAGE(failures.empty(), failures);
  CHECK(total.changes_completed > 0);
  CHECK(total.snapshots_installed > 0);
}

TEST_CASE("a membership run replays exactly from its seed") {
  auto o = membership_mix(77);
  o.trace = true;
  const auto a = sim::run(o);
  const auto b = sim::run(o);
  CHECK(a.trace == b.trace);
  CHECK(a.stats.changes_started == b.stats.changes_started);
  CHECK(a.trace.find("operator asks leader") != std::string::npos);
}

}  // TEST_SUITE
