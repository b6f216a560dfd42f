// raftkit::asio::node reads and leadership transfer (issue 11): reads answered by the
// state machine's query() after the engine's ReadIndex (on the leader and on followers),
// lease and local reads, the fallback through the log for a state machine without query,
// and transfer_leadership through completion tokens. Three drivers over TCP on 127.0.0.1,
// each on its own io_context and thread, so that one can be paused (its thread held) the
// way SIGSTOP pauses a process. Real time is only a hang guard: every wait is for a
// condition.

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <vector>

#include "asio_waits.hpp"
#include "raftkit/asio/node.hpp"
#include "raftkit/memory/log_store.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;
using raftkit::read_consistency;

/// A running total: a command adds its first 8 bytes. With `Query`, reads are answered
/// by query() (the total), and `queries` counts them.
template <bool Query>
struct total_machine {
  std::int64_t total = 0;
  std::shared_ptr<std::atomic<int>> queries = std::make_shared<std::atomic<int>>(0);  // (read by the test's thread)
  std::int64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    std::int64_t d = 0;
    std::memcpy(&d, cmd.data(), std::min(cmd.size(), sizeof d));
    return total += d;
  }
  std::int64_t query(std::span<const std::byte>) const
    requires Query
  {
    ++*queries;
    return total;
  }
};
using queryable = total_machine<true>;
using log_only = total_machine<false>;
static_assert(raftkit::has_query<queryable> && !raftkit::has_query<log_only>);

std::vector<std::byte> add(std::int64_t d) {
  std::vector<std::byte> v(sizeof d);
  std::memcpy(v.data(), &d, sizeof d);
  return v;
}

using answer = std::tuple<std::error_code, raftkit::index_t, std::int64_t>;

using asio_test::get;
using asio_test::wait_for;

/// Three nodes, each on its own io_context and thread.
template <class Machine = queryable>
struct trio {
  using node_t = raftkit::asio::node<raftkit::memory::log_store, Machine>;
  struct member {
    ba::io_context io;
    ba::executor_work_guard<ba::io_context::executor_type> work{io.get_executor()};
    std::unique_ptr<node_t> n;
    std::thread runner;
    std::optional<std::promise<void>> resume;  // set while paused
  };
  std::array<member, 3> m;
  std::array<Machine, 3> machines;  // copies share `queries` with the nodes' machines

  explicit trio(bool lease_reads = false, raftkit::asio::node_options opts = {},
                raftkit::duration election_timeout = std::chrono::milliseconds(100)) {
    raftkit::asio::cluster_map map;
    for (raftkit::node_id id = 1; id <= 3; ++id) map[id] = {"127.0.0.1", 0};
    for (raftkit::node_id id = 1; id <= 3; ++id) {
      raftkit::node_config cfg;
      cfg.id = id;
      cfg.members = {1, 2, 3};
      cfg.election_timeout = election_timeout;
      cfg.heartbeat_interval = election_timeout / 5;
      cfg.lease_reads = lease_reads;
      cfg.seed = 11;
      auto& x = m[id - 1];
      x.n = std::make_unique<node_t>(x.io.get_executor(), cfg, 77, map, raftkit::memory::log_store{},
                                     machines[id - 1], raftkit::asio::tcp_options{}, opts);
    }
    for (std::size_t a = 0; a < 3; ++a)
      for (std::size_t b = 0; b < 3; ++b)
        if (a != b) m[a].n->set_peer(b + 1, {"127.0.0.1", m[b].n->local_port()});
    for (auto& x : m) x.runner = std::thread([&x] { x.io.run(); });
    for (auto& x : m) x.n->start();
  }
  ~trio() {
    for (std::size_t i = 0; i < 3; ++i) unpause(i);
    for (auto& x : m) {
      x.n.reset();
      x.work.reset();
      x.runner.join();
    }
  }

  node_t& node(std::size_t i) { return *m[i].n; }
  raftkit::node_status status(std::size_t i) {
    auto f = node(i).status(ba::use_future);
    return get(f);
  }
  answer read(std::size_t i, read_consistency c) {
    auto f = node(i).read(add(0), c, ba::use_future);
    return get(f);
  }
  answer propose(std::size_t i, std::int64_t d) {
    auto f = node(i).propose(add(d), ba::use_future);
    return get(f);
  }

  /// Holds node i's thread, as SIGSTOP holds a process: nothing of it runs until unpause.
  void pause(std::size_t i) {
    auto entered = std::make_shared<std::promise<void>>();
    auto& x = m[i];
    x.resume.emplace();
    ba::post(x.io, [entered, go = x.resume->get_future()]() mutable {
      entered->set_value();
      go.wait();
    });
    entered->get_future().wait();
  }
  void unpause(std::size_t i) {
    if (auto& r = m[i].resume) {
      r->set_value();
      r.reset();
    }
  }

  /// Waits until every node in `among` names the same leader, one of them, which says it
  /// leads and has committed an entry of its term (so ReadIndex need not wait for one).
  std::size_t leader(std::vector<std::size_t> among = {0, 1, 2}) {
    std::optional<std::size_t> found;
    const bool ok = wait_for([&] {
      for (std::size_t i : among) {
        const auto s = status(i);
        if (s.role != raftkit::role::leader || s.commit_index < s.last_log_index) continue;
        bool agree = true;
        for (std::size_t j : among) agree = agree && status(j).leader == i + 1;
        if (agree) found = i;
        return agree;
      }
      return false;
    });
    REQUIRE(ok);
    return *found;
  }
};

std::error_code code(const answer& a) { return std::get<0>(a); }
std::int64_t value(const answer& a) {
  CHECK_MESSAGE(!std::get<0>(a), std::get<0>(a).message());
  return std::get<2>(a);
}

}  // namespace

TEST_SUITE("asio_reads") {
  TEST_CASE("a read on the leader is answered by query() after a ReadIndex round, with no log entry") {
    trio<> t;
    const std::size_t l = t.leader();
    REQUIRE(value(t.propose(l, 5)) == 5);
    const auto before = t.status(l);
    const auto rounds = t.node(l).counters().read_rounds;
    const int queries = *t.machines[l].queries;
    const answer a = t.read(l, read_consistency::linearizable);
    CHECK(value(a) == 5);
    CHECK(std::get<1>(a) >= before.commit_index);  // applied at least what was committed before
    CHECK(*t.machines[l].queries == queries + 1);
    // (counters() are published after the input that completed the read: poll.)
    CHECK(wait_for([&] { return t.node(l).counters().read_rounds > rounds; }));
    CHECK(t.status(l).last_log_index == before.last_log_index);  // nothing appended
  }

  TEST_CASE("a read on a follower asks the leader for the index and is answered from the follower's own state") {
    trio<> t;
    const std::size_t l = t.leader();
    const std::size_t f = (l + 1) % 3;
    REQUIRE(value(t.propose(l, 7)) == 7);
    const auto log_before = t.status(l).last_log_index;
    const int leader_queries = *t.machines[l].queries;
    // No wait for the follower to apply 7 first: the read itself waits for that.
    CHECK(value(t.read(f, read_consistency::linearizable)) == 7);
    CHECK(*t.machines[f].queries == 1);                    // the follower's machine answered
    CHECK(*t.machines[l].queries == leader_queries);       // not the leader's
    CHECK(t.node(f).counters().forwarded == 0);            // no proposal forwarded
    CHECK(t.node(l).counters().reads >= 1);                // the leader gave the index
    CHECK(t.status(l).last_log_index == log_before);
  }

  TEST_CASE("lease reads are answered from the leader's lease with no round; refused without lease_reads") {
    {
      // A long election timeout makes a long lease (450 ms, renewed every 100 ms), which a
      // loaded machine does not let lapse between the check and the read.
      trio<> t(true, {}, std::chrono::milliseconds(500));
      const std::size_t l = t.leader();
      REQUIRE(value(t.propose(l, 3)) == 3);
      REQUIRE(wait_for([&] { return t.status(l).lease_valid; }));
      const auto lease_reads = t.node(l).counters().lease_reads;
      CHECK(value(t.read(l, read_consistency::lease)) == 3);
      CHECK(wait_for([&] { return t.node(l).counters().lease_reads == lease_reads + 1; }));
      const std::size_t f = (l + 1) % 3;
      CHECK(value(t.read(f, read_consistency::lease)) == 3);  // a follower's lease read asks the leader
    }
    trio<> t(false);
    const std::size_t l = t.leader();
    CHECK(code(t.read(l, read_consistency::lease)) == raftkit::errc::not_supported);
    CHECK_FALSE(raftkit::may_have_applied(raftkit::errc::not_supported));
  }

  TEST_CASE("a local read answers from the node's state as it is, with the leader paused; the options' default applies") {
    raftkit::asio::node_options opts;
    opts.default_read_consistency = read_consistency::local;
    trio<> t(false, opts);
    const std::size_t l = t.leader();
    const std::size_t f = (l + 1) % 3;
    REQUIRE(value(t.propose(l, 4)) == 4);
    REQUIRE(wait_for([&] { return t.status(f).applied_index >= t.status(l).commit_index; }));
    t.pause(l);
    auto local = t.node(f).read(add(0), ba::use_future);  // the default: local
    CHECK(value(get(local)) == 4);
    // A linearizable read needs the leader: it does not complete while the leader is
    // paused (the follower's forward times out, or a new leader answers after an election).
    auto lin = t.node(f).read(add(0), read_consistency::linearizable, ba::use_future);
    CHECK(lin.wait_for(20ms) == std::future_status::timeout);
    t.unpause(l);
    const answer a = get(lin);
    CHECK((code(a) || std::get<2>(a) == 4));
  }

  TEST_CASE("a read on a deposed leader fails and never returns the stale value") {
    trio<> t(true);
    const std::size_t old = t.leader();
    REQUIRE(value(t.propose(old, 5)) == 5);
    REQUIRE(wait_for([&] { return t.status(old).lease_valid; }));
    t.pause(old);
    std::vector<std::size_t> rest;
    for (std::size_t i = 0; i < 3; ++i)
      if (i != old) rest.push_back(i);
    const std::size_t fresh = t.leader(rest);
    REQUIRE(value(t.propose(fresh, 10)) == 15);
    // Queued while the old leader is paused; it runs them first when it resumes, still
    // believing it leads (it has not heard the new term yet).
    auto local = t.node(old).read(add(0), read_consistency::local, ba::use_future);
    auto lin = t.node(old).read(add(0), read_consistency::linearizable, ba::use_future);
    auto lease = t.node(old).read(add(0), read_consistency::lease, ba::use_future);
    t.unpause(old);
    const answer l = get(local), a = get(lin), b = get(lease);
    CHECK(value(l) == 5);  // what a read without the round would answer: the setup is stale
    for (const answer& r : {a, b}) {
      if (code(r)) {
        MESSAGE("the deposed leader's read failed with: " << code(r).message());
      } else {
        CHECK(std::get<2>(r) == 15);
      }
    }
  }

  TEST_CASE("a state machine without query() has its reads proposed through the log") {
    trio<log_only> t;
    const std::size_t l = t.leader();
    REQUIRE(value(t.propose(l, 2)) == 2);
    const auto last = t.status(l).last_log_index;
    const answer a = t.read(l, read_consistency::lease);  // any consistency: the log
    CHECK(value(a) == 2);
    CHECK(std::get<1>(a) == last + 1);  // it took a log entry
    CHECK(t.status(l).last_log_index == last + 1);
  }

  TEST_CASE("transfer_leadership hands over through use_future and a callback; bad requests fail at once") {
    trio<> t;
    const std::size_t l = t.leader();
    const std::size_t target = (l + 1) % 3;
    auto f = t.node(l).transfer_leadership(target + 1, ba::use_future);
    const std::error_code ec = get(f);
    CHECK_MESSAGE(!ec, ec.message());
    CHECK(t.status(target).role == raftkit::role::leader);
    CHECK(t.node(l).counters().transfers == 1);
    CHECK(t.leader() == target);

    std::promise<std::error_code> p;
    t.node(target).transfer_leadership(raftkit::any_node, [&](std::error_code e) { p.set_value(e); });
    auto cb = p.get_future();
    const std::error_code any = get(cb);
    CHECK_MESSAGE(!any, any.message());
    const std::size_t now = t.leader();
    CHECK(now != target);

    auto on_follower = t.node(target).transfer_leadership(now + 1, ba::use_future);
    CHECK(get(on_follower) == raftkit::errc::not_leader);
    auto unknown = t.node(now).transfer_leadership(42, ba::use_future);
    CHECK(get(unknown) == raftkit::errc::unknown_member);
  }
}
