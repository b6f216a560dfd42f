// The faults a review of the engine found (issue 10), one TEST_CASE each, named for the
// rule it checks. Each failed before its fix (the closing note of issue 10 says what each
// printed); the ones guarding a safety rule also fail with the rule's test-only switch.

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine_harness.hpp"
#include "raftkit/manual_clock.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/sim/invariants.hpp"

using namespace engine_test;

namespace {

/// Length of the prefix on which two nodes' logs agree (same terms at every index).
index_t agreed_prefix(cluster& c, node_id a, node_id b) {
  const auto ta = log_terms(c, a), tb = log_terms(c, b);
  index_t i = 0;
  while (i < ta.size() && i < tb.size() && ta[i] == tb[i]) ++i;
  return i;
}

/// A memory log store whose save_hard_state fails (as a full or broken disk does) once
/// `fail` is set: the failure is recorded and reported by error(), like file::log_store.
struct failing_hard_state_store {
  raftkit::memory::log_store inner;
  std::shared_ptr<bool> fail = std::make_shared<bool>(false);
  std::shared_ptr<std::error_code> err = std::make_shared<std::error_code>();

  index_t first_index() const { return inner.first_index(); }
  index_t last_index() const { return inner.last_index(); }
  term_t term_at(index_t i) const { return inner.term_at(i); }
  const entry& at(index_t i) const { return inner.at(i); }
  index_t durable_index() const { return inner.durable_index(); }
  void append(std::span<const entry> es) { inner.append(es); }
  void truncate_after(index_t i) { inner.truncate_after(i); }
  raftkit::hard_state load_hard_state() const { return inner.load_hard_state(); }
  void save_hard_state(const raftkit::hard_state& hs) {
    if (*fail) {
      *err = raftkit::errc::io_error;
      return;  // the previous hard state stays on disk
    }
    inner.save_hard_state(hs);
  }
  std::error_code error() const { return *err; }
};

using raw_node = raftkit::basic_node<recording_transport, failing_hard_state_store, recorder, raftkit::manual_clock>;

raftkit::node_config three_node_config(node_id id) {
  raftkit::node_config cfg;
  cfg.id = id;
  cfg.members = {1, 2, 3};
  cfg.pre_vote = false;  // these tests drive the real election by hand
  return cfg;
}

/// A state machine that throws on the command "boom".
struct fragile {
  index_t apply(index_t i, std::span<const std::byte> cmd) {
    if (std::string_view(reinterpret_cast<const char*>(cmd.data()), cmd.size()) == "boom")
      throw std::runtime_error("fragile: cannot apply boom");
    return i;
  }
};

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

}  // namespace

TEST_SUITE("engine") {

// ---------------------------------------------------------------- finding 1

TEST_CASE("an acknowledgement names only what this term verified: a follower that slept through a term never claims entries another leader overwrote") {
  // Node 2 follows node 1 in term T1 and receives entry x at index k, which its slow disk
  // has not made durable. 2 then hears nothing (it is paused) while, in T2, node 3 leads and
  // overwrites x on node 1. Node 1 leads T3. When 2 wakes it receives 1's T3 AppendEntries
  // and, at about the same moment, its disk makes x durable. An ack computed from what 2
  // verified in T1 would tell 1 that 2 holds 1's log up to k: 1's match for 2 would claim
  // an entry 2 does not have, and 2 would never be repaired.
  // Without pre-vote and stickiness (tested on their own), so the test can pick who
  // campaigns when; the simulator reaches the same sequence with them on.
  cluster c(classic_options(5));
  REQUIRE(c.campaign(1));
  outcome base;
  propose(c, 1, "base", &base);
  REQUIRE(c.run_until([&] { return base.done; }, 1s));
  c.run_for(50ms);
  const term_t t1 = c.node(1).term();

  c.store(2).set_write_delay(1s);
  for (node_id id : {3, 4, 5}) c.cut_one_way(1, id);
  outcome x;
  propose(c, 1, "x", &x);
  const index_t k = c.store(1).last_index();
  REQUIRE(c.run_until([&] { return c.store(2).last_index() == k; }, 100ms));
  REQUIRE(c.store(2).durable_index() < k);  // received, not durable
  c.pause(2);

  c.cut(3, 2);  // node 2 must hear nothing of term T2
  REQUIRE(c.campaign(3));
  const term_t t2 = c.node(3).term();
  REQUIRE(t2 > t1);
  c.heal();
  c.cut(3, 2);
  // 3 overwrites x on node 1 with its own entry of T2, then hands leadership to 1.
  REQUIRE(c.run_until([&] { return c.node(3).match_index(1) == c.store(3).last_index(); }, 1s));
  REQUIRE(c.store(1).term_at(k) == t2);
  bool handed_over = false;
  c.node(3).transfer_leadership(1, [&](std::error_code ec) { handed_over = !ec; });
  REQUIRE(c.run_until([&] { return c.node(1).is_leader() && handed_over; }, 1s));
  const term_t t3 = c.node(1).term();
  REQUIRE(t3 > t2);

  c.resume(2);  // its T1 state meets 1's T3 messages (held while it slept)...
  c.store(2).sync();  // ...and at that moment its disk completes x
  c.node(2).notify_durable();
  raftkit::sim::invariant_checker<recorder> invariants(c);
  for (int i = 0; i < 400; ++i) {
    c.step(1ms);
    const auto broken = invariants.check();  // the simulator's form of the same rule
    REQUIRE_MESSAGE(!broken, *broken);
    const index_t agreed = agreed_prefix(c, 1, 2);
    REQUIRE_MESSAGE(c.node(1).match_index(2) <= agreed,
                    "leader 1's match for 2 is " << c.node(1).match_index(2) << ", they agree only up to " << agreed);
  }
  // And 2 is repaired: its log becomes the leader's.
  REQUIRE(c.run_until([&] { return logs_equal(c, {1, 2}); }, 2s));
  CHECK(c.store(2).term_at(k) == t2);
}

// ---------------------------------------------------------------- finding 2

TEST_CASE("Fig. 2: a vote whose persisting fails is never sent, and the node halts") {
  failing_hard_state_store store;
  recording_transport t;
  raftkit::manual_clock clock;
  raw_node n(three_node_config(2), t, store, recorder{}, clock);
  *store.fail = true;
  message rv;
  rv.type = message_type::request_vote;
  rv.from = 1;
  rv.to = 2;
  rv.term = 1;  // a new term: persisting it fails already
  n.receive(message(rv));
  CHECK(t.out->empty());
  CHECK(n.stopped());
  CHECK(n.error() == errc::io_error);
  CHECK(store.load_hard_state().vote == raftkit::no_node);
}

TEST_CASE("Fig. 2: a vote in the current term is sent only once persisted") {
  failing_hard_state_store store;
  recording_transport t;
  raftkit::manual_clock clock;
  raw_node n(three_node_config(2), t, store, recorder{}, clock);
  message hb;  // teaches term 1 (persisted fine); no vote yet
  hb.type = message_type::append_entries;
  hb.from = 1;
  hb.to = 2;
  hb.term = 1;
  n.receive(std::move(hb));
  REQUIRE(store.load_hard_state().term == 1);
  const std::size_t sent = t.out->size();
  *store.fail = true;
  message rv;  // a candidate of the same term that 2 would vote for
  rv.type = message_type::request_vote;
  rv.from = 3;
  rv.to = 2;
  rv.term = 1;
  n.receive(std::move(rv));
  CHECK(t.out->size() == sent);  // no reply left: neither a grant nor anything else
  CHECK(n.stopped());
  CHECK(n.error() == errc::io_error);
}

TEST_CASE("§5.2 a candidate whose new term cannot be persisted sends no RequestVote") {
  failing_hard_state_store store;
  recording_transport t;
  raftkit::manual_clock clock;
  raw_node n(three_node_config(1), t, store, recorder{}, clock);
  *store.fail = true;
  clock.advance(1h);
  n.tick();
  for (const auto& m : *t.out) CHECK(m.type != message_type::request_vote);
  CHECK(n.stopped());
  CHECK(n.error() == errc::io_error);
  CHECK(n.next_deadline() == raftkit::time_point::max());
}

// ---------------------------------------------------------------- finding 4

TEST_CASE("back-pressure: a flood of proposals through a follower is bounded, the excess fails with busy (not applied)") {
  auto o = options(3);
  o.node.max_pending_proposals = 100;
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id f = l == 1 ? 2 : 1;
  std::vector<outcome> outs(10'000);
  for (std::size_t i = 0; i < outs.size(); ++i) propose(c, f, "flood", &outs[i]);
  CHECK(c.node(f).status().pending_proposals <= 100);
  std::size_t busy = 0;
  for (const auto& out : outs) busy += out.done && out.ec == errc::busy;
  CHECK(busy == outs.size() - 100);
  REQUIRE(c.run_until([&] { return std::all_of(outs.begin(), outs.end(), [](const outcome& x) { return x.done; }); }, 5s));
  std::size_t ok = 0;
  for (const auto& out : outs) {
    ok += !out.ec;
    if (out.ec) CHECK_FALSE(raftkit::may_have_applied(out.ec));
  }
  CHECK(ok == 100);
}

TEST_CASE("back-pressure: a leader that cannot commit stops appending at max_uncommitted_bytes, for its own and forwarded proposals") {
  auto o = options(5);
  o.node.max_bytes_per_message = 4096;
  o.node.max_uncommitted_bytes = 64 << 10;
  // Declared before the cluster: destroying a node completes what is pending (shutting_down).
  std::vector<outcome> mine(200), forwarded(200);
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  std::vector<node_id> others;
  for (node_id id : c.ids())
    if (id != l) others.push_back(id);
  const node_id f = others[0];
  for (std::size_t i = 1; i < others.size(); ++i) c.crash(others[i]);  // 2 of 5: no quorum
  const index_t before = c.store(l).last_index();
  const std::string payload(1000, 'p');
  for (auto& out : mine) propose(c, l, payload, &out);
  for (auto& out : forwarded) propose(c, f, payload, &out);
  c.run_for(200ms);
  CHECK(c.node(l).status().uncommitted_bytes <= (64u << 10));
  CHECK(c.store(l).last_index() - before <= (64u << 10) / 1000);
  std::size_t busy_mine = 0, busy_fwd = 0;
  for (const auto& out : mine) busy_mine += out.done && out.ec == errc::busy;
  for (const auto& out : forwarded) busy_fwd += out.done && out.ec == errc::busy;
  CHECK(busy_mine > 0);
  CHECK(busy_fwd == forwarded.size());  // the leader was full before they arrived
}

// ---------------------------------------------------------------- finding 5 (engine)

TEST_CASE("flow control: a follower whose fsync takes longer than many heartbeats is not sent its window again") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id slow = l == 1 ? 2 : 1;
  c.store(slow).set_write_delay(300ms);  // 10 heartbeats of 30 ms
  std::size_t entries_to_slow = 0;
  c.set_observer([&](const message& m) {
    if (m.type == message_type::append_entries && m.to == slow) entries_to_slow += m.entries.size();
    return true;
  });
  std::vector<outcome> outs(50);
  for (auto& out : outs) propose(c, l, "w", &out);
  c.run_for(250ms);  // the slow disk has not finished
  CHECK(entries_to_slow == outs.size());  // each entry sent once, not resent
  REQUIRE(c.run_until([&] { return c.node(l).match_index(slow) == c.store(l).last_index(); }, 2s));
}

TEST_CASE("flow control: a lost window is still resent after two idle heartbeats") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id f = l == 1 ? 2 : 1;
  bool dropped = false;
  c.set_observer([&](const message& m) {
    if (!dropped && m.type == message_type::append_entries && m.to == f && !m.entries.empty()) {
      dropped = true;
      return false;  // lose the first window to f
    }
    return true;
  });
  outcome o;
  propose(c, l, "w", &o);
  REQUIRE(c.run_until([&] { return c.node(l).match_index(f) == c.store(l).last_index(); }, 1s));
  CHECK(dropped);
}

TEST_CASE("flow control: a follower that crashed and lost entries it had received (not yet durable) is sent them again") {
  // Found by a sweep (raftkit-sim --seed 5222, all faults): the leader counted entries a
  // follower had received but not synced as arrived; the follower crashed and lost them,
  // and with the window full of that one message nothing was ever resent.
  auto o = options(3);
  o.node.max_inflight_messages = 1;
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id f = l == 1 ? 2 : 1;
  outcome first;
  propose(c, l, "a", &first);
  REQUIRE(c.run_until([&] { return c.node(l).match_index(f) == c.store(l).last_index(); }, 1s));
  c.store(f).set_write_delay(200ms);  // f receives the next entry but does not sync it yet
  outcome second;
  propose(c, l, "b", &second);
  const index_t b = c.store(l).last_index();
  REQUIRE(c.run_until([&] { return c.store(f).last_index() == b; }, 1s));
  c.run_for(5ms);  // its reply (received, not durable) reaches the leader
  REQUIRE(c.node(l).match_index(f) < b);
  c.crash(f);  // the unsynced entry is lost
  c.restart(f);
  c.store(f).set_write_delay(raftkit::duration{0});
  REQUIRE(c.store(f).last_index() < b);
  CHECK(c.run_until([&] { return c.node(l).match_index(f) >= b; }, 2s));
}

// ---------------------------------------------------------------- finding 6

TEST_CASE("a proposal whose entry cannot fit in one AppendEntries fails at once with too_large, on the leader and on a follower") {
  auto o = options(3);
  o.node.max_bytes_per_message = 1000;
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id f = l == 1 ? 2 : 1;
  const std::size_t fits = 1000 - raftkit::entry::wire_overhead;
  outcome big_l, big_f, edge_l, edge_f;
  propose(c, l, std::string(fits + 1, 'b'), &big_l);
  propose(c, f, std::string(fits + 1, 'b'), &big_f);
  CHECK(big_l.done);
  CHECK(big_l.ec == errc::too_large);
  CHECK(big_f.done);
  CHECK(big_f.ec == errc::too_large);
  CHECK_FALSE(raftkit::may_have_applied(big_l.ec));
  propose(c, l, std::string(fits, 'e'), &edge_l);
  propose(c, f, std::string(fits, 'e'), &edge_f);
  REQUIRE(c.run_until([&] { return edge_l.done && edge_f.done; }, 1s));
  CHECK_FALSE(edge_l.ec);
  CHECK_FALSE(edge_f.ec);
  // Replication to every follower goes on.
  REQUIRE(c.run_until([&] { return logs_equal(c, c.ids()) && c.node(f).applied_index() == c.store(l).last_index(); }, 1s));
}

// ---------------------------------------------------------------- finding 7

TEST_CASE("forwarding: proposals a follower makes inside batch() reach the leader in one message and one log write") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id f = l == 1 ? 2 : 1;
  std::size_t forwards = 0;
  c.set_observer([&](const message& m) {
    forwards += m.type == message_type::forward_proposal;
    return true;
  });
  const auto appends_before = c.node(l).counters().log_appends;
  std::vector<outcome> outs(100);
  c.node(f).batch([&] {
    for (std::size_t i = 0; i < outs.size(); ++i) propose(c, f, "f" + std::to_string(i), &outs[i]);
  });
  REQUIRE(c.run_until([&] { return std::all_of(outs.begin(), outs.end(), [](const outcome& x) { return x.done; }); }, 1s));
  CHECK(forwards == 1);
  CHECK(c.node(l).counters().log_appends - appends_before == 1);
  const auto& applied = c.node(f).state_machine().applied;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    REQUIRE_FALSE(outs[i].ec);
    // Each completion got the index its own command was applied at.
    auto it = std::find_if(applied.begin(), applied.end(), [&](const auto& a) { return a.first == outs[i].index; });
    REQUIRE(it != applied.end());
    CHECK(it->second == "f" + std::to_string(i));
  }
}

TEST_CASE("forwarding: a batch larger than one message leaves in several, each within max_bytes_per_message") {
  auto o = options(3);
  o.node.max_bytes_per_message = 2048;
  cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  const node_id f = l == 1 ? 2 : 1;
  std::vector<std::size_t> sizes;
  c.set_observer([&](const message& m) {
    if (m.type == message_type::forward_proposal) {
      std::size_t b = 0;
      for (const auto& e : m.entries) b += e.wire_size();
      sizes.push_back(b);
    }
    return true;
  });
  std::vector<outcome> outs(20);
  c.node(f).batch([&] {
    for (auto& out : outs) propose(c, f, std::string(500, 'x'), &out);
  });
  REQUIRE(c.run_until([&] { return std::all_of(outs.begin(), outs.end(), [](const outcome& x) { return x.done && !x.ec; }); }, 1s));
  CHECK(sizes.size() >= 5);
  for (std::size_t s : sizes) CHECK(s <= 2048);
}

// ---------------------------------------------------------------- finding 8

TEST_CASE("a state machine that throws halts its node with apply_failed and the exception; the entry is never skipped") {
  raftkit::sim::cluster<fragile> c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  std::error_code ec;
  bool done = false;
  index_t at = 0;
  c.node(l).propose(bytes_of("boom"), [&](std::error_code e, index_t i, index_t) {
    done = true;
    ec = e;
    at = i;
  });
  c.run_for(2s);
  CHECK(done);
  CHECK(ec == errc::apply_failed);
  CHECK(at > 0);
  CHECK(raftkit::may_have_applied(ec));  // it committed: every replica holds it
  CHECK(c.node(l).stopped());
  CHECK(c.node(l).error() == errc::apply_failed);
  REQUIRE(c.node(l).apply_exception());
  CHECK_THROWS_WITH_AS(std::rethrow_exception(c.node(l).apply_exception()), "fragile: cannot apply boom", std::runtime_error);
  // Every node that learned the entry committed halted on it too, rather than skip it.
  for (node_id id : c.ids()) {
    CHECK(c.node(id).applied_index() < at);
    if (c.node(id).commit_index() >= at) CHECK(c.node(id).error() == errc::apply_failed);
  }
}

// ---------------------------------------------------------------- finding 10

TEST_CASE("error classes: may_have_applied is false exactly for the definitely-not-applied codes") {
  using raftkit::may_have_applied;
  for (errc e : {errc::not_leader, errc::dropped, errc::busy, errc::bad_message, errc::locked, errc::too_large, errc::stopped,
                 errc::transferring, errc::unknown_member, errc::not_supported})
    CHECK_FALSE(may_have_applied(e));
  for (errc e : {errc::timeout, errc::shutting_down, errc::leadership_lost, errc::corrupt_log, errc::io_error,
                 errc::no_space, errc::apply_failed})
    CHECK(may_have_applied(e));
  CHECK(may_have_applied(std::error_code{}));
  CHECK(may_have_applied(std::make_error_code(std::errc::connection_reset)));  // not ours: unknown
}

TEST_CASE("error classes: a stopping leader's appended proposals are outcome unknown, and they do apply everywhere") {
  // The bank-transfer case: a client that retried on shutting_down would apply twice.
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.run_for(50ms);
  std::vector<outcome> outs(20);
  for (std::size_t i = 0; i < outs.size(); ++i) propose(c, l, "t" + std::to_string(i), &outs[i]);
  c.node(l).stop();
  for (const auto& out : outs) {
    REQUIRE(out.done);
    CHECK(out.ec == errc::shutting_down);
    CHECK(raftkit::may_have_applied(out.ec));
    CHECK(out.index > 0);  // the index it was appended at travels with the error
  }
  outcome after;
  propose(c, l, "late", &after);
  CHECK(after.ec == errc::stopped);
  CHECK_FALSE(raftkit::may_have_applied(after.ec));
  const node_id f = l == 1 ? 2 : 1;
  REQUIRE(c.run_until([&] { return c.node(f).applied_index() >= outs.back().index; }, 2s));
  const auto& applied = c.node(f).state_machine().applied;
  for (std::size_t i = 0; i < outs.size(); ++i)
    CHECK(std::count_if(applied.begin(), applied.end(), [&](const auto& a) { return a.second == "t" + std::to_string(i); }) == 1);
}

// ---------------------------------------------------------------- finding 11

TEST_CASE("a stopped node's next_deadline is time_point::max(), so a driver does not spin") {
  cluster c(options(3));
  c.node(1).stop();
  CHECK(c.node(1).next_deadline() == raftkit::time_point::max());
  c.node(1).tick();
  CHECK(c.node(1).next_deadline() == raftkit::time_point::max());
}

TEST_CASE("destroying a node without stop() completes its pending proposals with shutting_down") {
  failing_hard_state_store store;
  recording_transport t;
  raftkit::manual_clock clock;
  std::vector<std::error_code> results;
  {
    raftkit::node_config cfg = three_node_config(1);
    raw_node n(cfg, t, store, recorder{}, clock);
    clock.advance(1h);
    n.tick();  // candidate
    const std::vector<message> requests = *t.out;  // receive() below sends more
    for (const auto& m : requests) {
      if (m.type != message_type::request_vote) continue;
      message r;
      r.type = message_type::request_vote_reply;
      r.from = m.to;
      r.to = 1;
      r.term = m.term;
      n.receive(std::move(r));
    }
    REQUIRE(n.is_leader());
    for (int i = 0; i < 5; ++i)
      n.propose(bytes_of("p"), [&](std::error_code ec, index_t) { results.push_back(ec); });
    CHECK(results.empty());
  }
  REQUIRE(results.size() == 5);
  for (auto ec : results) CHECK(ec == errc::shutting_down);
}

TEST_CASE("a proposal's completion learns the index its command was applied at") {
  cluster c(options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  index_t got = 0, result = 0;
  c.node(l).propose(bytes_of("i"), [&](std::error_code ec, index_t at, index_t r) {
    REQUIRE_FALSE(ec);
    got = at;
    result = r;
  });
  REQUIRE(c.run_until([&] { return got != 0; }, 1s));
  CHECK(got == result);  // recorder returns the index it applied at
  CHECK(c.store(l).at(got).payload.view() == "i");
}

TEST_CASE("node_config refuses duplicate members and zero bounds") {
  raftkit::node_config c;
  c.id = 1;
  c.members = {1, 2, 2};
  CHECK_THROWS_AS(c.validate(), std::invalid_argument);
  c.members = {1, 2, 3};
  CHECK_NOTHROW(c.validate());
  for (auto field : {&raftkit::node_config::max_pending_proposals, &raftkit::node_config::max_bytes_per_message,
                     &raftkit::node_config::max_inflight_bytes, &raftkit::node_config::max_uncommitted_bytes}) {
    raftkit::node_config z = c;
    z.*field = 0;
    CHECK_THROWS_AS(z.validate(), std::invalid_argument);
  }
}

}  // TEST_SUITE
