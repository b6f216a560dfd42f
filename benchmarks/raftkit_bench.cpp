// raftkit-bench: throughput and latency of a real three-process raftkit cluster on
// loopback, in the shape of NuRaft's raft_bench.
//
// The benchmark process runs node 1 (the leader: it gets the shortest election timeout)
// and re-executes itself twice with the hidden `--serve ID` mode as followers 2 and 3.
// Closed-loop clients in the leader's process each propose a payload through the Asio
// driver, wait for its completion, record the latency (steady_clock) and propose again.
// The clients are completion-driven chains on the driver's executor rather than OS
// threads: the engine is single-threaded, so threads would only add contention.
//
//   raftkit-bench --clients 64 --payload 16 --duration 5 --log memory [--json] [--snapshot-every N]
//
// --snapshot-every N: every node snapshots every N applied entries (file::snapshot_store
// beside a file log, memory::snapshot_store with the memory one) and compacts its log, as
// a long-running service does; the state machine's snapshot is empty, so what is measured
// is the cost of snapshotting and compaction to the log path.
//
// Followers die with the benchmark (SIGTERM, then SIGKILL; PR_SET_PDEATHSIG as a last
// resort); file logs and the followers' counters live in a temporary directory removed at
// exit.
//
// Elections: a healthy run has none. The output reports the elections every node started
// during the measured window (each follower appends its counters to a file when the
// benchmark sends it SIGUSR1, at the start and at the end of the window) and the terms
// the leader went through.

#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "raftkit/asio/node.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/file/snapshot_store.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"

namespace {

namespace fs = std::filesystem;
using bench_clock = std::chrono::steady_clock;

/// The replicated state: nothing. The benchmark measures the log, not the machine.
struct noop_state_machine {
  void apply(raftkit::index_t, std::span<const std::byte>) noexcept {}
  /// Its (empty) snapshot, for --snapshot-every.
  struct view {
    std::error_code write(raftkit::snapshot_writer&) const { return {}; }
  };
  view snapshot() const { return {}; }
  std::error_code restore(raftkit::snapshot_reader&) { return {}; }
};

struct settings {
  int clients = 1;
  std::size_t payload = 16;
  double duration = 5.0;
  double warmup = 0.5;
  std::string log = "memory";
  bool json = false;
  bool verbose = false;
  std::size_t inflight = raftkit::node_config{}.max_inflight_messages;
  unsigned follower_timeout_ms = 1500;
  std::size_t queue_kib = raftkit::asio::tcp_options{}.max_queue_bytes >> 10;
  std::size_t write_kib = raftkit::asio::tcp_options{}.max_write_bytes >> 10;
  std::uint64_t snapshot_every = 0;  // 0: no snapshots
  // hidden --serve mode
  unsigned serve = 0;
  unsigned base_port = 0;
  std::string dir;
  std::string counters_file;  // --serve: where SIGUSR1 appends "elections term"
};

constexpr std::uint64_t cluster_id = 0xBE7C4;

raftkit::asio::cluster_map make_peers(unsigned base_port) {
  raftkit::asio::cluster_map peers;
  for (raftkit::node_id id = 1; id <= 3; ++id)
    peers[id] = raftkit::asio::peer_address{"127.0.0.1", static_cast<std::uint16_t>(base_port + id)};
  return peers;
}

raftkit::node_config make_config(const settings& s, raftkit::node_id id) {
  using namespace std::chrono_literals;
  raftkit::node_config cfg;
  cfg.id = id;
  cfg.members = {1, 2, 3};
  cfg.seed = 7;
  // Node 1 (in the benchmark process) should win the first election; the followers
  // wait long enough not to compete while the cluster is healthy.
  cfg.election_timeout =
      id == 1 ? raftkit::duration(150ms) : raftkit::duration(std::chrono::milliseconds(s.follower_timeout_ms));
  cfg.heartbeat_interval = 30ms;
  // The driver proposes what piles up on the strand in one engine batch(), so the
  // engine's default window needs no tuning; --inflight is there to study it.
  cfg.max_inflight_messages = s.inflight;
  cfg.snapshot_interval = s.snapshot_every;
  return cfg;
}

raftkit::asio::tcp_options make_tcp_options(const settings& s) {
  raftkit::asio::tcp_options t;
  t.max_queue_bytes = s.queue_kib << 10;
  t.max_write_bytes = s.write_kib << 10;
  return t;
}

std::string node_dir(const std::string& root, raftkit::node_id id) {
  return root + "/node" + std::to_string(id);
}

/// Calls f(type tag, factory, snapshot factory) with a factory that makes the log store
/// asked for (the driver builds a store that cannot move, like file::log_store, in place
/// from it) and one that makes the snapshot store (no_snapshots without --snapshot-every).
template <class F>
void with_store(const settings& s, raftkit::node_id id, F&& f) {
  const std::string dir = node_dir(s.dir, id);
  auto with_snapshots = [&](auto tag, auto make) {
    if (s.snapshot_every == 0) return f(tag, make, [] { return raftkit::no_snapshots{}; });
    if (s.log == "file") return f(tag, make, [dir] { return raftkit::file::snapshot_store(dir + "/snapshots"); });
    f(tag, make, [] { return raftkit::memory::snapshot_store{}; });
  };
  if (s.log == "file") {
    fs::create_directories(dir);
    with_snapshots(std::type_identity<raftkit::file::log_store>{}, [dir] { return raftkit::file::log_store(dir); });
  } else {
    with_snapshots(std::type_identity<raftkit::memory::log_store>{}, [] { return raftkit::memory::log_store{}; });
  }
}

/// The node of a with_store call, built in `slot` (a node cannot move).
template <class Store, class MakeSnaps>
using bench_node = raftkit::asio::node<Store, noop_state_machine, raftkit::asio::tcp_transport,
                                       std::invoke_result_t<MakeSnaps&>>;

template <class Node, class Make, class MakeSnaps>
Node& emplace_node(std::optional<Node>& slot, boost::asio::io_context& io, const settings& s, raftkit::node_id id,
                   Make& make, MakeSnaps& make_snaps) {
  if constexpr (std::is_same_v<typename Node::snapshot_store_type, raftkit::no_snapshots>) {
    slot.emplace(io.get_executor(), make_config(s, id), cluster_id, make_peers(s.base_port), make,
                 noop_state_machine{}, make_tcp_options(s));
  } else {
    slot.emplace(io.get_executor(), make_config(s, id), cluster_id, make_peers(s.base_port), make,
                 noop_state_machine{}, make_snaps(), make_tcp_options(s));
  }
  return *slot;
}

// ------------------------------------------------------------------ follower mode

int serve(const settings& s) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return 1;  // the benchmark is already gone
  boost::asio::io_context io;
  int rc = 0;
  with_store(s, s.serve, [&]<class Store>(std::type_identity<Store>, auto make, auto make_snaps) {
    std::optional<bench_node<Store, decltype(make_snaps)>> slot;
    auto& n = emplace_node(slot, io, s, s.serve, make, make_snaps);
    n.start();
    boost::asio::signal_set sigs(io, SIGTERM, SIGINT);
    sigs.async_wait([&](const boost::system::error_code&, int) {
      n.stop([&io] { io.stop(); });
    });
    // SIGUSR1: append this node's elections and term to the counters file. The signal
    // was blocked since fork, so one sent before this handler existed waits for it.
    boost::asio::signal_set usr(io, SIGUSR1);
    std::function<void()> report = [&] {
      usr.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        n.status([&](raftkit::node_status st) {
          std::ofstream out(s.counters_file, std::ios::app);
          out << n.counters().elections << ' ' << st.term << '\n';
        });
        report();
      });
    };
    if (!s.counters_file.empty()) report();
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    ::sigprocmask(SIG_UNBLOCK, &usr1, nullptr);
    try {
      io.run();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "raftkit-bench follower %u: %s\n", s.serve, e.what());
      rc = 1;
    }
  });
  return rc;
}

// ------------------------------------------------------------------ children

std::string counters_file(const settings& s, raftkit::node_id id) {
  return s.dir + "/node" + std::to_string(id) + ".counters";
}

/// A follower's (elections, term) snapshots, oldest first; empty if it wrote none.
std::vector<std::array<std::uint64_t, 2>> read_counters(const settings& s, raftkit::node_id id) {
  std::vector<std::array<std::uint64_t, 2>> v;
  std::ifstream in(counters_file(s, id));
  std::uint64_t e = 0, t = 0;
  while (in >> e >> t) v.push_back({e, t});
  return v;
}

struct children {
  std::vector<pid_t> pids;

  void spawn(const settings& s, raftkit::node_id id) {
    std::vector<std::string> args = {"/proc/self/exe", "--serve", std::to_string(id),
                                     "--base-port", std::to_string(s.base_port), "--log", s.log,
                                     "--inflight", std::to_string(s.inflight),
                                     "--follower-election-timeout", std::to_string(s.follower_timeout_ms),
                                     "--tcp-queue", std::to_string(s.queue_kib),
                                     "--tcp-write", std::to_string(s.write_kib),
                                     "--snapshot-every", std::to_string(s.snapshot_every)};
    if (!s.dir.empty()) args.insert(args.end(), {"--dir", s.dir});
    args.insert(args.end(), {"--counters-file", counters_file(s, id)});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
    if (pid == 0) {
      sigset_t usr1;  // held pending until the follower can handle it (see serve)
      sigemptyset(&usr1);
      sigaddset(&usr1, SIGUSR1);
      ::sigprocmask(SIG_BLOCK, &usr1, nullptr);
      ::execv(argv[0], argv.data());
      std::_Exit(127);
    }
    pids.push_back(pid);
  }

  /// Asks every follower to append its counters to its file (see serve).
  void snapshot_counters() {
    for (pid_t p : pids) ::kill(p, SIGUSR1);
  }

  /// SIGTERM, up to 2 s for a clean exit, then SIGKILL; every child is reaped.
  void reap() {
    for (pid_t p : pids) ::kill(p, SIGTERM);
    const auto deadline = bench_clock::now() + std::chrono::seconds(2);
    for (pid_t p : pids) {
      for (;;) {
        int st = 0;
        const pid_t r = ::waitpid(p, &st, WNOHANG);
        if (r == p || (r < 0 && errno != EINTR)) break;
        if (bench_clock::now() >= deadline) {
          ::kill(p, SIGKILL);
          ::waitpid(p, &st, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    pids.clear();
  }
  ~children() { reap(); }
};

// ------------------------------------------------------------------ leader and clients

struct results {
  double ops_per_sec = 0;
  double p50 = 0, p95 = 0, p99 = 0, p999 = 0, max = 0;
  std::uint64_t ops = 0, errors = 0;
  /// Elections started by any node in the measured window (-1: a follower did not report),
  /// and the leader's term at the window's start and end.
  std::int64_t elections = -1;
  std::uint64_t term_start = 0, term_end = 0;
};

double percentile_us(const std::vector<std::uint32_t>& sorted_ns, double q) {
  if (sorted_ns.empty()) return 0;
  const auto i = static_cast<std::size_t>(q * static_cast<double>(sorted_ns.size() - 1) + 0.5);
  return static_cast<double>(sorted_ns[std::min(i, sorted_ns.size() - 1)]) / 1000.0;
}

/// Runs the closed-loop clients; `on_window(false)` runs when the measured window opens
/// and `on_window(true)` when it closes.
template <class Node>
results run_clients(boost::asio::io_context& io, Node& n, const settings& s,
                    const std::function<void(bool)>& on_window) {
  enum class phase { warmup, measure, drain };
  struct shared_state {
    phase ph = phase::warmup;
    bench_clock::time_point t0{}, t1{};
    std::vector<std::uint32_t> lat;  // ns, ops both started and finished in the window
    std::uint64_t ops = 0;           // ops finished in the window
    std::uint64_t errors = 0;
    std::error_code first_error;
    int outstanding = 0;
    std::vector<std::byte> payload;
  };
  auto st = std::make_shared<shared_state>();
  st->payload.assign(s.payload, std::byte{0x5A});
  st->lat.reserve(1 << 22);

  std::function<void()> issue = [&, st] {
    if (st->ph == phase::drain) return;
    ++st->outstanding;
    const auto start = bench_clock::now();
    n.propose(st->payload, [&, st, start](std::error_code ec, raftkit::index_t, auto&&) {
      --st->outstanding;
      const auto end = bench_clock::now();
      if (st->ph == phase::measure) {
        if (ec) {
          if (!st->first_error) st->first_error = ec;
          ++st->errors;
        } else {
          ++st->ops;
          if (start >= st->t0) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
            st->lat.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(ns, UINT32_MAX)));
          }
        }
      }
      if (ec && st->ph != phase::drain) {
        // Back off briefly instead of spinning on a failing node.
        auto t = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(5));
        t->async_wait([t, &issue](const boost::system::error_code&) { issue(); });
        return;
      }
      issue();
    });
  };

  boost::asio::steady_timer timer(io);
  for (int c = 0; c < s.clients; ++c) boost::asio::post(io, issue);
  const auto warm = std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(s.warmup));
  const auto dur = std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(s.duration));
  timer.expires_after(warm);
  timer.async_wait([&, st](const boost::system::error_code&) {
    st->ph = phase::measure;
    st->t0 = bench_clock::now();
    on_window(false);
    timer.expires_after(dur);
    timer.async_wait([&, st](const boost::system::error_code&) {
      st->ph = phase::drain;
      st->t1 = bench_clock::now();
      on_window(true);
      // Give outstanding proposals up to 2 s to finish, then stop the node.
      auto poll = std::make_shared<std::function<void(int)>>();
      *poll = [&, st, poll](int left) {
        if (st->outstanding == 0 || left == 0) {
          n.stop([&io, poll] {
            *poll = nullptr;
            io.stop();
          });
          return;
        }
        timer.expires_after(std::chrono::milliseconds(10));
        timer.async_wait([poll, left](const boost::system::error_code&) { (*poll)(left - 1); });
      };
      (*poll)(200);
    });
  });
  io.restart();
  io.run();

  results r;
  const double secs = std::chrono::duration<double>(st->t1 - st->t0).count();
  r.ops = st->ops;
  r.errors = st->errors;
  r.ops_per_sec = secs > 0 ? static_cast<double>(st->ops) / secs : 0;
  std::sort(st->lat.begin(), st->lat.end());
  r.p50 = percentile_us(st->lat, 0.50);
  r.p95 = percentile_us(st->lat, 0.95);
  r.p99 = percentile_us(st->lat, 0.99);
  r.p999 = percentile_us(st->lat, 0.999);
  r.max = st->lat.empty() ? 0 : st->lat.back() / 1000.0;
  if (st->errors && !s.json)
    std::fprintf(stderr, "raftkit-bench: %llu proposals failed (first: %s)\n",
                 static_cast<unsigned long long>(st->errors), st->first_error.message().c_str());
  return r;
}

/// Waits (running the io_context) until node 1 is leader and has a committed entry of
/// its term in place; false after `limit`.
template <class Node>
bool wait_leader(boost::asio::io_context& io, Node& n, std::chrono::milliseconds limit) {
  const auto deadline = bench_clock::now() + limit;
  while (bench_clock::now() < deadline) {
    std::optional<raftkit::node_status> got;
    n.status([&got](raftkit::node_status s) { got = std::move(s); });
    io.restart();
    while (!got && bench_clock::now() < deadline) io.run_for(std::chrono::milliseconds(20));
    if (got && got->role == raftkit::role::leader && got->commit_index >= got->last_log_index &&
        got->commit_index > 0)
      return true;
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return false;
}

int lead(settings s) {
  std::optional<fs::path> tmp;
  {
    char templ[] = "/tmp/raftkit-bench-XXXXXX";
    if (!::mkdtemp(templ)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
    tmp = templ;
    s.dir = templ;
  }
  struct remove_dir {
    std::optional<fs::path>& p;
    ~remove_dir() {
      if (p) {
        std::error_code ec;
        fs::remove_all(*p, ec);
      }
    }
  } cleanup_dir{tmp};

  children kids;
  kids.spawn(s, 2);
  kids.spawn(s, 3);

  results r;
  bool ok = false;
  with_store(s, 1, [&]<class Store>(std::type_identity<Store>, auto make, auto make_snaps) {
    boost::asio::io_context io(1);
    std::optional<bench_node<Store, decltype(make_snaps)>> slot;
    auto& n = emplace_node(slot, io, s, 1, make, make_snaps);
    n.start();
    if (!wait_leader(io, n, std::chrono::seconds(15))) {
      std::fprintf(stderr, "raftkit-bench: node 1 did not become leader\n");
      bool stopped = false;
      n.stop([&stopped] { stopped = true; });
      io.restart();
      while (!stopped) io.run_for(std::chrono::milliseconds(50));
      return;
    }
    // The leader's own elections and term at each end of the window; the followers
    // append theirs to their counters files.
    std::array<std::uint64_t, 2> leader_elections{};
    auto on_window = [&](bool end) {
      kids.snapshot_counters();
      leader_elections[end] = n.counters().elections;
      n.status([&r, end](raftkit::node_status st) { (end ? r.term_end : r.term_start) = st.term; });
    };
    const results clients = run_clients(io, n, s, on_window);
    r.ops_per_sec = clients.ops_per_sec;
    r.p50 = clients.p50, r.p95 = clients.p95, r.p99 = clients.p99, r.p999 = clients.p999;
    r.max = clients.max;
    r.ops = clients.ops;
    r.errors = clients.errors;
    r.elections = static_cast<std::int64_t>(leader_elections[1] - leader_elections[0]);
    ok = r.ops > 0;
    if (s.verbose) {
      const auto c = n.counters();
      const auto t = n.transport_stats();
      std::fprintf(stderr,
                   "leader: proposals %llu, applied %llu, appends_sent %llu, log_appends %llu, "
                   "messages sent %llu / received %llu; tcp: writes %llu, bytes sent %llu, "
                   "dropped %llu (control %llu), write timeouts %llu; window %zu B in flight, %zu B per "
                   "message\n",
                   static_cast<unsigned long long>(c.proposals),
                   static_cast<unsigned long long>(c.applied),
                   static_cast<unsigned long long>(c.appends_sent),
                   static_cast<unsigned long long>(c.log_appends),
                   static_cast<unsigned long long>(c.messages_sent),
                   static_cast<unsigned long long>(c.messages_received),
                   static_cast<unsigned long long>(t.writes),
                   static_cast<unsigned long long>(t.bytes_sent),
                   static_cast<unsigned long long>(t.dropped),
                   static_cast<unsigned long long>(t.control_dropped),
                   static_cast<unsigned long long>(t.write_timeouts), n.config().max_inflight_bytes,
                   n.config().max_bytes_per_message);
    }
  });
  kids.reap();
  if (!ok) return 1;
  for (raftkit::node_id id = 2; id <= 3; ++id) {
    const auto v = read_counters(s, id);
    if (v.size() < 2 || r.elections < 0) {
      r.elections = -1;
      break;
    }
    r.elections += static_cast<std::int64_t>(v[1][0] - v[0][0]);
  }

  if (s.json) {
    std::printf(
        "{\"clients\":%d,\"payload\":%zu,\"log\":\"%s\",\"duration_s\":%.3f,\"ops\":%llu,"
        "\"errors\":%llu,\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p95_us\":%.1f,\"p99_us\":%.1f,"
        "\"p999_us\":%.1f,\"max_us\":%.1f,\"elections\":%lld,\"term_start\":%llu,"
        "\"term_end\":%llu}\n",
        s.clients, s.payload, s.log.c_str(), s.duration, static_cast<unsigned long long>(r.ops),
        static_cast<unsigned long long>(r.errors), r.ops_per_sec, r.p50, r.p95, r.p99, r.p999,
        r.max, static_cast<long long>(r.elections), static_cast<unsigned long long>(r.term_start),
        static_cast<unsigned long long>(r.term_end));
  } else {
    std::printf("%-7s %7s %7s %12s %9s %9s %9s %9s %9s %9s %9s\n", "log", "clients", "payload",
                "ops/s", "p50 us", "p95 us", "p99 us", "p99.9 us", "max us", "elections", "terms");
    std::printf("%-7s %7d %7zu %12.0f %9.1f %9.1f %9.1f %9.1f %9.1f %9lld %4llu-%llu\n",
                s.log.c_str(), s.clients, s.payload, r.ops_per_sec, r.p50, r.p95, r.p99, r.p999,
                r.max, static_cast<long long>(r.elections),
                static_cast<unsigned long long>(r.term_start),
                static_cast<unsigned long long>(r.term_end));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"raftkit-bench: a 3-process raftkit cluster on loopback, closed-loop proposals"};
  app.add_option("--clients", s.clients, "closed-loop clients in the leader's process")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--payload", s.payload, "bytes per proposal")->check(CLI::Range(0, 1 << 20));
  app.add_option("--duration", s.duration, "measured seconds")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", s.warmup, "seconds before measuring")->check(CLI::Range(0.0, 60.0));
  app.add_option("--log", s.log, "log store: memory or file")
      ->check(CLI::IsMember({"memory", "file"}));
  app.add_flag("--json", s.json, "print one JSON object");
  app.add_option("--inflight", s.inflight,
                 "node_config.max_inflight_messages: AppendEntries in flight per follower")
      ->check(CLI::Range(1, 4096));
  app.add_option("--follower-election-timeout", s.follower_timeout_ms,
                 "followers' election timeout in ms; above 300 so node 1 (150) leads")
      ->check(CLI::Range(301u, 60000u));
  app.add_option("--tcp-queue", s.queue_kib,
                 "tcp_options.max_queue_bytes in KiB: the per-peer bulk queue, which bounds the engine's window")
      ->check(CLI::Range(64u, 1u << 20));
  app.add_option("--tcp-write", s.write_kib, "tcp_options.max_write_bytes in KiB: bulk bytes per socket write")
      ->check(CLI::Range(4u, 1u << 20));
  app.add_option("--snapshot-every", s.snapshot_every,
                 "snapshot every N applied entries and compact the log behind it (0: no snapshots)");
  app.add_flag("--verbose", s.verbose, "also print the leader's engine and transport counters");
  app.add_option("--serve", s.serve, "")->group("")->check(CLI::Range(1, 3));
  app.add_option("--base-port", s.base_port, "")->group("");
  app.add_option("--dir", s.dir, "")->group("");
  app.add_option("--counters-file", s.counters_file, "")->group("");
  CLI11_PARSE(app, argc, argv);

  try {
    if (s.serve != 0) return serve(s);
    // Raft ports base+1..base+3, below 32768 (outside the ephemeral range), by pid.
    s.base_port = 10000 + static_cast<unsigned>(::getpid() % 2200) * 10;
    return lead(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftkit-bench: %s\n", e.what());
    return 1;
  }
}
