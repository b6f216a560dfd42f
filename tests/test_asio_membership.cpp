// raftkit::asio::node's membership calls over TCP on 127.0.0.1: a cluster grows by a node
// started with node_config::join and shrinks by one, each node keeping its transport's
// peers in step with the configuration (set_peer for members, remove_peer for the rest),
// as a server does from the members' contexts. Real time and real sockets: every wait is
// for a condition, with a bounded hang guard.

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "asio_waits.hpp"
#include "raftkit/asio/node.hpp"
#include "raftkit/events.hpp"
#include "raftkit/memory/log_store.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;
using raftkit::member_change;
using raftkit::node_id;
using asio_test::adder;
using asio_test::cmd;
using asio_test::get;
using asio_test::wait_for;

using node_t = raftkit::asio::node<raftkit::memory::log_store, adder>;

/// A member's context here: the port its transport listens on, in decimal.
std::uint16_t port_of(const std::string& context) {
  std::uint16_t p = 0;
  std::from_chars(context.data(), context.data() + context.size(), p);
  return p;
}

/// Nodes on one io_context run by one thread. Each keeps its transport's peers in step
/// with its configuration: on every config_changed event it reads members() and sets a
/// peer for each member (its address from the context, or, for the initial members, whose
/// contexts are empty, from the fixture's table) and removes every other peer it had.
struct dynamic_cluster {
  struct member {
    std::unique_ptr<node_t> node;
    std::unique_ptr<raftkit::event_sink> sink;
    std::set<node_id> peers;  // what the transport holds besides itself (io thread only)
    std::atomic<unsigned> joint_seen{0};
    std::atomic<unsigned> changes_seen{0};
  };

  ba::io_context io;
  ba::executor_work_guard<ba::io_context::executor_type> work{io.get_executor()};
  std::map<node_id, std::unique_ptr<member>> members;
  std::mutex ports_mu;
  std::map<node_id, std::uint16_t> ports;  // where each node listens
  std::thread runner;

  dynamic_cluster() {
    for (node_id id = 1; id <= 3; ++id) add(id, false);
    for (node_id id = 1; id <= 3; ++id) members[id]->node->start();
    runner = std::thread([this] { io.run(); });
  }
  ~dynamic_cluster() {
    // On the io thread, so no sync posted by an event runs on a node being destroyed.
    ba::post(io, [this] {
      for (auto& [id, m] : members) m->node.reset();
    });
    work.reset();
    runner.join();
  }

  std::uint16_t port(node_id id) {
    std::lock_guard lk(ports_mu);
    return ports.at(id);
  }

  /// Builds node `id` (not started): one of the initial three, or one that joins.
  node_t& add(node_id id, bool join) {
    raftkit::node_config cfg;
    cfg.id = id;
    if (join) cfg.join = true;
    else cfg.members = {1, 2, 3};
    cfg.election_timeout = 100ms;
    cfg.heartbeat_interval = 20ms;
    cfg.seed = 7;
    auto m = std::make_unique<member>();
    m->node = std::make_unique<node_t>(io.get_executor(), cfg, 99, raftkit::asio::cluster_map{{id, {"127.0.0.1", 0}}},
                                       raftkit::memory::log_store{}, adder{});
    {
      std::lock_guard lk(ports_mu);
      ports[id] = m->node->local_port();
    }
    member* raw = m.get();
    auto on_event = [this, raw](const raftkit::event& e) {
      const auto* c = e.get<raftkit::events::config_changed>();
      if (!c) return;
      ++raw->changes_seen;
      if (c->joint) ++raw->joint_seen;
      // A sink must not call into the node: the sync runs next, on the io thread.
      ba::post(io, [this, raw] {
        if (raw->node) raw->node->members([this, raw](raftkit::membership now) { sync(*raw, now); });
      });
    };
    m->sink = std::make_unique<raftkit::function_sink<decltype(on_event)>>(on_event);
    m->node->set_event_sink(m->sink.get());
    node_t& n = *m->node;
    if (!join) {
      // The initial configuration raises no event: wire the three once all are bound.
      members[id] = std::move(m);
      if (id == 3)
        for (node_id a = 1; a <= 3; ++a)
          for (node_id b = 1; b <= 3; ++b)
            if (a != b) {
              members[a]->node->set_peer(b, {"127.0.0.1", port(b)});
              members[a]->peers.insert(b);
            }
      return n;
    }
    members[id] = std::move(m);
    return n;
  }

  /// The configuration's members become the transport's peers.
  void sync(member& m, const raftkit::membership& now) {
    if (!m.node || now.voters.empty()) return;  // gone, or a joining node with no configuration yet
    const node_id self = m.node->config().id;
    std::set<node_id> want;
    for (node_id id : now.ids())
      if (id != self) want.insert(id);
    for (node_id id : want) {
      const auto* info = now.find(id);
      const std::uint16_t p = info->context.empty() ? port(id) : port_of(info->context);
      m.node->set_peer(id, {"127.0.0.1", p});
    }
    for (node_id id : m.peers)
      if (!want.contains(id)) m.node->remove_peer(id);
    m.peers = std::move(want);
  }

  node_t& at(node_id id) { return *members.at(id)->node; }

  raftkit::node_status status(node_id id) {
    auto f = at(id).status(ba::use_future);
    return get(f);
  }
  raftkit::membership config(node_id id) {
    auto f = at(id).members(ba::use_future);
    return get(f);
  }

  /// Polls until one of `running` leads and every one of them names it; returns its id.
  node_id wait_leader(const std::vector<node_id>& running) {
    node_id found = raftkit::no_node;
    REQUIRE(wait_for([&] {
      found = raftkit::no_node;
      for (node_id id : running)
        if (status(id).role == raftkit::role::leader) found = id;
      if (found == raftkit::no_node) return false;
      return std::all_of(running.begin(), running.end(), [&](node_id id) { return status(id).leader == found; });
    }));
    return found;
  }

  std::tuple<std::error_code, raftkit::index_t> change(node_id at_node, std::vector<member_change> changes) {
    auto f = at(at_node).change_membership(std::move(changes), ba::use_future);
    return get(f, 40s);
  }

  std::set<node_id> transport_peers(node_id id) {
    std::set<node_id> out;
    for (const auto& p : at(id).transport().peer_connections()) out.insert(p.id);
    return out;
  }
};

std::vector<node_id> ids_of(const std::vector<raftkit::member_info>& v) {
  std::vector<node_id> out;
  for (const auto& m : v) out.push_back(m.id);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_SUITE("asio_membership") {
  TEST_CASE("a node started with join is added as a voter, a follower is removed, and the transports follow") {
    dynamic_cluster c;
    const node_id leader = c.wait_leader({1, 2, 3});
    auto f0 = c.at(leader).propose(cmd(5), ba::use_future);
    CHECK_FALSE(std::get<0>(get(f0)));

    // The newcomer has no configuration and waits; it is told where the members listen
    // (raftkit-kv does this over HTTP before it asks the leader to add the node).
    node_t& joiner = c.add(4, true);
    joiner.start();
    CHECK(c.config(4).voters.empty());
    for (node_id id = 1; id <= 3; ++id) joiner.set_peer(id, {"127.0.0.1", c.port(id)});
    CHECK(c.status(4).role == raftkit::role::follower);

    const auto [ec, at] = c.change(leader, {member_change::add_voter(4, std::to_string(c.port(4)))});
    REQUIRE_MESSAGE(!ec, ec.message());
    CHECK(at > 0);
    const raftkit::membership grown = c.config(leader);
    CHECK(ids_of(grown.voters) == std::vector<node_id>{1, 2, 3, 4});
    CHECK(grown.learners.empty());
    CHECK_FALSE(grown.joint());
    CHECK(grown.index == at);
    CHECK(grown.find(4)->context == std::to_string(c.port(4)));
    CHECK(c.members.at(leader)->joint_seen > 0);  // it went through C_old,new
    // Every member, the newcomer included, holds the final configuration and talks to
    // every other one.
    for (node_id id = 1; id <= 4; ++id) {
      REQUIRE(wait_for([&] { return c.config(id).index == at; }));
      std::set<node_id> others{1, 2, 3, 4};
      others.erase(id);
      CHECK(wait_for([&] { return c.transport_peers(id) == others; }));
    }
    auto f1 = c.at(leader).propose(cmd(10), ba::use_future);
    const auto r1 = get(f1);
    CHECK_FALSE(std::get<0>(r1));
    CHECK(wait_for([&] { return c.status(4).applied_index >= std::get<1>(r1); }));

    // Remove a follower; the others stop talking to it.
    const node_id gone = leader == 1 ? 2 : 1;
    const auto [ec2, at2] = c.change(leader, {member_change::remove(gone)});
    REQUIRE_MESSAGE(!ec2, ec2.message());
    const raftkit::membership shrunk = c.config(leader);
    std::vector<node_id> left;
    for (node_id id = 1; id <= 4; ++id)
      if (id != gone) left.push_back(id);
    CHECK(ids_of(shrunk.voters) == left);
    CHECK_FALSE(shrunk.contains(gone));
    for (node_id id : left) {
      REQUIRE(wait_for([&] { return c.config(id).index == at2; }));
      CHECK(wait_for([&] { return !c.transport_peers(id).contains(gone); }));
    }
    c.at(gone).stop(ba::use_future).wait_for(5s);
    auto f2 = c.at(leader).propose(cmd(1), ba::use_future);
    const auto r2 = get(f2);
    CHECK_FALSE(std::get<0>(r2));
    CHECK(std::get<2>(r2) == 16);
    for (node_id id : left) CHECK(wait_for([&] { return c.status(id).applied_index >= std::get<1>(r2); }));
  }

  TEST_CASE("membership changes refused at once: on a follower, one at a time, and one that does not fit") {
    dynamic_cluster c;
    const node_id leader = c.wait_leader({1, 2, 3});
    const node_id follower = leader == 1 ? 2 : 1;
    const auto [e1, i1] = c.change(follower, {member_change::add_learner(9, "1")});
    CHECK(e1 == raftkit::errc::not_leader);
    CHECK(i1 == 0);
    const auto [e2, i2] = c.change(leader, {member_change::remove(9)});
    CHECK(e2 == raftkit::errc::invalid_membership_change);
    CHECK_FALSE(raftkit::may_have_applied(e2));
    // A learner that never answers (nothing listens for node 8) keeps the first change
    // waiting for it; the second is refused meanwhile.
    auto first = c.at(leader).change_membership({member_change::add_voter(8, "1")}, ba::use_future);
    const auto [e3, i3] = c.change(leader, {member_change::add_learner(7, "1")});
    CHECK(e3 == raftkit::errc::membership_change_in_progress);
    CHECK(first.wait_for(0s) == std::future_status::timeout);
    CHECK(c.config(leader).is_learner(8));
  }
}
