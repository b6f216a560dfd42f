// Membership change (issue 13, thesis chapter 4): configurations in the log, joint
// consensus (Raft paper §6), learners and their catch-up (thesis §4.2.1), removing servers
// and the leader (§4.2.2, §4.2.3). Each safety rule has a test that fails without it; the
// broken_rule named beside it (raftkit/detail/test_breaks.hpp) turns the rule off in the simulator variants.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine_harness.hpp"

using namespace engine_test;
using raftkit::member_change;
using raftkit::membership;

namespace {

/// A change's completion: done, its error and the index of C_new.
using change_outcome = outcome;

void change(cluster& c, node_id on, std::vector<member_change> ch, change_outcome* out) {
  c.node(on).change_membership(std::move(ch), [out](std::error_code ec, index_t at) {
    REQUIRE_FALSE(out->done);  // every change completes exactly once
    *out = change_outcome{true, ec, at};
  });
}

/// The initial voters 1, 2, 3 other than `l`.
std::vector<node_id> old_voters_but(node_id l) {
  std::vector<node_id> out;
  for (node_id id : {1, 2, 3})
    if (id != l) out.push_back(id);
  return out;
}

raftkit::sim::cluster_options with_spares(std::size_t n, std::size_t spares, std::uint64_t seed = 1) {
  auto o = options(n, seed);
  o.spares = spares;
  return o;
}

std::vector<node_id> sorted(std::vector<node_id> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<node_id> voters(cluster& c, node_id id) { return sorted(c.node(id).members().voter_ids()); }

/// The configuration entries of `id`'s log, decoded, in order.
std::vector<membership> config_entries(cluster& c, node_id id) {
  std::vector<membership> out;
  auto& s = c.store(id);
  for (index_t i = s.first_index(); i <= s.last_index(); ++i) {
    const entry e = s.at(i);
    if (e.type != raftkit::entry_type::config) continue;
    auto m = raftkit::detail::decode_membership(e.payload.bytes());
    REQUIRE(m.has_value());
    m->index = i;
    out.push_back(*m);
  }
  return out;
}

/// Writes `n` commands through the leader, waiting for each; returns their payloads.
std::vector<std::string> write_n(cluster& c, const std::string& prefix, int n) {
  std::vector<std::string> written;
  for (int i = 0; i < n; ++i) {
    const node_id l = c.elect();
    REQUIRE(l != raftkit::no_node);
    outcome o;
    const std::string cmd = prefix + std::to_string(i);
    propose(c, l, cmd, &o);
    REQUIRE(c.run_until([&] { return o.done; }, 5s));
    if (!o.ec) written.push_back(cmd);
  }
  return written;
}

bool applied_all(cluster& c, node_id id, const std::vector<std::string>& cmds) {
  std::vector<std::string> seen;
  for (const auto& [i, cmd] : c.node(id).state_machine().applied) seen.push_back(cmd);
  for (const auto& x : cmds)
    if (std::find(seen.begin(), seen.end(), x) == seen.end()) return false;
  return true;
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("membership: a joining server has no configuration, never campaigns, and waits to be added") {
  cluster c(with_spares(3, 1));
  c.elect();
  c.run_for(3s);
  CHECK(c.node(4).members().voters.empty());
  CHECK(c.node(4).term() == 0);
  CHECK(c.node(4).counters().pre_votes == 0);
  CHECK(c.node(4).counters().elections == 0);
}

TEST_CASE("membership: grow 3 to 5 while writing, through learners, catch-up and C_old,new") {
  cluster c(with_spares(3, 2));
  leader_log leaders;
  auto before = write_n(c, "a", 20);
  const node_id l = c.elect();
  change_outcome ch;
  change(c, l, {member_change::add_voter(4, "four"), member_change::add_voter(5, "five")}, &ch);
  // Writes continue while the change runs.
  std::vector<outcome> during(30);
  std::vector<std::string> during_cmds;
  for (int i = 0; i < 30; ++i) {
    during_cmds.push_back("b" + std::to_string(i));
    propose(c, l, during_cmds.back(), &during[i]);
    c.step();
    leaders.observe(c);
  }
  REQUIRE(c.run_until([&] { leaders.observe(c); return ch.done; }, 10s));
  REQUIRE_FALSE(ch.ec);
  CHECK(leaders.at_most_one_per_term());
  for (node_id id : c.ids()) CHECK(voters(c, id) == std::vector<node_id>{1, 2, 3, 4, 5});
  CHECK(c.node(l).members().find(4)->context == "four");
  // The log went through learners, then C_old,new, then C_new.
  const auto confs = config_entries(c, l);
  REQUIRE(confs.size() == 3);
  CHECK(sorted(confs[0].voter_ids()) == std::vector<node_id>{1, 2, 3});
  CHECK(confs[0].is_learner(4));
  CHECK(confs[0].is_learner(5));
  CHECK(confs[1].joint());
  CHECK(sorted(confs[1].outgoing_ids()) == std::vector<node_id>{1, 2, 3});
  CHECK(sorted(confs[1].voter_ids()) == std::vector<node_id>{1, 2, 3, 4, 5});
  CHECK_FALSE(confs[2].joint());
  CHECK(ch.index == confs[2].index);
  auto after = write_n(c, "c", 10);
  for (auto& o : during) CHECK(o.done);
  for (const auto& o : during)
    if (!o.ec) CHECK(o.index > 0);
  std::vector<std::string> all = before;
  for (std::size_t i = 0; i < during.size(); ++i)
    if (!during[i].ec) all.push_back(during_cmds[i]);
  all.insert(all.end(), after.begin(), after.end());
  REQUIRE(c.run_until([&] {
    for (node_id id : c.ids())
      if (!applied_all(c, id, all)) return false;
    return true;
  }, 5s));
  // Now 5 voters: the cluster survives two crashes.
  c.crash(1);
  c.crash(2);
  auto more = write_n(c, "d", 3);
  CHECK(more.size() == 3);
}

TEST_CASE("membership: shrink 5 to 3, removing the leader, which manages the change, then hands over and steps down") {
  cluster c(options(5));
  leader_log leaders;
  const node_id l = c.elect();
  const node_id other = l == 1 ? 2 : 1;
  change_outcome ch;
  change(c, l, {member_change::remove(l), member_change::remove(other)}, &ch);
  REQUIRE(c.run_until([&] { leaders.observe(c); return ch.done; }, 5s));
  REQUIRE_FALSE(ch.ec);
  const term_t removed_at = c.node(l).term();
  const auto campaigns = c.node(l).counters().pre_votes + c.node(l).counters().elections;
  REQUIRE(c.run_until([&] { leaders.observe(c); const node_id n = c.leader(); return n != raftkit::no_node && n != l; }, 5s));
  const node_id n = c.leader();
  CHECK(n != other);
  CHECK(c.node(n).term() == removed_at + 1);  // TimeoutNow: one election, at once
  CHECK_FALSE(c.node(l).is_leader());
  std::vector<node_id> expect;
  for (node_id id = 1; id <= 5; ++id)
    if (id != l && id != other) expect.push_back(id);
  CHECK(voters(c, n) == expect);
  auto w = write_n(c, "x", 5);
  CHECK(w.size() == 5);
  // The removed servers keep running and never lead again.
  c.run_for(5s);
  leaders.observe(c);
  CHECK(leaders.at_most_one_per_term());
  for (const auto& [t, ls] : leaders.by_term)
    if (t > removed_at) CHECK_FALSE(ls.count(l));
  CHECK_FALSE(c.node(other).is_leader());
  CHECK(c.node(l).members().voters.size() == 3);
  CHECK(c.node(l).counters().pre_votes + c.node(l).counters().elections == campaigns);  // it never campaigned again
}

TEST_CASE("membership: replace a dead follower with a new server, as a learner, then promoted, then the dead one removed") {
  cluster c(with_spares(3, 1));
  auto first = write_n(c, "a", 10);
  const node_id l = c.elect();
  const node_id dead = l == 3 ? 2 : 3;
  c.crash(dead);
  auto second = write_n(c, "b", 10);
  change_outcome add, promote, remove;
  change(c, c.leader(), {member_change::add_learner(4, "new")}, &add);
  REQUIRE(c.run_until([&] { return add.done; }, 5s));
  REQUIRE_FALSE(add.ec);
  CHECK(c.node(c.leader()).members().is_learner(4));
  change(c, c.leader(), {member_change::promote(4)}, &promote);
  REQUIRE(c.run_until([&] { return promote.done; }, 5s));
  REQUIRE_FALSE(promote.ec);
  change(c, c.leader(), {member_change::remove(dead)}, &remove);
  REQUIRE(c.run_until([&] { return remove.done; }, 5s));
  REQUIRE_FALSE(remove.ec);
  std::vector<node_id> expect;
  for (node_id id : {1, 2, 3, 4})
    if (id != dead) expect.push_back(id);
  CHECK(voters(c, c.leader()) == expect);
  auto third = write_n(c, "c", 5);
  std::vector<std::string> all = first;
  all.insert(all.end(), second.begin(), second.end());
  all.insert(all.end(), third.begin(), third.end());
  REQUIRE(c.run_until([&] { return applied_all(c, 4, all); }, 5s));
  // The new voter counts: with one more crash a majority of {l, other, 4} still commits.
  const node_id survivor = c.leader();
  for (node_id id : expect)
    if (id != survivor && id != 4) c.crash(id);
  auto fourth = write_n(c, "d", 2);
  CHECK(fourth.size() == 2);
}

TEST_CASE("membership: a change interrupted by the leader's crash is completed or rolled back, never left half done") {
  int completed = 0, rolled_back = 0;
  for (std::uint64_t seed = 1; seed <= 24; ++seed) {
    CAPTURE(seed);
    cluster c(with_spares(3, 2, seed));
    const node_id l = c.elect();
    change_outcome ch;
    change(c, l, {member_change::add_voter(4), member_change::add_voter(5), member_change::remove(l == 1 ? 2 : 1)}, &ch);
    // Crash the leader at a different moment of the change in each seed: as soon as it
    // appended C_old,new, or a few steps later.
    REQUIRE(c.run_until([&] { return c.node(l).members().joint(); }, 5s));
    for (std::uint64_t s = 0; s < seed % 4; ++s) c.step(std::chrono::microseconds(50));
    c.crash(l);
    CHECK(ch.done);
    CHECK(raftkit::may_have_applied(ch.ec));
    c.restart(l);
    REQUIRE(c.run_until([&] {
      const node_id n = c.leader();
      if (n == raftkit::no_node) return false;
      const auto& m = c.node(n).members();
      return !m.joint() && m.index <= c.node(n).commit_index();
    }, 20s));
    const membership& m = c.node(c.leader()).members();
    const auto v = sorted(m.voter_ids());
    std::vector<node_id> changed;
    for (node_id id : {1, 2, 3, 4, 5})
      if (id != (l == 1 ? 2 : 1)) changed.push_back(id);
    const bool done = v == changed;
    const bool back = v == std::vector<node_id>{1, 2, 3};
    CHECK((done || back));
    completed += done;
    rolled_back += back;
    // Every voter of that configuration settles on it.
    REQUIRE(c.run_until([&] {
      const node_id n = c.leader();
      if (n == raftkit::no_node) return false;
      for (node_id id : v)
        if (!c.node(id).members().same_members(c.node(n).members())) return false;
      return true;
    }, 10s));
  }
  // Both outcomes happen across the seeds (otherwise the test shows only one).
  CHECK(completed > 0);
  CHECK(rolled_back > 0);
}

TEST_CASE("membership: a removed server that keeps running does not raise the cluster's term or disrupt it") {
  cluster c(options(3));
  const node_id l = c.elect();
  const node_id gone = l == 3 ? 2 : 3;
  // It is cut off before the change, so it never learns that it was removed.
  c.isolate(gone);
  change_outcome ch;
  change(c, l, {member_change::remove(gone)}, &ch);
  REQUIRE(c.run_until([&] { return ch.done; }, 5s));
  REQUIRE_FALSE(ch.ec);
  CHECK(c.node(gone).members().is_voter(gone));  // as far as it knows, it still votes
  const term_t t = c.node(l).term();
  c.heal();
  c.run_for(10s);  // it times out again and again and asks for (pre-)votes
  CHECK(c.node(gone).counters().pre_votes > 0);
  CHECK(c.node(l).is_leader());
  CHECK(c.node(l).term() == t);
  for (node_id id : c.ids())
    if (id != gone) CHECK(c.node(id).term() == t);
  auto w = write_n(c, "x", 3);
  CHECK(w.size() == 3);
}

TEST_CASE("membership: promoting a learner that cannot catch up fails with catch_up_failed, and it stays a learner") {
  auto o = with_spares(3, 1);
  o.node.catch_up_timeout = 2s;
  cluster c(o);
  const node_id l = c.elect();
  change_outcome add;
  change(c, l, {member_change::add_learner(4)}, &add);
  REQUIRE(c.run_until([&] { return add.done; }, 5s));
  REQUIRE_FALSE(add.ec);
  c.crash(4);  // it will not catch up now
  write_n(c, "a", 5);
  change_outcome promote;
  change(c, l, {member_change::promote(4)}, &promote);
  REQUIRE(c.run_until([&] { return promote.done; }, 5s));
  CHECK(promote.ec == errc::catch_up_failed);
  CHECK_FALSE(raftkit::may_have_applied(promote.ec));
  CHECK(c.node(l).members().is_learner(4));
  CHECK(voters(c, l) == std::vector<node_id>{1, 2, 3});
  CHECK_FALSE(c.node(l).membership_change_pending());
  // Adding a voter that cannot catch up leaves it a learner too.
  c.restart(4);
  c.isolate(4);
  change_outcome again;
  change(c, l, {member_change::promote(4)}, &again);
  REQUIRE(c.run_until([&] { return again.done; }, 5s));
  CHECK(again.ec == errc::catch_up_failed);
  // Once it can, the promotion succeeds.
  c.heal();
  change_outcome ok;
  change(c, l, {member_change::promote(4)}, &ok);
  REQUIRE(c.run_until([&] { return ok.done; }, 5s));
  CHECK_FALSE(ok.ec);
  CHECK(c.node(l).members().is_voter(4));
}

TEST_CASE("membership: one change at a time; a second fails with membership_change_in_progress (broken_rule::one_change_at_a_time)") {
  cluster c(with_spares(3, 2));
  const node_id l = c.elect();
  change_outcome first, second;
  change(c, l, {member_change::add_voter(4)}, &first);
  change(c, l, {member_change::add_voter(5)}, &second);
  REQUIRE(second.done);
  CHECK(second.ec == errc::membership_change_in_progress);
  CHECK_FALSE(raftkit::may_have_applied(second.ec));
  REQUIRE(c.run_until([&] { return first.done; }, 5s));
  CHECK_FALSE(first.ec);
  // A second change waits for C_new to commit; after that it is accepted.
  change_outcome third;
  change(c, l, {member_change::add_voter(5)}, &third);
  REQUIRE(c.run_until([&] { return third.done; }, 5s));
  CHECK_FALSE(third.ec);
  CHECK(voters(c, l) == std::vector<node_id>{1, 2, 3, 4, 5});
}

TEST_CASE("membership: a new leader finishes a C_old,new it finds in its log") {
  cluster c(with_spares(3, 1));
  const node_id l = c.elect();
  // The leader's C_new never leaves it: the next leader must append its own.
  auto holds_final_config = [](const message& m) {
    for (const auto& e : m.entries.items()) {
      if (e.type != raftkit::entry_type::config) continue;
      auto conf = raftkit::detail::decode_membership(e.payload.bytes());
      if (conf && !conf->joint() && conf->is_voter(4)) return true;
    }
    return false;
  };
  c.set_observer([&](const message& m) { return !(m.from == l && holds_final_config(m)); });
  change_outcome ch;
  change(c, l, {member_change::add_voter(4)}, &ch);
  REQUIRE(c.run_until([&] {
    const auto& m = c.node(l).members();
    return !m.joint() && m.is_voter(4);
  }, 5s));
  c.crash(l);
  CHECK(ch.done);
  CHECK(ch.ec == errc::shutting_down);
  REQUIRE(c.run_until([&] {
    const node_id n = c.leader();
    if (n == raftkit::no_node || n == l) return false;
    const auto& m = c.node(n).members();
    return !m.joint() && m.index <= c.node(n).commit_index();
  }, 10s));
  const node_id n = c.leader();
  CHECK(voters(c, n) == std::vector<node_id>{1, 2, 3, 4});
  CHECK(config_entries(c, n).back().index > config_entries(c, n)[config_entries(c, n).size() - 2].index);
  change_outcome next;
  change(c, n, {member_change::remove(l)}, &next);
  REQUIRE(c.run_until([&] { return next.done; }, 5s));
  CHECK_FALSE(next.ec);
}

TEST_CASE("membership: invalid changes are refused at once and change nothing") {
  cluster c(with_spares(3, 1));
  const node_id l = c.elect();
  const auto before = c.node(l).members();
  const node_id follower = l == 1 ? 2 : 1;
  auto refused = [&](std::vector<member_change> ch, errc want) {
    change_outcome o;
    change(c, l, std::move(ch), &o);
    REQUIRE(o.done);
    CHECK(o.ec == want);
  };
  refused({member_change::add_voter(2)}, errc::invalid_membership_change);      // already a voter
  refused({member_change::promote(2)}, errc::invalid_membership_change);        // not a learner
  refused({member_change::remove(9)}, errc::invalid_membership_change);         // not a member
  refused({member_change::add_voter(4), member_change::add_learner(4)}, errc::invalid_membership_change);  // twice
  refused({member_change::remove(1), member_change::remove(2), member_change::remove(3)}, errc::invalid_membership_change);
  refused({member_change::add_voter(0)}, errc::invalid_membership_change);
  refused({member_change::add_voter(4, std::string(2 << 20, 'x'))}, errc::too_large);
  change_outcome on_follower;
  change(c, follower, {member_change::add_voter(4)}, &on_follower);
  CHECK(on_follower.ec == errc::not_leader);
  CHECK(c.node(l).members().same_members(before));
  CHECK_FALSE(c.node(l).membership_change_pending());
}

TEST_CASE("membership: learners receive the log but never count toward a quorum (broken_rule::learner_quorum)") {
  cluster c(with_spares(3, 2));
  const node_id l = c.elect();
  change_outcome ch;
  change(c, l, {member_change::add_learner(4), member_change::add_learner(5)}, &ch);
  REQUIRE(c.run_until([&] { return ch.done; }, 5s));
  REQUIRE_FALSE(ch.ec);
  auto w = write_n(c, "a", 5);
  REQUIRE(c.run_until([&] { return applied_all(c, 4, w) && applied_all(c, 5, w); }, 5s));
  // Both other voters cut off: the leader and two learners are three of five servers,
  // but not a majority of the voters, so nothing commits.
  for (node_id id : {1, 2, 3})
    if (id != l) c.isolate(id);
  const index_t commit = c.node(l).commit_index();
  outcome o;
  propose(c, l, "stuck", &o);
  c.run_for(std::chrono::milliseconds(120));  // within the election timeout: still leader
  CHECK(c.node(l).commit_index() == commit);
  CHECK(c.store(4).last_index() > commit);  // the learners hold the entry
  CHECK_FALSE((o.done && !o.ec));
  // Learners never campaign, even alone.
  c.run_for(3s);
  CHECK(c.node(4).counters().pre_votes == 0);
  CHECK(c.node(5).counters().elections == 0);
}

TEST_CASE("membership: during C_old,new an entry commits only with a majority of both sets (broken_rule::joint_commit)") {
  cluster c(with_spares(3, 2));
  const node_id l = c.elect();
  const std::vector<node_id> old_others = old_voters_but(l);
  // Cut the old voters off once the learners have caught up and C_old,new is appended.
  bool cut = false;
  c.set_observer([&](const message& m) {
    if (!cut && m.from == l && c.node(l).members().joint()) {
      for (node_id id : old_others) c.isolate(id);
      cut = true;
    }
    return true;
  });
  change_outcome ch;
  change(c, l, {member_change::add_voter(4), member_change::add_voter(5)}, &ch);
  REQUIRE(c.run_until([&] { return cut; }, 5s));
  const index_t joint_at = c.node(l).members().index;
  c.run_for(std::chrono::milliseconds(120));
  // {l, 4, 5} is a majority of C_new but only one of three in C_old.
  CHECK(c.store(4).last_index() >= joint_at);
  CHECK(c.store(5).last_index() >= joint_at);
  CHECK(c.node(l).commit_index() < joint_at);
  CHECK_FALSE(ch.done);
  c.heal();
  REQUIRE(c.run_until([&] { return ch.done; }, 5s));
  CHECK_FALSE(ch.ec);
}

TEST_CASE("membership: an election during C_old,new needs a majority of both sets") {
  cluster c(with_spares(3, 2));
  const node_id l = c.elect();
  const std::vector<node_id> old_others = old_voters_but(l);
  change_outcome ch;
  change(c, l, {member_change::add_voter(4), member_change::add_voter(5)}, &ch);
  REQUIRE(c.run_until([&] {
    for (node_id id : c.ids())
      if (!c.node(id).members().joint()) return false;
    return true;
  }, 5s));
  // The leader goes and one old voter is cut off: {old_others[0], 4, 5} is three of C_new's
  // five, but one of C_old's three, so none of them may win.
  c.crash(l);
  c.isolate(old_others[1]);
  c.run_for(5s);
  for (node_id id : {old_others[0], node_id{4}, node_id{5}}) CHECK_FALSE(c.node(id).is_leader());
  CHECK(c.node(4).counters().pre_votes + c.node(5).counters().pre_votes + c.node(old_others[0]).counters().pre_votes > 0);
  // With the old leader back, C_old has a majority too.
  c.restart(l);
  REQUIRE(c.run_until([&] { return c.leader() != raftkit::no_node; }, 10s));
}

TEST_CASE("membership: the configuration survives restarts, from the log") {
  cluster c(with_spares(3, 1));
  const node_id l = c.elect();
  change_outcome ch;
  change(c, l, {member_change::add_voter(4, "ctx4"), member_change::remove(l == 1 ? 2 : 1)}, &ch);
  REQUIRE(c.run_until([&] { return ch.done; }, 5s));
  REQUIRE_FALSE(ch.ec);
  const auto want = c.node(l).members();
  for (node_id id : c.ids()) {
    c.crash(id);
    c.restart(id);
  }
  for (node_id id : c.ids()) {
    CHECK(c.node(id).members().same_members(want));
  }
  CHECK(c.node(4).members().find(4)->context == "ctx4");
  CHECK(c.elect() != raftkit::no_node);
}

}  // TEST_SUITE
