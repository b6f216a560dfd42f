// raftkit/events.hpp: each event fires in the scenario that causes it, with its reason,
// and not otherwise.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "engine_harness.hpp"
#include "raftkit/events.hpp"

using namespace engine_test;
using raftkit::event;
using raftkit::event_reason;
using raftkit::role;
namespace ev = raftkit::events;

namespace {

/// Keeps every event a node reports.
struct recording_sink final : raftkit::event_sink {
  std::vector<event> seen;
  void on_event(const event& e) override { seen.push_back(e); }

  template <class T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& e : seen)
      if (const T* t = e.get<T>()) out.push_back(*t);
    return out;
  }
  template <class T>
  std::size_t count() const { return all<T>().size(); }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : seen) out.emplace_back(e.name());
    return out;
  }
  void clear() { seen.clear(); }
};

/// One sink per node of a cluster, attached now (and again by `attach(id)` after a restart).
/// Declared before the cluster, so it outlives the nodes (which report their stop).
struct sinks {
  std::map<node_id, recording_sink> by_node;
  template <class Cluster>
  void attach_all(Cluster& c) {
    for (node_id id : c.ids()) attach(c, id);
  }
  template <class Cluster>
  void attach(Cluster& c, node_id id) {
    c.node(id).set_event_sink(&by_node[id]);
  }
  recording_sink& operator[](node_id id) { return by_node[id]; }
};

/// What no scenario below causes unless it says so.
template <class... Ts>
void check_none(const recording_sink& s) {
  const auto none = [&]<class T>(T*) { CHECK_MESSAGE(s.count<T>() == 0, "unexpected ", T::name); };
  (none(static_cast<Ts*>(nullptr)), ...);
}
void check_no_faults(const recording_sink& s) {
  check_none<ev::log_truncated, ev::proposal_refused, ev::durability_stalled, ev::durability_resumed,
             ev::storage_error, ev::snapshot_taken, ev::snapshot_failed, ev::snapshot_installed, ev::snapshot_sent,
             ev::snapshot_send_failed, ev::node_stopped, ev::election_lost>(s);
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

/// A counter with the snapshot capability; its snapshots fail while `fail_writes` is set.
struct snap_counter {
  std::uint64_t value = 0;
  std::shared_ptr<bool> fail_writes = std::make_shared<bool>(false);
  index_t apply(index_t i, std::span<const std::byte>) {
    ++value;
    return i;
  }
  struct view {
    std::uint64_t value;
    bool fail;
    std::error_code write(raftkit::snapshot_writer& w) const {
      if (fail) return raftkit::errc::snapshot_failed;
      return w.write_value(value);
    }
  };
  view snapshot() const { return view{value, *fail_writes}; }
  std::error_code restore(raftkit::snapshot_reader& r) {
    return r.read_value(value) ? std::error_code{} : make_error_code(errc::corrupt_snapshot);
  }
};

}  // namespace

TEST_SUITE("events") {

TEST_CASE("an election reports the pre-vote, the election and the changes it makes, each with its reason, in order") {
  sinks s;
  cluster c(options(3));
  s.attach_all(c);
  REQUIRE(c.campaign(1));
  c.run_for(100ms);
  CHECK(s[1].names() == std::vector<std::string>{"election_started", "role_changed", "election_won", "election_started",
                                                 "term_changed", "role_changed", "election_won", "role_changed",
                                                 "leader_changed"});
  const auto started = s[1].all<ev::election_started>();
  REQUIRE(started.size() == 2);
  CHECK(started[0].pre_vote);
  CHECK(started[0].term == 1);
  CHECK(started[0].why == event_reason::election_timeout);
  CHECK_FALSE(started[1].pre_vote);
  CHECK(started[1].term == 1);
  CHECK(started[1].why == event_reason::pre_vote_won);
  const auto won = s[1].all<ev::election_won>();
  REQUIRE(won.size() == 2);
  CHECK(won[0].pre_vote);
  CHECK_FALSE(won[1].pre_vote);
  const auto roles = s[1].all<ev::role_changed>();
  REQUIRE(roles.size() == 3);
  CHECK((roles[0].from == role::follower && roles[0].to == role::pre_candidate && roles[0].why == event_reason::election_timeout));
  CHECK((roles[1].from == role::pre_candidate && roles[1].to == role::candidate && roles[1].why == event_reason::pre_vote_won));
  CHECK((roles[2].from == role::candidate && roles[2].to == role::leader && roles[2].why == event_reason::election_won));
  const auto terms = s[1].all<ev::term_changed>();
  CHECK((terms[0].from == 0 && terms[0].to == 1 && terms[0].why == event_reason::pre_vote_won));
  const auto leaders = s[1].all<ev::leader_changed>();
  CHECK((leaders[0].from == raftkit::no_node && leaders[0].to == 1 && leaders[0].why == event_reason::election_won));
  CHECK(s[1].seen.back().term == 1);
  CHECK(s[1].seen.back().node == 1);
  for (node_id f : {2, 3}) {
    // A follower sees the higher term in the RequestVote, and its leader in the AppendEntries.
    CHECK(s[f].names() == std::vector<std::string>{"term_changed", "leader_changed"});
    CHECK(s[f].all<ev::term_changed>()[0].why == event_reason::higher_term);
    const auto l = s[f].all<ev::leader_changed>()[0];
    CHECK((l.to == 1 && l.why == event_reason::leader_found));
  }
  for (node_id id : c.ids()) check_no_faults(s[id]);
}

TEST_CASE("a quiet cluster with a leader reports nothing more") {
  sinks s;
  cluster c(options(3));
  REQUIRE(c.campaign(1));
  c.run_for(100ms);  // the followers learn who leads
  s.attach_all(c);
  std::vector<outcome> done(20);
  for (auto& o : done) propose(c, 1, "x", &o);
  c.run_for(2s);
  for (const auto& o : done) CHECK((o.done && !o.ec));
  for (node_id id : c.ids()) CHECK_MESSAGE(s[id].seen.empty(), "node ", id, ": ", s[id].names()[0]);
}

TEST_CASE("a leader cut off from its majority steps down with lost_quorum; its pre-votes run out of time") {
  sinks s;
  cluster c(options(3));
  REQUIRE(c.campaign(1));
  s.attach_all(c);
  c.isolate(1);
  REQUIRE(c.run_until([&] { return !c.node(1).is_leader(); }, 2s));
  c.run_for(1s);
  const auto roles = s[1].all<ev::role_changed>();
  REQUIRE_FALSE(roles.empty());
  CHECK((roles[0].from == role::leader && roles[0].to == role::follower && roles[0].why == event_reason::lost_quorum));
  const auto leaders = s[1].all<ev::leader_changed>();
  REQUIRE_FALSE(leaders.empty());
  CHECK((leaders[0].from == 1 && leaders[0].to == raftkit::no_node && leaders[0].why == event_reason::lost_quorum));
  // Alone, it keeps asking for pre-votes; each round ends unanswered when the next starts.
  const auto lost = s[1].all<ev::election_lost>();
  REQUIRE_FALSE(lost.empty());
  for (const auto& l : lost) CHECK((l.pre_vote && l.why == event_reason::election_timeout));
  CHECK(s[1].count<ev::term_changed>() == 0);  // a pre-vote never moves the term
  check_none<ev::election_won>(s[1]);
  // The other two elect a new leader.
  const node_id next = c.leader();
  REQUIRE((next == 2 || next == 3));
  CHECK(s[next].count<ev::election_won>() == 2);
}

TEST_CASE("a leader that sees a higher term becomes a follower of it, reported as higher_term") {
  sinks s;
  cluster c(classic_options(3));  // no check-quorum: the old leader leads on until it hears term 2
  REQUIRE(c.campaign(1));
  c.run_for(100ms);  // 2 holds 1's no-op, so 3 votes for it
  c.isolate(1);
  REQUIRE(c.campaign(2));
  s.attach_all(c);
  c.heal();
  REQUIRE(c.run_until([&] { return !c.node(1).is_leader(); }, 1s));
  c.run_for(100ms);
  const auto roles = s[1].all<ev::role_changed>();
  REQUIRE(roles.size() == 1);
  CHECK((roles[0].from == role::leader && roles[0].to == role::follower && roles[0].why == event_reason::higher_term));
  const auto terms = s[1].all<ev::term_changed>();
  REQUIRE(terms.size() == 1);
  CHECK((terms[0].from == 1 && terms[0].to == 2 && terms[0].why == event_reason::higher_term));
  // It may hear term 2 first in a reply (no leader named), then 2's AppendEntries.
  const auto leaders = s[1].all<ev::leader_changed>();
  REQUIRE_FALSE(leaders.empty());
  CHECK((leaders.front().from == 1 && leaders.front().why == event_reason::higher_term));
  CHECK(leaders.back().to == 2);
  check_no_faults(s[1]);
}

TEST_CASE("§3.10 a leadership transfer is the reason of the target's election and of the old leader stepping down, "
          "and the leader reports its start and its end with the outcome") {
  sinks s;
  cluster c(options(3));
  REQUIRE(c.campaign(1));
  c.run_for(100ms);
  s.attach_all(c);
  bool handed = false;
  c.node(1).transfer_leadership(2, [&](std::error_code ec) { handed = !ec; });
  REQUIRE(c.run_until([&] { return handed; }, 1s));
  const auto started = s[2].all<ev::election_started>();
  REQUIRE(started.size() == 1);
  CHECK((!started[0].pre_vote && started[0].why == event_reason::transfer));
  CHECK(s[2].all<ev::role_changed>()[0].why == event_reason::transfer);
  const auto old = s[1].all<ev::role_changed>();
  REQUIRE(old.size() == 1);
  CHECK((old[0].from == role::leader && old[0].to == role::follower && old[0].why == event_reason::transfer));
  for (node_id id : c.ids()) check_no_faults(s[id]);

  // §3.10 the leader reports the transfer when it starts and when it ends, with its outcome.
  CHECK(s[1].names().front() == "transfer_started");
  REQUIRE(s[1].count<ev::transfer_started>() == 1);
  CHECK(s[1].all<ev::transfer_started>()[0].to == 2);
  const auto ended = s[1].all<ev::transfer_ended>();
  REQUIRE(ended.size() == 1);
  CHECK(ended[0].to == 2);
  CHECK_FALSE(ended[0].error);
  check_none<ev::transfer_started, ev::transfer_ended>(s[2]);

  // Node 2 leads; a transfer to a crashed node runs out of time and node 2 leads on.
  c.crash(3);
  std::error_code result;
  bool over = false;
  c.node(2).transfer_leadership(3, [&](std::error_code ec) { over = true, result = ec; });
  REQUIRE(c.run_until([&] { return over; }, 2s));
  CHECK(result == errc::timeout);
  const auto timed_out = s[2].all<ev::transfer_ended>();
  REQUIRE(timed_out.size() == 1);
  CHECK(timed_out[0].to == 3);
  CHECK(timed_out[0].error == errc::timeout);
  CHECK(c.node(2).is_leader());
}

TEST_CASE("a candidate with a stale log loses its election as rejected") {
  sinks s;
  cluster c(classic_options(3));
  REQUIRE(c.campaign(1));
  outcome x;
  propose(c, 1, "x", &x);
  REQUIRE(c.run_until([&] { return x.done; }, 1s));
  set_log(c, 3, {}, c.node(1).term());  // 3 lost its log
  s.attach(c, 3);
  c.expire_election_timer(3);
  c.run_for(50ms);
  const auto lost = s[3].all<ev::election_lost>();
  REQUIRE(lost.size() == 1);
  CHECK((!lost[0].pre_vote && lost[0].why == event_reason::rejected));
  check_none<ev::election_won>(s[3]);
}

TEST_CASE("a pre-vote a majority refuses is lost as rejected, and the pre-candidate returns to follower") {
  sinks s;
  auto o = options(3);
  o.node.leader_stickiness = false;  // voters answer (and refuse) rather than ignore
  cluster c(o);
  REQUIRE(c.campaign(1));
  outcome x;
  propose(c, 1, "x", &x);
  REQUIRE(c.run_until([&] { return x.done; }, 1s));
  set_log(c, 3, {}, c.node(1).term());
  s.attach(c, 3);
  c.expire_election_timer(3);
  c.run_for(50ms);
  const auto lost = s[3].all<ev::election_lost>();
  REQUIRE(lost.size() == 1);
  CHECK((lost[0].pre_vote && lost[0].why == event_reason::rejected));
  const auto roles = s[3].all<ev::role_changed>();
  REQUIRE(roles.size() == 2);
  CHECK((roles[1].from == role::pre_candidate && roles[1].to == role::follower && roles[1].why == event_reason::rejected));
  CHECK(s[3].count<ev::term_changed>() == 0);
}

TEST_CASE("§5.3 a follower truncating a conflicting suffix reports what it removed") {
  sinks s;
  cluster c(classic_options(3));
  set_log(c, 1, {1, 1, 3}, 3);
  set_log(c, 2, {1, 1, 3}, 3);
  set_log(c, 3, {1, 1, 2, 2}, 3);
  s.attach_all(c);
  REQUIRE(c.campaign(1));
  REQUIRE(c.run_until([&] { return logs_equal(c, {1, 2, 3}); }, 1s));
  const auto cut = s[3].all<ev::log_truncated>();
  REQUIRE(cut.size() == 1);
  CHECK(cut[0].after == 2);
  CHECK(cut[0].removed == 2);
  CHECK(cut[0].leader == 1);
  CHECK(s[1].count<ev::log_truncated>() == 0);
  CHECK(s[2].count<ev::log_truncated>() == 0);
}

TEST_CASE("a refused proposal reports why; an accepted one reports nothing") {
  sinks s;
  auto o = options(3);
  o.node.forward_proposals = false;
  o.node.max_bytes_per_message = 64;
  o.node.max_uncommitted_bytes = 64;
  cluster c(o);
  REQUIRE(c.campaign(1));
  c.run_for(100ms);
  s.attach_all(c);
  outcome ok, follower, big;
  propose(c, 1, "fine", &ok);
  propose(c, 2, "elsewhere", &follower);
  propose(c, 1, std::string(100, 'x'), &big);
  c.run_for(100ms);
  CHECK(follower.ec == errc::not_leader);
  CHECK(big.ec == errc::too_large);
  const auto on_leader = s[1].all<ev::proposal_refused>();
  REQUIRE(on_leader.size() == 1);
  CHECK(on_leader[0].why == errc::too_large);
  const auto on_follower = s[2].all<ev::proposal_refused>();
  REQUIRE(on_follower.size() == 1);
  CHECK(on_follower[0].why == errc::not_leader);
  CHECK(s[3].count<ev::proposal_refused>() == 0);
}

TEST_CASE("a log store that makes nothing durable for an election timeout is reported once, and again when it resumes") {
  sinks s;
  cluster c(options(3));
  REQUIRE(c.campaign(1));
  c.run_for(100ms);
  s.attach_all(c);
  c.store(2).set_write_delay(1s);
  outcome x;
  propose(c, 1, "x", &x);
  c.run_for(500ms);
  const auto stalled = s[2].all<ev::durability_stalled>();
  REQUIRE(stalled.size() == 1);
  CHECK(stalled[0].durable < stalled[0].last);
  CHECK(stalled[0].waited >= c.node(2).config().election_timeout);
  CHECK(s[2].count<ev::durability_resumed>() == 0);
  c.run_for(1s);
  const auto resumed = s[2].all<ev::durability_resumed>();
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].stalled_for >= 900ms);
  CHECK(s[2].count<ev::durability_stalled>() == 1);
  for (node_id id : {1, 3}) check_none<ev::durability_stalled, ev::durability_resumed>(s[id]);
}

TEST_CASE("a store that is merely slow (durable within the timeout) reports no stall") {
  sinks s;
  cluster c(options(3));
  REQUIRE(c.campaign(1));
  s.attach_all(c);
  c.store(2).set_write_delay(50ms);
  std::vector<outcome> done(10);
  for (auto& o : done) {
    propose(c, 1, "x", &o);
    c.run_for(20ms);
  }
  c.run_for(1s);
  for (node_id id : c.ids()) check_none<ev::durability_stalled, ev::durability_resumed>(s[id]);
}

namespace {
/// A memory log store whose appends fail with io_error once `fail` is set.
struct breaking_store {
  raftkit::memory::log_store inner;
  std::shared_ptr<bool> fail = std::make_shared<bool>(false);
  std::shared_ptr<std::error_code> err = std::make_shared<std::error_code>();
  index_t first_index() const { return inner.first_index(); }
  index_t last_index() const { return inner.last_index(); }
  term_t term_at(index_t i) const { return inner.term_at(i); }
  const entry& at(index_t i) const { return inner.at(i); }
  index_t durable_index() const { return inner.durable_index(); }
  void append(std::span<const entry> es) {
    if (*fail) *err = errc::io_error;
    else inner.append(es);
  }
  void truncate_after(index_t i) { inner.truncate_after(i); }
  raftkit::hard_state load_hard_state() const { return inner.load_hard_state(); }
  void save_hard_state(const raftkit::hard_state& hs) { inner.save_hard_state(hs); }
  std::error_code error() const { return *err; }
};
struct null_transport {
  void send(message&&) {}
};
using single_node = raftkit::basic_node<null_transport, breaking_store, recorder, raftkit::manual_clock>;
raftkit::node_config alone() {
  raftkit::node_config cfg;
  cfg.id = 1;
  cfg.members = {1};
  return cfg;
}
}  // namespace

TEST_CASE("a failing log store is reported as a storage error, then the stop, with the role given up") {
  recording_sink sink;
  breaking_store store;
  raftkit::manual_clock clock;
  single_node n(alone(), null_transport{}, store, recorder{}, clock);
  n.set_event_sink(&sink);
  clock.advance(1h);
  n.tick();
  REQUIRE(n.is_leader());
  sink.clear();
  *store.fail = true;
  n.propose(bytes_of("x"), [](std::error_code, index_t, index_t) {});
  REQUIRE(n.stopped());
  CHECK(sink.names() == std::vector<std::string>{"storage_error", "role_changed", "leader_changed", "node_stopped"});
  CHECK(sink.all<ev::storage_error>()[0].error == errc::io_error);
  CHECK(sink.all<ev::role_changed>()[0].why == event_reason::stopped);
  CHECK(sink.all<ev::node_stopped>()[0].why == errc::io_error);
}

TEST_CASE("stop() reports the stop and no storage error") {
  recording_sink sink;
  breaking_store store;
  raftkit::manual_clock clock;
  single_node n(alone(), null_transport{}, store, recorder{}, clock);
  n.set_event_sink(&sink);
  clock.advance(1h);
  n.tick();
  sink.clear();
  n.stop();
  CHECK(sink.names() == std::vector<std::string>{"role_changed", "leader_changed", "node_stopped"});
  CHECK(sink.all<ev::node_stopped>()[0].why == errc::shutting_down);
  n.stop();  // stopping again reports nothing
  CHECK(sink.seen.size() == 3);
}

TEST_CASE("a detached sink hears nothing") {
  recording_sink sink;
  breaking_store store;
  raftkit::manual_clock clock;
  single_node n(alone(), null_transport{}, store, recorder{}, clock);
  n.set_event_sink(&sink);
  n.set_event_sink(nullptr);
  clock.advance(1h);
  n.tick();
  REQUIRE(n.is_leader());
  n.stop();
  CHECK(sink.seen.empty());
}

using snap_cluster = raftkit::sim::cluster<snap_counter>;

TEST_CASE("§7 snapshots taken, failed, installed and sent are reported where they happen") {
  sinks s;
  auto o = options(3);
  o.node.snapshot_interval = 5;
  o.node.snapshot_trailing_entries = 0;
  snap_cluster c(o);
  REQUIRE(c.campaign(1));
  s.attach_all(c);
  c.crash(3);
  for (int i = 0; i < 12; ++i) {
    bool done = false;
    c.node(1).propose(bytes_of("x"), [&](std::error_code ec, index_t, index_t) { done = !ec; });
    REQUIRE(c.run_until([&] { return done; }, 1s));
  }
  const auto taken = s[1].all<ev::snapshot_taken>();
  REQUIRE(taken.size() == 2);  // at 5 and 10 applied entries (the no-op is the first)
  CHECK(taken[0].index == 5);
  CHECK(taken[1].index == 10);
  CHECK(taken[1].size == sizeof(std::uint64_t));
  CHECK(s[2].count<ev::snapshot_taken>() == 2);
  check_none<ev::snapshot_installed, ev::snapshot_failed>(s[1]);
  check_none<ev::snapshot_installed, ev::snapshot_failed>(s[2]);

  c.restart(3);  // it needs entries the leader compacted: it gets the snapshot
  s[3].clear();
  s.attach(c, 3);
  REQUIRE(c.run_until([&] { return c.node(3).applied_index() == c.node(1).applied_index(); }, 2s));
  const auto installed = s[3].all<ev::snapshot_installed>();
  REQUIRE(installed.size() == 1);
  CHECK(installed[0].index == 10);
  CHECK(installed[0].from == 1);
  const auto sent = s[1].all<ev::snapshot_sent>();  // the leader's side of the same install
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].index == 10);
  CHECK(sent[0].to == 3);
  CHECK(sent[0].size == sizeof(std::uint64_t));
  check_none<ev::snapshot_sent>(s[3]);
  check_none<ev::log_truncated, ev::snapshot_failed, ev::storage_error>(s[3]);

  *c.node(1).state_machine().fail_writes = true;
  for (int i = 0; i < 5; ++i) {
    bool done = false;
    c.node(1).propose(bytes_of("x"), [&](std::error_code ec, index_t, index_t) { done = !ec; });
    REQUIRE(c.run_until([&] { return done; }, 1s));
  }
  const auto failed = s[1].all<ev::snapshot_failed>();
  REQUIRE_FALSE(failed.empty());  // one per apply while the interval is due: it retries
  CHECK(failed[0].index == 15);
  for (const auto& f : failed) CHECK(f.error == errc::snapshot_failed);
  CHECK(s[1].count<ev::snapshot_taken>() == 2);
  check_none<ev::storage_error, ev::node_stopped>(s[1]);
}
}
