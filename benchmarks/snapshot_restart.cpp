// snapshot-restart: how long a node that has applied N 16-byte entries takes to restart,
// restoring its newest snapshot and replaying the log after it, against one without
// snapshots that replays the whole log. Opt-in (not run by CI): benchmarks/snapshot_figures.
//
//   snapshot-restart [--entries 1000000] [--rounds 3] [--dir /var/tmp]
//
// One engine (basic_node) with a file::log_store in a real directory, a single-member
// cluster driven by hand on a manual clock: no network, no timers, so the time measured is
// the restart's own work. Each variant's directory is filled once; then the restarts
// alternate between the variants (one round: a restart of each), so machine noise hits
// both alike. A restart is: open the log (reading its segments back), build the node
// (restoring the snapshot), elect itself, and apply up to the log's end.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "raftkit/file/log_store.hpp"
#include "raftkit/file/snapshot_store.hpp"
#include "raftkit/manual_clock.hpp"
#include "raftkit/memory/transport.hpp"
#include "raftkit/node.hpp"

namespace {

namespace fs = std::filesystem;
using bench_clock = std::chrono::steady_clock;

/// 1000 slots of 8 bytes; an entry is (slot u64, value u64): 16 bytes.
struct slots {
  std::vector<std::uint64_t> v = std::vector<std::uint64_t>(1000);
  std::uint64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    if (cmd.size() != 16) return 0;
    std::uint64_t k = 0, x = 0;
    std::memcpy(&k, cmd.data(), 8);
    std::memcpy(&x, cmd.data() + 8, 8);
    return v[k % v.size()] = x;
  }
  struct view {
    std::vector<std::uint64_t> v;
    std::error_code write(raftkit::snapshot_writer& w) const {
      return w.write(std::as_bytes(std::span(v.data(), v.size())));
    }
  };
  view snapshot() const { return {v}; }
  std::error_code restore(raftkit::snapshot_reader& r) {
    if (r.size() != v.size() * 8) return make_error_code(raftkit::errc::corrupt_snapshot);
    return r.read_exact(std::as_writable_bytes(std::span(v.data(), v.size())))
               ? std::error_code{}
               : make_error_code(raftkit::errc::corrupt_snapshot);
  }
};

using store_ref = raftkit::log_store_ref<raftkit::file::log_store>;
template <class Snaps>
using engine = raftkit::basic_node<raftkit::memory::transport, store_ref, slots, raftkit::manual_clock, Snaps>;

raftkit::node_config config(bool snapshots) {
  raftkit::node_config cfg;
  cfg.id = 1;
  cfg.members = {1};
  cfg.snapshot_interval = snapshots ? 100'000 : 0;
  return cfg;
}

template <class Snaps>
Snaps open_snaps(const fs::path& dir) {
  if constexpr (std::is_same_v<Snaps, raftkit::no_snapshots>) {
    (void)dir;
    return {};
  } else {
    return Snaps((dir / "snapshots").string());
  }
}

/// Ticks and notifies until the node leads and has applied its whole log.
template <class E>
void run_to_end(E& n, raftkit::manual_clock& clock) {
  while (!n.is_leader() || n.applied_index() < n.log().last_index() || n.commit_index() < n.log().last_index()) {
    clock.advance(n.config().election_timeout);
    n.notify_durable();
    n.tick();
    if (n.error()) {
      std::fprintf(stderr, "snapshot-restart: node failed: %s\n", n.error().message().c_str());
      std::exit(1);
    }
  }
}

/// 8 MiB segments (the default is 64): compaction deletes whole segments, so with the
/// default one segment would hold the whole million and the restart would read it all.
raftkit::file::options log_options() {
  raftkit::file::options o;
  o.segment_size = 8u << 20;
  return o;
}

template <class Snaps>
void fill(const fs::path& dir, std::uint64_t entries) {
  raftkit::file::log_store log((dir / "log").string(), log_options());
  auto net = std::make_shared<raftkit::memory::network>();
  raftkit::manual_clock clock;
  engine<Snaps> n(config(!std::is_same_v<Snaps, raftkit::no_snapshots>), raftkit::memory::transport(net, 1),
                  store_ref(log), slots{}, clock, open_snaps<Snaps>(dir));
  run_to_end(n, clock);
  std::vector<std::byte> cmd(16);
  for (std::uint64_t i = 0; i < entries;) {
    n.batch([&] {
      for (int b = 0; b < 4096 && i < entries; ++b, ++i) {
        const std::uint64_t k = i % 1000, x = i;
        std::memcpy(cmd.data(), &k, 8);
        std::memcpy(cmd.data() + 8, &x, 8);
        n.propose(std::span<const std::byte>(cmd), [](std::error_code, std::uint64_t) {});
      }
    });
    run_to_end(n, clock);
  }
}

struct restart_result {
  double seconds = 0;
  std::uint64_t replayed = 0;  // entries applied by the restarted node
  raftkit::index_t snapshot = 0;
};

template <class Snaps>
restart_result restart(const fs::path& dir) {
  const auto t0 = bench_clock::now();
  raftkit::file::log_store log((dir / "log").string(), log_options());
  auto net = std::make_shared<raftkit::memory::network>();
  raftkit::manual_clock clock;
  engine<Snaps> n(config(!std::is_same_v<Snaps, raftkit::no_snapshots>), raftkit::memory::transport(net, 1),
                  store_ref(log), slots{}, clock, open_snaps<Snaps>(dir));
  run_to_end(n, clock);
  restart_result r;
  r.seconds = std::chrono::duration<double>(bench_clock::now() - t0).count();
  r.replayed = n.counters().applied;
  r.snapshot = n.status().snapshot_index;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t entries = 1'000'000;
  int rounds = 3;
  std::string base = "/var/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--entries") entries = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--rounds") rounds = std::atoi(argv[i + 1]);
    else if (a == "--dir") base = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: snapshot-restart [--entries N] [--rounds R] [--dir D]\n");
      return 2;
    }
  }
  const fs::path root = fs::path(base) / ("raftkit-restart-" + std::to_string(::getpid()));
  const fs::path with = root / "snapshots", without = root / "replay";
  fs::create_directories(with);
  fs::create_directories(without);
  const auto f0 = bench_clock::now();
  fill<raftkit::file::snapshot_store>(with, entries);
  fill<raftkit::no_snapshots>(without, entries);
  std::printf("filled two logs with %llu 16-byte entries in %.1f s\n", static_cast<unsigned long long>(entries),
              std::chrono::duration<double>(bench_clock::now() - f0).count());
  std::printf("%-6s %-22s %10s %12s %14s\n", "round", "variant", "seconds", "replayed", "snapshot index");
  double sum_with = 0, sum_without = 0;
  for (int r = 0; r < rounds; ++r) {
    const restart_result a = restart<raftkit::file::snapshot_store>(with);
    const restart_result b = restart<raftkit::no_snapshots>(without);
    sum_with += a.seconds;
    sum_without += b.seconds;
    std::printf("%-6d %-22s %10.3f %12llu %14llu\n", r, "snapshot + tail", a.seconds,
                static_cast<unsigned long long>(a.replayed), static_cast<unsigned long long>(a.snapshot));
    std::printf("%-6d %-22s %10.3f %12llu %14s\n", r, "full replay", b.seconds,
                static_cast<unsigned long long>(b.replayed), "-");
  }
  std::printf("mean restart: with snapshots %.3f s, full replay %.3f s (ratio %.2f)\n", sum_with / rounds,
              sum_without / rounds, sum_without > 0 ? sum_with / sum_without : 0.0);
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
