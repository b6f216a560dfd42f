// replicate/memory/nodes:N/payload:B — committed entries per second of an in-process
// cluster over the in-memory policies (no network or disk cost: this measures the
// engine), with a no-op state machine and a window of proposals kept in flight.
// Also counts heap allocations per committed entry (this file replaces global new).
// replicate/via_follower/...: the same with every proposal made on a follower, which
// forwards it to the leader (issue 10 finding 7: batched and indexed forwards).

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "raftkit/sim/cluster.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace

// GCC cannot see that these replacements pair malloc with free consistently.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

struct no_op {
  void apply(raftkit::index_t, std::span<const std::byte>) {}
};

void replicate_on(benchmark::State& state, bool via_follower) {
  const auto nodes = static_cast<std::size_t>(state.range(0));
  const auto payload_size = static_cast<std::size_t>(state.range(1));
  constexpr std::size_t window = 4096;  // proposals kept in flight

  raftkit::sim::cluster_options o;
  o.nodes = nodes;
  o.latency = raftkit::duration{0};
  o.node.max_pending_proposals = window * 2;
  raftkit::sim::cluster<no_op> c(o);
  const raftkit::node_id l = c.elect();
  if (l == raftkit::no_node) return state.SkipWithError("no leader");
  auto& leader = c.node(l);
  auto& proposer = c.node(via_follower ? (l == 1 ? 2 : 1) : l);
  const std::vector<std::byte> payload(payload_size, std::byte{0x5a});

  std::size_t in_flight = 0;
  std::uint64_t committed = 0;
  std::uint64_t failed = 0;
  auto done = [&](std::error_code ec, std::monostate) {
    --in_flight;
    if (ec) ++failed; else ++committed;
  };
  auto compact = [&] {
    raftkit::index_t low = leader.applied_index();
    for (raftkit::node_id id : c.ids()) low = std::min(low, c.node(id).applied_index());
    for (raftkit::node_id id : c.ids()) c.store(id).compact_before(low);
  };
  // Warm up: grow every ring, pool and queue to its working size.
  for (int round = 0; round < 64; ++round) {
    while (in_flight < window) {
      ++in_flight;
      proposer.propose(payload, done);
    }
    c.net().deliver_all();
  }
  compact();

  const std::uint64_t start_committed = committed;
  const std::uint64_t start_allocs = g_allocations.load();
  std::uint64_t rounds = 0;
  for (auto _ : state) {
    while (in_flight < window) {
      ++in_flight;
      proposer.propose(payload, done);
    }
    c.net().deliver_all();
    if (++rounds % 64 == 0) compact();
  }
  const double n = static_cast<double>(committed - start_committed);
  state.SetItemsProcessed(static_cast<std::int64_t>(committed - start_committed));
  state.SetBytesProcessed(static_cast<std::int64_t>((committed - start_committed) * payload_size));
  state.counters["allocs_per_entry"] =
      n > 0 ? static_cast<double>(g_allocations.load() - start_allocs) / n : 0.0;
  state.counters["failed"] = static_cast<double>(failed);
  if (!leader.is_leader()) state.SkipWithError("leadership changed during the run");
}

void replicate(benchmark::State& state) { replicate_on(state, false); }
void replicate_via_follower(benchmark::State& state) { replicate_on(state, true); }

}  // namespace

BENCHMARK(replicate)
    ->Name("replicate/memory")
    ->ArgNames({"nodes", "payload"})
    ->ArgsProduct({{3, 5}, {16, 256, 4096}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(replicate_via_follower)
    ->Name("replicate/via_follower")
    ->ArgNames({"nodes", "payload"})
    ->ArgsProduct({{3}, {16, 256}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
