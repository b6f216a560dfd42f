// Stable leadership and reads without a log write (issue 11): pre-vote (thesis §9.6),
// check-quorum (§6.2), leader stickiness (§4.2.3), leadership transfer (§3.10), ReadIndex
// (§6.4) and lease reads (§6.4.1). One TEST_CASE per rule, on the default configuration
// (the extensions on) unless a test says otherwise.

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine_harness.hpp"

using namespace engine_test;
using raftkit::duration;

namespace {

struct read_outcome {
  bool done = false;
  std::error_code ec;
  index_t index = 0;
  std::vector<std::string> seen;  // the replica's applied commands when it completed
};

/// Reads on `on`; records what the replica had applied when the read completed.
void read(cluster& c, node_id on, read_outcome* out, raftkit::read_consistency mode = raftkit::read_consistency::linearizable) {
  c.node(on).read_index(
      [&c, on, out](std::error_code ec, index_t at) {
        REQUIRE_FALSE(out->done);
        out->done = true;
        out->ec = ec;
        out->index = at;
        if (!ec) {
          REQUIRE(c.node(on).applied_index() >= at);  // applied up to its index when it completes
          for (const auto& [i, cmd] : c.node(on).state_machine().applied) out->seen.push_back(cmd);
        }
      },
      mode);
}

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

raftkit::sim::cluster_options lease_options(std::size_t n) {
  auto o = options(n);
  o.node.lease_reads = true;
  return o;
}

node_id other_than(cluster& c, std::initializer_list<node_id> not_these) {
  for (node_id id : c.ids())
    if (std::find(not_these.begin(), not_these.end(), id) == not_these.end()) return id;
  return raftkit::no_node;
}

}  // namespace

TEST_SUITE("engine") {

// ---------------------------------------------------------------- pre-vote, stickiness

TEST_CASE("thesis §9.6 pre-vote: a partitioned node that rejoins does not raise the cluster's term or depose the leader") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(100ms);
  const term_t t = c.node(l).term();
  const node_id n = other_than(c, {l});
  // No writes while it is away: its log stays as up to date as the leader's, the case in
  // which only pre-vote and stickiness keep it from winning votes.
  c.isolate(n);
  c.run_for(3s);  // many election timeouts: it keeps asking for pre-votes, never wins one
  CHECK(c.node(n).term() == t);
  CHECK(c.node(n).counters().elections == 0);
  CHECK(c.node(n).counters().pre_votes > 3);
  c.heal();
  c.run_for(3s);
  CHECK(c.node(l).is_leader());
  CHECK(c.node(l).term() == t);
  CHECK(c.node(n).term() == t);
  CHECK(c.node(n).leader() == l);
}

TEST_CASE("thesis §9.6 and §4.2.3: a node cut off from the leader but not from a follower does not raise the term: the follower, still hearing the leader, refuses its pre-votes") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(100ms);
  const term_t t = c.node(l).term();
  const node_id n = other_than(c, {l});
  const node_id f = other_than(c, {l, n});
  c.cut(l, n);
  c.run_for(3s);
  CHECK(c.node(n).term() == t);
  CHECK(c.node(f).counters().votes_ignored > 0);
  c.heal();
  c.run_for(1s);
  CHECK(c.node(l).is_leader());
  CHECK(c.node(l).term() == t);
}

TEST_CASE("thesis §9.6 without pre-vote, the same rejoining node does raise the term (the behaviour pre-vote prevents)") {
  auto o = options(3);
  o.node.pre_vote = false;
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(100ms);
  const term_t t = c.node(l).term();
  const node_id n = other_than(c, {l});
  c.isolate(n);
  c.run_for(3s);
  CHECK(c.node(n).term() > t);
  c.heal();
  c.run_for(3s);
  CHECK(c.node(c.leader()).term() > t);
}

TEST_CASE("thesis §4.2.3 stickiness: a follower that hears from its leader ignores a RequestVote of a higher term, unless it is a transfer") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(100ms);
  const node_id f = other_than(c, {l});
  const node_id cand = other_than(c, {l, f});
  const term_t t = c.node(f).term();
  bool answered = false;
  c.set_observer([&](const message& m) {
    if (m.type == message_type::request_vote_reply && m.from == f && m.to == cand) answered = true;
    return true;
  });
  message rv;
  rv.type = message_type::request_vote;
  rv.from = cand;
  rv.to = f;
  rv.term = t + 1;
  rv.log_index = c.store(f).last_index();
  rv.log_term = c.store(f).term_at(rv.log_index);
  c.inject(message(rv));
  CHECK(c.node(f).term() == t);  // not even the term moved
  CHECK_FALSE(answered);
  CHECK(c.node(f).counters().votes_ignored == 1);
  rv.flags = raftkit::message_flags::transfer;
  c.inject(message(rv));
  CHECK(c.node(f).term() == t + 1);
  CHECK(answered);
}

// ---------------------------------------------------------------- check-quorum

TEST_CASE("thesis §6.2 check-quorum: a leader cut off from both followers steps down within one election timeout and a heartbeat") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(100ms);
  outcome pending;
  c.isolate(l);
  const auto cut_at = c.now();
  propose(c, l, "stranded", &pending);
  const auto& cfg = c.node(l).config();
  REQUIRE(c.run_until([&] { return !c.node(l).is_leader(); }, 2s));
  const auto took = c.now() - cut_at;
  MESSAGE("stepped down after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms (election timeout "
                                << std::chrono::duration_cast<std::chrono::milliseconds>(cfg.election_timeout).count() << " ms)");
  CHECK(took <= cfg.election_timeout + 2 * cfg.heartbeat_interval);
  CHECK(pending.done);
  CHECK(pending.ec == errc::leadership_lost);
  CHECK(c.node(l).counters().quorum_lost == 1);
}

TEST_CASE("thesis §6.2 without check-quorum a cut-off leader goes on believing it leads") {
  auto o = options(3);
  o.node.check_quorum = false;
  o.node.leader_stickiness = false;
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.isolate(l);
  c.run_for(2s);
  CHECK(c.node(l).is_leader());
}

// ---------------------------------------------------------------- leadership transfer

TEST_CASE("thesis §3.10 transfer to a lagging follower catches it up first, then hands over; proposals meanwhile fail with transferring") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id target = other_than(c, {l});
  c.cut_one_way(l, target);
  for (int i = 0; i < 20; ++i) propose(c, l, "w" + std::to_string(i));
  c.run_for(100ms);
  REQUIRE(c.store(target).last_index() < c.store(l).last_index());
  c.heal();
  index_t target_last_at_timeout_now = 0;
  c.set_observer([&](const message& m) {
    if (m.type == message_type::timeout_now) target_last_at_timeout_now = c.store(target).last_index();
    return true;
  });
  std::error_code result = errc::timeout;
  bool done = false;
  c.node(l).transfer_leadership(target, [&](std::error_code ec) {
    done = true;
    result = ec;
  });
  outcome during;
  propose(c, l, "during", &during);
  CHECK(during.done);
  CHECK(during.ec == errc::transferring);
  CHECK_FALSE(raftkit::may_have_applied(during.ec));
  REQUIRE(c.run_until([&] { return done; }, 1s));
  CHECK_FALSE(result);
  CHECK(target_last_at_timeout_now == c.store(l).last_index() - 1);  // caught up, then the new leader's no-op
  CHECK(c.node(target).is_leader());
}

TEST_CASE("thesis §3.10 transfer to a dead node fails after an election timeout and the old leader resumes") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id dead = other_than(c, {l});
  c.crash(dead);
  std::error_code result;
  bool done = false;
  c.node(l).transfer_leadership(dead, [&](std::error_code ec) {
    done = true;
    result = ec;
  });
  REQUIRE(c.run_until([&] { return done; }, 2s));
  CHECK(result == errc::timeout);
  CHECK(c.node(l).is_leader());
  outcome after;
  propose(c, l, "after", &after);
  REQUIRE(c.run_until([&] { return after.done; }, 1s));
  CHECK_FALSE(after.ec);
}

TEST_CASE("thesis §3.10 transfer to any_node picks the most up-to-date follower; bad targets fail at once") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id behind = other_than(c, {l});
  const node_id ahead = other_than(c, {l, behind});
  c.cut_one_way(l, behind);
  for (int i = 0; i < 5; ++i) propose(c, l, "w");
  c.run_for(50ms);
  std::error_code bad;
  c.node(l).transfer_leadership(42, [&](std::error_code ec) { bad = ec; });
  CHECK(bad == errc::unknown_member);
  bool done = false;
  c.node(l).transfer_leadership(raftkit::any_node, [&](std::error_code ec) { done = !ec; });
  std::error_code second;
  c.node(l).transfer_leadership(ahead, [&](std::error_code ec) { second = ec; });
  CHECK(second == errc::transferring);
  REQUIRE(c.run_until([&] { return done; }, 1s));
  CHECK(c.node(ahead).is_leader());
  std::error_code not_leader;
  c.node(l).transfer_leadership(ahead, [&](std::error_code ec) { not_leader = ec; });
  CHECK(not_leader == errc::not_leader);
}

// ---------------------------------------------------------------- ReadIndex

TEST_CASE("thesis §6.4 ReadIndex on a new leader waits for its first commit") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  outcome w;
  propose(c, l, "before", &w);
  REQUIRE(c.run_until([&] { return w.done; }, 1s));
  // A new leader whose followers' disks are stuck cannot commit its no-op.
  for (node_id id : c.ids())
    if (id != l) c.store(id).set_write_delay(std::chrono::hours(1));
  c.node(l).transfer_leadership(raftkit::any_node, [](std::error_code) {});
  REQUIRE(c.run_until([&] { const node_id x = c.leader(); return x != raftkit::no_node && x != l; }, 1s));
  const node_id fresh = c.leader();
  REQUIRE(c.node(fresh).commit_index() < c.store(fresh).last_index());
  read_outcome r;
  read(c, fresh, &r);
  c.run_for(300ms);
  CHECK_FALSE(r.done);  // its commit index is not known current yet
  for (node_id id : c.ids()) {
    c.store(id).set_write_delay(duration{0});
    c.store(id).sync();
    c.node(id).notify_durable();
  }
  REQUIRE(c.run_until([&] { return r.done; }, 1s));
  CHECK_FALSE(r.ec);
  CHECK(r.index >= c.store(fresh).last_index());  // its no-op, committed
  CHECK(has(r.seen, "before"));
}

bool all_done(const std::vector<read_outcome>& rs) {
  return std::all_of(rs.begin(), rs.end(), [](const read_outcome& x) { return x.done; });
}

/// Three nodes whose leader has led for a while, counting the AppendEntries (heartbeats
/// included) it sends from now on.
struct settled_leader {
  cluster c{options(3)};
  node_id l = c.elect();
  std::size_t heartbeats = 0;
  settled_leader() {
    REQUIRE(l != raftkit::no_node);
    c.run_for(50ms);
    c.set_observer([this](const message& m) {
      heartbeats += m.type == message_type::append_entries && m.from == l;
      return true;
    });
  }
};

TEST_CASE("thesis §6.4 one heartbeat round confirms a whole batch of reads (no message per read)") {
  settled_leader t;
  auto& c = t.c;
  const node_id l = t.l;
  const std::size_t& heartbeats = t.heartbeats;
  const auto rounds = c.node(l).counters().read_rounds;
  std::vector<read_outcome> rs(100);
  for (auto& r : rs) read(c, l, &r);
  REQUIRE(c.run_until([&] { return all_done(rs); }, 1s));
  for (const auto& r : rs) CHECK_FALSE(r.ec);
  CHECK(c.node(l).counters().read_rounds - rounds <= 2);
  CHECK(heartbeats <= 4);  // a round to each of two followers, perhaps a second one
}

// Found through raftkit-bench --reads (issue 11): the first read of a batch started a
// round at once and the rest waited for the next, so a driver's batch took two rounds.
TEST_CASE("thesis §6.4 the reads made inside one batch() share exactly one heartbeat round") {
  settled_leader t;
  auto& c = t.c;
  const node_id l = t.l;
  const std::size_t& heartbeats = t.heartbeats;
  const auto rounds = c.node(l).counters().read_rounds;
  std::vector<read_outcome> rs(10);
  c.node(l).batch([&] {
    for (auto& r : rs) read(c, l, &r);
  });
  REQUIRE(c.run_until([&] { return all_done(rs); }, 1s));
  for (const auto& r : rs) CHECK_FALSE(r.ec);
  CHECK(c.node(l).counters().read_rounds - rounds == 1);
  CHECK(heartbeats == 2);  // one round: a heartbeat to each of two followers
}

TEST_CASE("thesis §6.4 a read on a deposed leader fails or returns a fresh value, never a stale one") {
  cluster c(options(5));
  const node_id old = c.elect();
  REQUIRE(old != raftkit::no_node);
  c.run_for(50ms);
  std::vector<node_id> rest;
  for (node_id id : c.ids())
    if (id != old) rest.push_back(id);
  c.partition({{old}, rest});
  read_outcome r;
  read(c, old, &r);  // it still thinks it leads
  REQUIRE(c.run_until([&] { return c.leader() != raftkit::no_node && c.leader() != old; }, 3s));
  outcome fresh;
  propose(c, c.leader(), "fresh", &fresh);
  REQUIRE(c.run_until([&] { return fresh.done; }, 1s));
  REQUIRE_FALSE(fresh.ec);
  c.run_for(500ms);
  if (r.done && !r.ec) CHECK(has(r.seen, "fresh"));
  c.heal();
  REQUIRE(c.run_until([&] { return r.done; }, 3s));
  if (!r.ec) CHECK(has(r.seen, "fresh"));
  else CHECK(r.ec == errc::leadership_lost);
}

TEST_CASE("thesis §6.4 a follower read asks the leader for the index and completes once applied there") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id f = other_than(c, {l});
  outcome w;
  propose(c, l, "seen by the follower", &w);
  REQUIRE(c.run_until([&] { return w.done; }, 1s));
  // The leader has applied the write; the follower may not have yet. Its read must see it.
  read_outcome r;
  read(c, f, &r);
  REQUIRE(c.run_until([&] { return r.done; }, 1s));
  CHECK_FALSE(r.ec);
  CHECK(r.index >= w.index);
  CHECK(has(r.seen, "seen by the follower"));
}

// ---------------------------------------------------------------- leases

TEST_CASE("thesis §6.4.1 lease reads need no messages while the lease holds, and stop when it expires") {
  cluster c(lease_options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const auto& cfg = c.node(l).config();
  const duration lease_span(static_cast<std::int64_t>(static_cast<double>(cfg.election_timeout.count()) / cfg.clock_drift_bound));
  // The lease never reaches further than election_timeout / clock_drift_bound past the
  // send time of a confirmed round, so never further than that from now.
  for (int i = 0; i < 200; ++i) {
    c.step(1ms);
    REQUIRE(c.node(l).status().lease_until <= c.now() + lease_span);
  }
  REQUIRE(c.node(l).status().lease_valid);
  c.isolate(l);
  const auto lease_reads = c.node(l).counters().lease_reads;
  std::size_t sent = 0;
  c.set_observer([&](const message& m) {
    sent += m.from == l;
    return true;
  });
  read_outcome quick;
  read(c, l, &quick, raftkit::read_consistency::lease);
  CHECK(quick.done);  // at once: no round trip
  CHECK_FALSE(quick.ec);
  CHECK(sent == 0);
  CHECK(c.node(l).counters().lease_reads == lease_reads + 1);
  // The lease runs out no later than election_timeout / clock_drift_bound after the last
  // round a majority confirmed; then lease reads need a round, which cannot succeed.
  c.run_for(lease_span);
  CHECK_FALSE(c.node(l).status().lease_valid);
  read_outcome late;
  read(c, l, &late, raftkit::read_consistency::lease);
  CHECK_FALSE(late.done);
  REQUIRE(c.run_until([&] { return late.done; }, 2s));
  CHECK(late.ec);  // the leader stepped down (check-quorum) before any round confirmed it
}

TEST_CASE("thesis §6.4.1 lease reads are refused without the configuration that makes them safe") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  read_outcome r;
  read(c, l, &r, raftkit::read_consistency::lease);
  CHECK(r.done);
  CHECK(r.ec == errc::not_supported);
  raftkit::node_config bad = c.node(l).config();
  bad.lease_reads = true;
  bad.check_quorum = false;
  CHECK_THROWS_AS(bad.validate(), std::invalid_argument);
}

TEST_CASE("thesis §6.4 a single-node cluster confirms a read's round at once, also after heartbeats started rounds of their own") {
  // Found through raftkit-kv (issue 11): a lone leader's heartbeat ticks start rounds that
  // nobody echoes, so a read waits for the next round, which no reply would ever confirm.
  cluster c(options(1));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(100ms);  // several heartbeat intervals: rounds begun by ticks
  read_outcome r;
  read(c, l, &r);
  REQUIRE(c.run_until([&] { return r.done; }, 1s));
  CHECK_FALSE(r.ec);
  // Reads made inside batch() (as the Asio driver makes them) wait for the round the batch's
  // end starts; a lone leader must not leave that to a round its ticks began and nobody echoes.
  c.run_for(100ms);
  std::vector<read_outcome> rs(3);
  c.node(l).batch([&] {
    for (auto& x : rs) read(c, l, &x);
  });
  REQUIRE(c.run_until([&] { return all_done(rs); }, 1s));
  for (const auto& x : rs) CHECK_FALSE(x.ec);
}

// Found by raftkit-bench --via-follower (issue 11): the leader told followers of a new
// commit index only with its next AppendEntries or heartbeat, so a proposal a follower
// forwarded (which completes once the follower applies it) waited up to a heartbeat
// interval on an idle cluster. Now a follower waiting for a commit is told at once.
TEST_CASE("a forwarded proposal on an idle cluster completes within a few network delays, not a heartbeat interval") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id f = other_than(c, {l});
  c.run_for(5ms);  // just after a heartbeat: the next is most of an interval away
  const auto interval = c.node(l).config().heartbeat_interval;
  const auto start = c.now();
  outcome w;
  propose(c, f, "via-follower", &w);
  REQUIRE(c.run_until([&] { return w.done; }, 1s));
  CHECK_FALSE(w.ec);
  const auto took = c.now() - start;
  MESSAGE("forwarded proposal took " << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
                                     << " us of virtual time; heartbeat interval "
                                     << std::chrono::duration_cast<std::chrono::microseconds>(interval).count() << " us");
  CHECK(took < interval / 4);
}

// The read index the leader answers is an index it has committed: a follower that holds
// the entries up to it applies them at once, instead of waiting for the next heartbeat to
// bring the commit index. (A linearizable read's round of heartbeats carries the commit
// index itself; a lease read has no round.)
TEST_CASE("thesis §6.4.1 a follower's lease read on an idle cluster completes within a few network delays, not a heartbeat interval") {
  cluster c(lease_options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id f = other_than(c, {l});
  c.run_for(5ms);  // just after a heartbeat: the next is most of an interval away
  REQUIRE(c.node(l).status().lease_valid);
  const auto interval = c.node(l).config().heartbeat_interval;
  outcome w;
  propose(c, l, "written", &w);  // committed on the leader; the follower has not heard yet
  REQUIRE(c.run_until([&] { return w.done; }, 1s));
  REQUIRE_FALSE(w.ec);
  REQUIRE(c.node(f).commit_index() < w.index);
  const auto rounds = c.node(l).counters().read_rounds;
  const auto start = c.now();
  read_outcome r;
  read(c, f, &r, raftkit::read_consistency::lease);
  REQUIRE(c.run_until([&] { return r.done; }, 1s));
  CHECK_FALSE(r.ec);
  CHECK(has(r.seen, "written"));
  CHECK(c.node(l).counters().read_rounds == rounds);  // answered from the lease
  const auto took = c.now() - start;
  MESSAGE("follower lease read took " << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
                                      << " us of virtual time; heartbeat interval "
                                      << std::chrono::duration_cast<std::chrono::microseconds>(interval).count() << " us");
  CHECK(took < interval / 4);
}

TEST_CASE("local reads complete at once with the applied index and send nothing") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id f = other_than(c, {l});
  c.run_for(100ms);
  read_outcome r;
  read(c, f, &r, raftkit::read_consistency::local);
  CHECK(r.done);
  CHECK_FALSE(r.ec);
  CHECK(r.index == c.node(f).applied_index());
}

}  // TEST_SUITE
