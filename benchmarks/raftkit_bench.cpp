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
//   raftkit-bench --tls --clients 64 [--rounds 3]
//
// --tls compares mutual TLS (raftkit::asio::tls_transport) with plain TCP: it makes
// certificates with tests/tls/make-certs.sh (--make-certs), then runs the benchmark
// `--rounds` times each way, interleaved (plain, TLS, TLS, plain, ...), so drift of a noisy
// machine hits both alike, and prints every run and TLS/plain ratios of the medians.
//
// `--reads` measures reads instead of writes, three ways in one interleaved run (the
// machines are noisy, so each way gets slices spread over the whole run, in rotating
// order, and the output compares them as ratios): through the log (a read proposed as a
// command, the way before ReadIndex), through ReadIndex (read_consistency::linearizable:
// one heartbeat round per batch of reads, then the state machine's query) and through the
// leader's lease (read_consistency::lease). `--via-follower` runs the clients in a
// follower's process instead (node 2 leads): writes are forwarded to the leader, reads
// ask the leader for a read index and are answered by the follower.
//
// --snapshot-every N: every node snapshots every N applied entries (file::snapshot_store
// beside a file log, memory::snapshot_store with the memory one) and compacts its log, as
// a long-running service does; the state machine's snapshot is empty, so what is measured
// is the cost of snapshotting and compaction to the log path. (Over TCP only, not --tls.)
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
#include "raftkit/asio/tls_transport.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/file/snapshot_store.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"

namespace {

namespace fs = std::filesystem;
using bench_clock = std::chrono::steady_clock;

/// The replicated state: nothing. The benchmark measures the log, not the machine. A
/// read (`query`, raftkit::has_query) answers with nothing as well.
struct noop_state_machine {
  void apply(raftkit::index_t, std::span<const std::byte>) noexcept {}
  int query(std::span<const std::byte>) const noexcept { return 0; }
  /// Its (empty) snapshot, for --snapshot-every.
  struct view {
    std::error_code write(raftkit::snapshot_writer&) const { return {}; }
  };
  view snapshot() const { return {}; }
  std::error_code restore(raftkit::snapshot_reader&) { return {}; }
};

/// What a closed-loop client does.
enum class op_kind { write, read_log, read_index, read_lease };
constexpr const char* op_name(op_kind k) {
  switch (k) {
    case op_kind::write: return "write";
    case op_kind::read_log: return "read/log";
    case op_kind::read_index: return "read/index";
    case op_kind::read_lease: return "read/lease";
  }
  return "?";
}

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
  bool reads = false;
  bool via_follower = false;
  int rounds = 5;
  std::size_t queue_kib = raftkit::asio::tcp_options{}.max_queue_bytes >> 10;
  std::size_t write_kib = raftkit::asio::tcp_options{}.max_write_bytes >> 10;
  bool tls_compare = false;  // --tls
#ifdef RAFTKIT_MAKE_CERTS
  std::string make_certs = RAFTKIT_MAKE_CERTS;
#else
  std::string make_certs;
#endif
  std::string tls_dir;  // certificates: this run's peers speak mutual TLS (passed to followers)
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

/// The node meant to lead: 1, in the benchmark process, or 2 with --via-follower.
raftkit::node_id leader_id(const settings& s) { return s.via_follower ? 2 : 1; }

raftkit::node_config make_config(const settings& s, raftkit::node_id id) {
  using namespace std::chrono_literals;
  raftkit::node_config cfg;
  cfg.id = id;
  cfg.members = {1, 2, 3};
  cfg.seed = 7;
  // The leader-to-be should win the first election; the others wait long enough not to
  // compete while the cluster is healthy.
  cfg.election_timeout = id == leader_id(s) ? raftkit::duration(150ms)
                                            : raftkit::duration(std::chrono::milliseconds(s.follower_timeout_ms));
  cfg.lease_reads = s.reads;
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

/// Node `id`'s TLS material in the make-certs.sh directory `dir`.
raftkit::asio::tls_options tls_files(const std::string& dir, raftkit::node_id id) {
  raftkit::asio::tls_options o;
  o.certificate_chain = raftkit::asio::pem_source::from_file(dir + "/node" + std::to_string(id) + ".pem");
  o.private_key = raftkit::asio::pem_source::from_file(dir + "/node" + std::to_string(id) + ".key");
  o.trusted_ca = raftkit::asio::pem_source::from_file(dir + "/ca.pem");
  return o;
}

/// Builds node `id` (a node cannot move) over TCP, or over mutual TLS when `s.tls_dir` is
/// set, with the snapshot store `make_snaps()` returns, and calls f(node). TLS runs take no
/// snapshots (main refuses --tls with --snapshot-every), which keeps the build to the
/// combinations the benchmark runs.
template <class Store, class MakeStore, class MakeSnaps, class F>
void with_node(const settings& s, raftkit::node_id id, boost::asio::io_context& io, MakeStore make,
               MakeSnaps make_snaps, F&& f) {
  using snaps_type = std::invoke_result_t<MakeSnaps&>;
  const raftkit::node_config cfg = make_config(s, id);
  if constexpr (std::is_same_v<snaps_type, raftkit::no_snapshots>) {
    if (!s.tls_dir.empty()) {
      raftkit::asio::node<Store, noop_state_machine, raftkit::asio::tls_transport> n(
          cfg,
          raftkit::asio::tls_factory(io.get_executor(), cfg, cluster_id, make_peers(s.base_port),
                                     tls_files(s.tls_dir, id), make_tcp_options(s)),
          make, noop_state_machine{});
      f(n);
      return;
    }
    raftkit::asio::node<Store, noop_state_machine> n(io.get_executor(), cfg, cluster_id, make_peers(s.base_port), make,
                                                     noop_state_machine{}, make_tcp_options(s));
    f(n);
  } else {
    raftkit::asio::node<Store, noop_state_machine, raftkit::asio::tcp_transport, snaps_type> n(
        io.get_executor(), cfg, cluster_id, make_peers(s.base_port), make, noop_state_machine{}, make_snaps(),
        make_tcp_options(s));
    f(n);
  }
}

// ------------------------------------------------------------------ follower mode

int serve(const settings& s) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return 1;  // the benchmark is already gone
  boost::asio::io_context io;
  int rc = 0;
  with_store(s, s.serve, [&]<class Store>(std::type_identity<Store>, auto make, auto make_snaps) {
    with_node<Store>(s, s.serve, io, make, make_snaps, [&](auto& n) {
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
    if (s.reads) args.emplace_back("--reads");
    if (s.via_follower) args.emplace_back("--via-follower");
    if (!s.dir.empty()) args.insert(args.end(), {"--dir", s.dir});
    if (!s.tls_dir.empty()) args.insert(args.end(), {"--tls-dir", s.tls_dir});
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
  op_kind kind = op_kind::write;
  double ops_per_sec = 0;
  double p50 = 0, p95 = 0, p99 = 0, p999 = 0, max = 0;
  std::uint64_t ops = 0, errors = 0;
  std::error_code first_error;
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

/// The measured window as slices, each of one kind of operation: writes, one slice of the
/// whole duration; --reads, `rounds` slices of each kind of read, the order rotating from
/// round to round so that no kind always follows the same one.
std::vector<op_kind> schedule(const settings& s) {
  if (!s.reads) return {op_kind::write};
  constexpr std::array<op_kind, 3> kinds = {op_kind::read_log, op_kind::read_index, op_kind::read_lease};
  std::vector<op_kind> plan;
  for (int r = 0; r < s.rounds; ++r)
    for (std::size_t i = 0; i < kinds.size(); ++i) plan.push_back(kinds[(static_cast<std::size_t>(r) + i) % kinds.size()]);
  return plan;
}

/// Runs the closed-loop clients through `schedule(s)`; returns one result per kind of
/// operation, in the order they first appear. An operation counts for its kind when it
/// starts and ends within a slice of that kind (so a slow operation left over from the
/// previous slice counts for nobody). `on_window(false)` runs when the measured window
/// opens and `on_window(true)` when it closes.
template <class Node>
std::vector<results> run_clients(boost::asio::io_context& io, Node& n, const settings& s,
                                 const std::function<void(bool)>& on_window) {
  enum class phase { warmup, measure, drain };
  struct per_kind {
    std::vector<std::uint32_t> lat;  // ns
    std::uint64_t ops = 0, errors = 0;
    std::error_code first_error;
    double secs = 0;
  };
  struct shared_state {
    phase ph = phase::warmup;
    std::vector<op_kind> plan;
    std::size_t slice = 0;
    op_kind current{};
    bench_clock::time_point slice_start{};
    std::array<per_kind, 4> by_kind;
    int outstanding = 0;
    std::vector<std::byte> payload;
  };
  auto st = std::make_shared<shared_state>();
  st->payload.assign(s.payload, std::byte{0x5A});
  st->plan = schedule(s);
  st->current = st->plan.front();
  for (auto& k : st->by_kind) k.lat.reserve(1 << 20);

  std::function<void()> issue = [&, st] {
    if (st->ph == phase::drain) return;
    ++st->outstanding;
    const op_kind kind = st->current;
    const auto start = bench_clock::now();
    auto done = [&, st, kind, start](std::error_code ec, raftkit::index_t, auto&&) {
      --st->outstanding;
      const auto end = bench_clock::now();
      if (st->ph == phase::measure && kind == st->current && start >= st->slice_start) {
        per_kind& k = st->by_kind[static_cast<std::size_t>(kind)];
        if (ec) {
          if (!k.first_error) k.first_error = ec;
          ++k.errors;
        } else {
          ++k.ops;
          const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
          k.lat.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(ns, UINT32_MAX)));
        }
      }
      if (ec && st->ph != phase::drain) {
        // Back off briefly instead of spinning on a failing node.
        auto t = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(5));
        t->async_wait([t, &issue](const boost::system::error_code&) { issue(); });
        return;
      }
      issue();
    };
    switch (kind) {
      case op_kind::write:
      case op_kind::read_log: n.propose(st->payload, done); break;  // a read as a command
      case op_kind::read_index: n.read(st->payload, raftkit::read_consistency::linearizable, done); break;
      case op_kind::read_lease: n.read(st->payload, raftkit::read_consistency::lease, done); break;
    }
  };

  boost::asio::steady_timer timer(io);
  for (int c = 0; c < s.clients; ++c) boost::asio::post(io, issue);
  auto seconds = [](double d) {
    return std::chrono::duration_cast<bench_clock::duration>(std::chrono::duration<double>(d));
  };
  const auto slice = seconds(s.reads ? s.duration / s.rounds : s.duration);
  std::function<void()> finish;
  // Opens slice st->slice, then the next when it ends, then drains.
  std::function<void()> next_slice = [&, st] {
    st->current = st->plan[st->slice];
    st->slice_start = bench_clock::now();
    timer.expires_after(slice);
    timer.async_wait([&, st](const boost::system::error_code&) {
      st->by_kind[static_cast<std::size_t>(st->current)].secs +=
          std::chrono::duration<double>(bench_clock::now() - st->slice_start).count();
      if (++st->slice < st->plan.size()) return next_slice();
      finish();
    });
  };
  finish = [&, st] {
    st->ph = phase::drain;
    on_window(true);
    // Give outstanding operations up to 2 s to finish, then stop the node.
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
  };
  timer.expires_after(seconds(s.warmup));
  timer.async_wait([&, st](const boost::system::error_code&) {
    st->ph = phase::measure;
    on_window(false);
    next_slice();
  });
  io.restart();
  io.run();

  std::vector<results> out;
  for (op_kind kind : st->plan) {
    if (std::any_of(out.begin(), out.end(), [&](const results& r) { return r.kind == kind; })) continue;
    per_kind& k = st->by_kind[static_cast<std::size_t>(kind)];
    results r;
    r.kind = kind;
    r.ops = k.ops;
    r.errors = k.errors;
    r.first_error = k.first_error;
    r.ops_per_sec = k.secs > 0 ? static_cast<double>(k.ops) / k.secs : 0;
    std::sort(k.lat.begin(), k.lat.end());
    r.p50 = percentile_us(k.lat, 0.50);
    r.p95 = percentile_us(k.lat, 0.95);
    r.p99 = percentile_us(k.lat, 0.99);
    r.p999 = percentile_us(k.lat, 0.999);
    r.max = k.lat.empty() ? 0 : k.lat.back() / 1000.0;
    if (r.errors && !s.json)
      std::fprintf(stderr, "raftkit-bench: %llu %s operations failed (first: %s)\n",
                   static_cast<unsigned long long>(r.errors), op_name(kind), r.first_error.message().c_str());
    out.push_back(std::move(r));
  }
  return out;
}

/// Waits (running the io_context) until the cluster is ready: node 1 leads (or, with
/// --via-follower, follows node 2) and its leader has a committed entry of its term in
/// place; false after `limit`.
template <class Node>
bool wait_ready(boost::asio::io_context& io, Node& n, const settings& s, std::chrono::milliseconds limit) {
  const auto deadline = bench_clock::now() + limit;
  while (bench_clock::now() < deadline) {
    std::optional<raftkit::node_status> got;
    n.status([&got](raftkit::node_status st) { got = std::move(st); });
    io.restart();
    while (!got && bench_clock::now() < deadline) io.run_for(std::chrono::milliseconds(20));
    if (got && got->leader == leader_id(s) && got->commit_index >= got->last_log_index && got->commit_index > 0)
      return true;
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  return false;
}

/// Runs one benchmark; prints its line unless `out` is given, which receives the results.
int lead(settings s, results* out = nullptr) {
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

  std::vector<results> rs;
  // Elections started by any node in the window (-1: a follower did not report) and the
  // term at its two ends, for the whole run.
  std::int64_t elections = -1;
  std::array<std::uint64_t, 2> terms{};
  bool ok = false;
  with_store(s, 1, [&]<class Store>(std::type_identity<Store>, auto make, auto make_snaps) {
    boost::asio::io_context io(1);
    with_node<Store>(s, 1, io, make, make_snaps, [&](auto& n) {
      n.start();
      if (!wait_ready(io, n, s, std::chrono::seconds(15))) {
        std::fprintf(stderr, "raftkit-bench: node %llu did not become leader\n",
                     static_cast<unsigned long long>(leader_id(s)));
        bool stopped = false;
        n.stop([&stopped] { stopped = true; });
        io.restart();
        while (!stopped) io.run_for(std::chrono::milliseconds(50));
        return;
      }
      // Node 1's own elections and term at each end of the window; the followers append
      // theirs to their counters files.
      std::array<std::uint64_t, 2> own_elections{};
      auto on_window = [&](bool end) {
        kids.snapshot_counters();
        own_elections[end] = n.counters().elections;
        n.status([&terms, end](raftkit::node_status st) { terms[end] = st.term; });
      };
      rs = run_clients(io, n, s, on_window);
      elections = static_cast<std::int64_t>(own_elections[1] - own_elections[0]);
      ok = std::all_of(rs.begin(), rs.end(), [](const results& r) { return r.ops > 0; });
      if (s.verbose) {
        const auto c = n.counters();
        const auto t = n.transport_stats();
        std::fprintf(stderr,
                     "node 1: proposals %llu, forwarded %llu, applied %llu, reads %llu (lease %llu, rounds %llu), quorum lost %llu, "
                     "appends_sent %llu, log_appends %llu, messages sent %llu / received %llu; tcp: writes %llu, "
                     "bytes sent %llu, dropped %llu (control %llu), write timeouts %llu; window %zu B in flight, "
                     "%zu B per message\n",
                     static_cast<unsigned long long>(c.proposals),
                     static_cast<unsigned long long>(c.forwarded),
                     static_cast<unsigned long long>(c.applied),
                     static_cast<unsigned long long>(c.reads),
                     static_cast<unsigned long long>(c.lease_reads),
                     static_cast<unsigned long long>(c.read_rounds),
                     static_cast<unsigned long long>(c.quorum_lost),
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
  });
  kids.reap();
  if (!ok) return 1;
  for (raftkit::node_id id = 2; id <= 3; ++id) {
    const auto v = read_counters(s, id);
    if (v.size() < 2 || elections < 0) {
      elections = -1;
      break;
    }
    elections += static_cast<std::int64_t>(v[1][0] - v[0][0]);
  }
  if (out) {  // --tls: the writes' figures, to the caller
    *out = rs.front();
    out->elections = elections;
    out->term_start = terms[0];
    out->term_end = terms[1];
    return 0;
  }

  // Reads: each kind's throughput against the log path's, measured in the same run.
  auto ratio = [&](op_kind k) {
    double base = 0, x = 0;
    for (const auto& r : rs) {
      if (r.kind == op_kind::read_log) base = r.ops_per_sec;
      if (r.kind == k) x = r.ops_per_sec;
    }
    return base > 0 ? x / base : 0.0;
  };
  const char* via = s.via_follower ? "follower" : "leader";
  if (s.json) {
    std::printf("{\"clients\":%d,\"payload\":%zu,\"log\":\"%s\",\"via\":\"%s\",\"duration_s\":%.3f,", s.clients,
                s.payload, s.log.c_str(), via, s.duration);
    // Writes: their figures at the top level, as before --reads; reads: one object per kind.
    for (const auto& r : rs) {
      if (s.reads) std::printf("\"%s\":{", op_name(r.kind));
      std::printf(
          "\"ops\":%llu,\"errors\":%llu,\"ops_per_sec\":%.1f,\"p50_us\":%.1f,\"p95_us\":%.1f,"
          "\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f%s,",
          static_cast<unsigned long long>(r.ops), static_cast<unsigned long long>(r.errors),
          r.ops_per_sec, r.p50, r.p95, r.p99, r.p999, r.max, s.reads ? "}" : "");
    }
    if (s.reads)
      std::printf("\"index_vs_log\":%.2f,\"lease_vs_log\":%.2f,", ratio(op_kind::read_index), ratio(op_kind::read_lease));
    std::printf("\"elections\":%lld,\"term_start\":%llu,\"term_end\":%llu}\n", static_cast<long long>(elections),
                static_cast<unsigned long long>(terms[0]), static_cast<unsigned long long>(terms[1]));
  } else {
    std::printf("%-10s %-7s %-8s %7s %7s %12s %9s %9s %9s %9s %9s %9s %9s\n", "op", "log", "via", "clients", "payload",
                "ops/s", "p50 us", "p95 us", "p99 us", "p99.9 us", "max us", "elections", "terms");
    for (const auto& r : rs) {
      std::printf("%-10s %-7s %-8s %7d %7zu %12.0f %9.1f %9.1f %9.1f %9.1f %9.1f %9lld %4llu-%llu\n", op_name(r.kind),
                  s.log.c_str(), via, s.clients, s.payload, r.ops_per_sec, r.p50, r.p95, r.p99, r.p999, r.max,
                  static_cast<long long>(elections), static_cast<unsigned long long>(terms[0]),
                  static_cast<unsigned long long>(terms[1]));
    }
    if (s.reads)
      std::printf("reads per second against the log path, interleaved in %d rounds: ReadIndex %.2fx, lease %.2fx\n",
                  s.rounds, ratio(op_kind::read_index), ratio(op_kind::read_lease));
  }
  return 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// --tls: plain TCP and mutual TLS, interleaved; each run, then TLS/plain ratios of the medians.
int compare_tls(settings s) {
  if (s.make_certs.empty()) throw std::runtime_error("--tls needs --make-certs (tests/tls/make-certs.sh)");
  char templ[] = "/tmp/raftkit-bench-certs-XXXXXX";
  if (!::mkdtemp(templ)) throw std::system_error(errno, std::generic_category(), "mkdtemp");
  struct remove_dir {
    fs::path p;
    ~remove_dir() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{templ};
  const std::string cmd = "sh '" + s.make_certs + "' '" + templ + "' " + std::to_string(cluster_id) + " 3";
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("cannot make certificates: " + cmd);
  std::array<std::vector<double>, 2> ops, p50;  // [0] plain, [1] TLS
  if (!s.json)
    std::printf("%-5s %-7s %7s %7s %12s %9s %9s %9s %9s\n", "round", "peers", "clients", "payload", "ops/s", "p50 us",
                "p99 us", "max us", "elections");
  const unsigned base = s.base_port;
  for (int round = 0; round < s.rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      const bool tls = (k == 1) != (round % 2 == 1);  // plain, TLS; TLS, plain; ...
      settings one = s;
      one.tls_dir = tls ? templ : "";
      // Fresh ports each run: nothing of the last run's connections lingers on them.
      one.base_port = 10000 + (base - 10000 + static_cast<unsigned>(round * 2 + k + 1) * 10) % 22000;
      results r;
      if (lead(one, &r) != 0) return 1;
      ops[tls].push_back(r.ops_per_sec);
      p50[tls].push_back(r.p50);
      if (s.json)
        std::printf("{\"round\":%d,\"tls\":%s,\"clients\":%d,\"payload\":%zu,\"ops_per_sec\":%.1f,\"p50_us\":%.1f,"
                    "\"p99_us\":%.1f,\"max_us\":%.1f,\"elections\":%lld}\n",
                    round, tls ? "true" : "false", s.clients, s.payload, r.ops_per_sec, r.p50, r.p99, r.max,
                    static_cast<long long>(r.elections));
      else
        std::printf("%-5d %-7s %7d %7zu %12.0f %9.1f %9.1f %9.1f %9lld\n", round, tls ? "tls" : "plain", s.clients,
                    s.payload, r.ops_per_sec, r.p50, r.p99, r.max, static_cast<long long>(r.elections));
      std::fflush(stdout);
    }
  }
  const double ops_ratio = median(ops[1]) / median(ops[0]);
  const double p50_ratio = median(p50[1]) / median(p50[0]);
  if (s.json)
    std::printf("{\"clients\":%d,\"rounds\":%d,\"plain_ops_per_sec\":%.1f,\"tls_ops_per_sec\":%.1f,"
                "\"ops_ratio\":%.3f,\"plain_p50_us\":%.1f,\"tls_p50_us\":%.1f,\"p50_ratio\":%.3f}\n",
                s.clients, s.rounds, median(ops[0]), median(ops[1]), ops_ratio, median(p50[0]), median(p50[1]),
                p50_ratio);
  else
    std::printf("medians of %d runs each, %d clients: plain %.0f ops/s, p50 %.1f us; TLS %.0f ops/s, p50 %.1f us\n"
                "TLS/plain: throughput %.3f, p50 latency %.3f\n",
                s.rounds, s.clients, median(ops[0]), median(p50[0]), median(ops[1]), median(p50[1]), ops_ratio,
                p50_ratio);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"raftkit-bench: a 3-process raftkit cluster on loopback, closed-loop proposals"};
  app.add_option("--clients", s.clients, "closed-loop clients in node 1's process")
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
                 "followers' election timeout in ms; above 300 so the leader-to-be (150) leads")
      ->check(CLI::Range(301u, 60000u));
  app.add_option("--tcp-queue", s.queue_kib,
                 "tcp_options.max_queue_bytes in KiB: the per-peer bulk queue, which bounds the engine's window")
      ->check(CLI::Range(64u, 1u << 20));
  app.add_option("--tcp-write", s.write_kib, "tcp_options.max_write_bytes in KiB: bulk bytes per socket write")
      ->check(CLI::Range(4u, 1u << 20));
  app.add_flag("--verbose", s.verbose, "also print node 1's engine and transport counters");
  app.add_flag("--reads", s.reads,
               "measure reads, not writes: through the log, ReadIndex and the lease, interleaved in slices "
               "(--duration seconds each in all), compared as ratios to the log path");
  app.add_option("--rounds", s.rounds, "--reads: rounds of one slice of each kind of read; --tls: runs of each kind")->check(CLI::Range(1, 1000));
  app.add_flag("--tls", s.tls_compare,
               "compare mutual TLS with plain TCP: --rounds runs of each, interleaved, and their ratios");
  app.add_option("--make-certs", s.make_certs, "with --tls: the certificate script (tests/tls/make-certs.sh)");
  app.add_option("--tls-dir", s.tls_dir, "")->group("");
  app.add_flag("--via-follower", s.via_follower,
               "run the clients on a follower (node 2 leads): writes are forwarded, reads answered by the follower");
  app.add_option("--snapshot-every", s.snapshot_every,
                 "snapshot every N applied entries and compact the log behind it (0: no snapshots)");
  app.add_option("--serve", s.serve, "")->group("")->check(CLI::Range(1, 3));
  app.add_option("--base-port", s.base_port, "")->group("");
  app.add_option("--dir", s.dir, "")->group("");
  app.add_option("--counters-file", s.counters_file, "")->group("");
  CLI11_PARSE(app, argc, argv);

  try {
    if (s.serve != 0) return serve(s);
    // Raft ports base+1..base+3, below 32768 (outside the ephemeral range), by pid.
    s.base_port = 10000 + static_cast<unsigned>(::getpid() % 2200) * 10;
    if ((s.tls_compare || !s.tls_dir.empty()) && s.snapshot_every != 0)
      throw std::invalid_argument("--snapshot-every runs over plain TCP only, not with --tls");
    if (s.tls_compare) return compare_tls(s);
    return lead(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftkit-bench: %s\n", e.what());
    return 1;
  }
}
