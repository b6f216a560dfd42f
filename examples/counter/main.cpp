// The smallest complete raftkit program: three nodes in one process over the in-memory
// policies replicate a counter. Halfway through, the leader is stopped; the others elect
// a new one and the counter carries on. Every node prints its value at the end.
//
// It drives the nodes by hand (deliver messages, move the clocks, tick) to show what a
// driver does; sim::cluster and the Asio driver do the same for you.

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "raftkit/raftkit.hpp"

namespace {

/// The user's state machine: a counter. `apply` gets each committed command once, in
/// order, and its return value goes back to the proposer.
struct counter {
  std::int64_t value = 0;
  std::int64_t apply(raftkit::index_t, std::span<const std::byte> command) {
    std::int64_t delta = 0;
    std::memcpy(&delta, command.data(), std::min(command.size(), sizeof delta));
    return value += delta;
  }
};

using node = raftkit::basic_node<raftkit::memory::transport, raftkit::memory::log_store, counter,
                                 raftkit::manual_clock>;

}  // namespace

int main() {
  using namespace std::chrono_literals;
  auto net = std::make_shared<raftkit::memory::network>(200us);
  raftkit::manual_clock clock;  // one time for all three (copies share it)
  std::array<std::optional<node>, 3> nodes;
  for (raftkit::node_id id = 1; id <= 3; ++id) {
    raftkit::node_config cfg;
    cfg.id = id;
    cfg.members = {1, 2, 3};
    cfg.seed = 42;
    nodes[id - 1].emplace(cfg, raftkit::memory::transport(net, id), raftkit::memory::log_store{},
                          counter{}, clock);
    net->attach(id, [&nodes, id](raftkit::message&& m) { nodes[id - 1]->receive(std::move(m)); });
  }
  std::array<bool, 3> running{true, true, true};

  auto run = [&](raftkit::duration d) {  // one millisecond at a time
    for (auto t = raftkit::duration{0}; t < d; t += 1ms) {
      clock.advance(1ms);
      net->advance_to(clock.now());
      net->deliver_all();
      for (int i = 0; i < 3; ++i)
        if (running[i]) nodes[i]->tick();
    }
  };
  auto leader = [&]() -> int {
    for (int i = 0; i < 3; ++i)
      if (running[i] && nodes[i]->is_leader()) return i;
    return -1;
  };
  auto add = [&](std::int64_t delta) {
    run(500ms);  // long enough for an election if there is none
    const int l = leader();
    if (l < 0) return std::printf("no leader\n"), void();
    nodes[l]->propose(std::as_bytes(std::span(&delta, 1)), [l](std::error_code ec, std::int64_t v) {
      if (ec) std::printf("  +? failed on node %d: %s\n", l + 1, ec.message().c_str());
      else std::printf("  node %d (leader) applied it: counter = %lld\n", l + 1, static_cast<long long>(v));
    });
    run(20ms);
  };

  std::printf("3 nodes start; they elect a leader\n");
  for (std::int64_t d : {1, 2, 3}) add(d);
  const int old = leader();
  std::printf("node %d (the leader, term %llu) stops\n", old + 1,
              static_cast<unsigned long long>(nodes[old]->term()));
  nodes[old]->stop();
  net->detach(static_cast<raftkit::node_id>(old + 1));
  running[old] = false;
  for (std::int64_t d : {10, 20}) add(d);
  run(100ms);  // a heartbeat brings the last commit index to the follower
  std::printf("node %d is the new leader (term %llu)\n", leader() + 1,
              static_cast<unsigned long long>(nodes[leader()]->term()));
  for (int i = 0; i < 3; ++i)
    std::printf("node %d: counter = %lld%s\n", i + 1,
                static_cast<long long>(nodes[i]->state_machine().value),
                running[i] ? "" : " (stopped after the first three additions)");
  const bool ok = nodes[leader()]->state_machine().value == 36 &&
                  nodes[3 - old - leader()]->state_machine().value == 36;
  return ok ? 0 : 1;
}
