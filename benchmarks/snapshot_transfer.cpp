// snapshot-transfer: InstallSnapshot throughput of a large state between two processes on
// loopback, as a ratio to a plain TCP copy of the same bytes between the same processes in
// the same run. Opt-in (not run by CI): benchmarks/snapshot_figures.
//
//   snapshot-transfer [--mib 256] [--rounds 1] [--dir /var/tmp] [--chunk-kib 1024] [--tcp-queue-mib 8]
//
// This process runs nodes 1 (the leader) and 2 of a three-member cluster through the Asio
// driver, with file logs and file snapshot stores. One command makes each state machine
// generate the same `--mib` MiB state; node 1 snapshots it and compacts its log past that
// command. Each round then starts a follower process (node 3, an empty directory), which
// first receives the same number of bytes over a plain TCP connection from this process
// (a `write` loop into a socket, the receiver reading into one buffer: the copy), and then
// joins the cluster, so node 1 must send it the snapshot. The install is timed on node 1
// from its first chunk sent to the follower's acknowledgement that the snapshot is durable
// and restored; it includes the follower's disk write, fsync and restore. One more copy
// after the last round; the ratio is the install rate over the mean copy rate. A second
// copy per round has the receiver write the bytes to a file in its directory and fsync it
// before answering (the durable copy): what any install onto this disk costs at least. Each
// line also gives the CPU seconds both processes spent on it (this one includes node 2), so
// a run on a loaded machine still shows where the work is. A later
// round brings node 3 back with an empty disk, which Raft does not allow (the leader still
// counts what it had acknowledged): it may stall, so the default is one round.

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include "raftkit/asio/node.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/file/snapshot_store.hpp"

namespace {

namespace fs = std::filesystem;
namespace ba = boost::asio;
using tcp = ba::ip::tcp;
using bench_clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// A state of `n` MiB of pseudo-random bytes, made by one command ("fill", n) so every
/// replica that applies it holds the same bytes; any other command changes nothing. The
/// state is immutable once made, so a snapshot's view is a shared handle on it.
struct blob_machine {
  std::shared_ptr<const std::vector<std::byte>> blob = std::make_shared<const std::vector<std::byte>>();

  std::uint64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    if (cmd.size() == 5 && cmd[0] == std::byte{'F'}) {
      std::uint32_t mib = 0;
      std::memcpy(&mib, cmd.data() + 1, 4);
      blob = std::make_shared<const std::vector<std::byte>>(generate(std::size_t{mib} << 20));
    }
    return blob->size();
  }
  static std::vector<std::byte> generate(std::size_t n) {
    std::vector<std::byte> v(n);
    std::uint64_t x = 0x9E3779B97F4A7C15ull;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      std::memcpy(v.data() + i, &x, 8);
    }
    return v;
  }
  struct view {
    std::shared_ptr<const std::vector<std::byte>> blob;
    std::error_code write(raftkit::snapshot_writer& w) const {
      for (std::size_t off = 0; off < blob->size(); off += 1u << 20)
        if (auto ec = w.write(std::span(blob->data() + off, std::min<std::size_t>(1u << 20, blob->size() - off))))
          return ec;
      return {};
    }
  };
  view snapshot() const { return {blob}; }
  std::error_code restore(raftkit::snapshot_reader& r) {
    std::vector<std::byte> v(static_cast<std::size_t>(r.size()));
    if (!r.read_exact(v)) return make_error_code(raftkit::errc::corrupt_snapshot);
    blob = std::make_shared<const std::vector<std::byte>>(std::move(v));
    return {};
  }
};

using node_t = raftkit::asio::node<raftkit::file::log_store, blob_machine, raftkit::asio::tcp_transport,
                                   raftkit::file::snapshot_store>;

struct settings {
  unsigned mib = 256;
  int rounds = 1;
  std::string dir = "/var/tmp";
  std::size_t chunk_kib = 1024;
  std::size_t queue_mib = 8;
  unsigned base_port = 0;
  unsigned copy_port = 0;
  std::string follower_dir;  // set in the follower process
};

raftkit::asio::cluster_map peers(const settings& s) {
  raftkit::asio::cluster_map m;
  for (raftkit::node_id id = 1; id <= 3; ++id) m[id] = {"127.0.0.1", static_cast<std::uint16_t>(s.base_port + id)};
  return m;
}

raftkit::node_config config(const settings& s, raftkit::node_id id) {
  raftkit::node_config cfg;
  cfg.id = id;
  cfg.members = {1, 2, 3};
  cfg.election_timeout = id == 1 ? raftkit::duration(150ms) : raftkit::duration(2000ms);
  cfg.heartbeat_interval = 30ms;
  cfg.snapshot_interval = 0;  // on request
  cfg.snapshot_trailing_entries = 0;
  cfg.max_snapshot_chunk_bytes = s.chunk_kib << 10;
  cfg.max_uncommitted_bytes = 512u << 20;
  return cfg;
}

raftkit::asio::tcp_options tcp_opts(const settings& s) {
  raftkit::asio::tcp_options t;
  t.max_queue_bytes = s.queue_mib << 20;
  t.write_timeout = 10s;  // a follower busy with fsync must not look dead
  return t;
}

std::unique_ptr<node_t> make_node(ba::io_context& io, const settings& s, raftkit::node_id id, const fs::path& dir) {
  fs::create_directories(dir);
  raftkit::file::options lo;
  lo.segment_size = 1u << 20;  // small segments, so compaction can drop the one holding the fill command
  return std::make_unique<node_t>(
      io.get_executor(), config(s, id), 0x5AA9, peers(s),
      [&] { return raftkit::file::log_store((dir / "log").string(), lo); }, blob_machine{},
      raftkit::file::snapshot_store((dir / "snapshots").string()), tcp_opts(s));
}

// ------------------------------------------------------------------ follower process

/// The copy's receiving end: reads the bytes into one buffer (or, with a `file`, writes
/// them there and fsyncs it), then says so with one byte.
void receive_copy(const settings& s, const std::string& file = {}) {
  ba::io_context io;
  tcp::socket sock(io);
  sock.connect(tcp::endpoint(ba::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(s.copy_port)));
  const int fd = file.empty() ? -1 : ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (!file.empty() && fd < 0) std::exit(3);
  std::vector<std::byte> buf(1u << 20);
  std::uint64_t left = std::uint64_t{s.mib} << 20;
  while (left > 0) {
    const std::size_t n = sock.read_some(ba::buffer(buf.data(), std::min<std::uint64_t>(left, buf.size())));
    if (fd >= 0 && ::write(fd, buf.data(), n) != static_cast<ssize_t>(n)) std::exit(3);
    left -= n;
  }
  if (fd >= 0 && (::fsync(fd) != 0 || ::close(fd) != 0)) std::exit(3);
  const char ack = 1;
  ba::write(sock, ba::buffer(&ack, 1));
}

int follower(const settings& s) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  receive_copy(s);
  fs::create_directories(s.follower_dir);
  receive_copy(s, (fs::path(s.follower_dir) / "copy").string());
  fs::remove(fs::path(s.follower_dir) / "copy");
  ba::io_context io;
  auto n = make_node(io, s, 3, s.follower_dir);
  n->start();
  ba::signal_set sigs(io, SIGTERM);
  sigs.async_wait([&](const boost::system::error_code&, int) { n->stop([&] { io.stop(); }); });
  io.run();
  return 0;
}

// ------------------------------------------------------------------ leader process

template <class T>
T wait(std::future<T>& f) {
  if (f.wait_for(120s) != std::future_status::ready) {
    std::fprintf(stderr, "snapshot-transfer: timed out\n");
    std::exit(1);
  }
  return f.get();
}

template <class F>
void poll(F done, const char* what) {
  const auto end = bench_clock::now() + 300s;
  while (!done()) {
    if (bench_clock::now() > end) {
      std::fprintf(stderr, "snapshot-transfer: timed out waiting for %s\n", what);
      std::exit(1);
    }
    std::this_thread::sleep_for(1ms);
  }
}

/// CPU seconds (user and system) process `pid` has used so far.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const auto close = line.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream in(line.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i >= 14) ticks += std::stod(field);  // fields 14 and 15: utime, stime
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// CPU seconds of this process and of `other` over one step of the run.
struct cpu_meter {
  pid_t other;
  double self0 = cpu_seconds(::getpid()), other0 = cpu_seconds(other);
  std::string text() const {
    char b[64];
    std::snprintf(b, sizeof b, "cpu %.2f + %.2f s", cpu_seconds(::getpid()) - self0, cpu_seconds(other) - other0);
    return b;
  }
};

/// Sends the bytes to the follower that connects to `acceptor`; the copy's seconds.
double copy_to(tcp::acceptor& acceptor, const std::vector<std::byte>& bytes) {
  tcp::socket sock = acceptor.accept();
  sock.set_option(tcp::no_delay(true));
  const auto t0 = bench_clock::now();
  for (std::size_t off = 0; off < bytes.size(); off += 1u << 20)
    ba::write(sock, ba::buffer(bytes.data() + off, std::min<std::size_t>(1u << 20, bytes.size() - off)));
  char ack = 0;
  ba::read(sock, ba::buffer(&ack, 1));
  return std::chrono::duration<double>(bench_clock::now() - t0).count();
}

int lead(settings s, const char* self) {
  const fs::path root = fs::path(s.dir) / ("raftkit-transfer-" + std::to_string(::getpid()));
  fs::create_directories(root);
  s.base_port = 21000 + static_cast<unsigned>(::getpid() % 400) * 10;
  ba::io_context io;
  auto work = ba::make_work_guard(io);
  std::thread t1([&] { io.run(); }), t2([&] { io.run(); });
  auto n1 = make_node(io, s, 1, root / "1");
  auto n2 = make_node(io, s, 2, root / "2");
  n1->start();
  n2->start();
  poll([&] {
    auto f = n1->status(ba::use_future);
    return wait(f).role == raftkit::role::leader;
  }, "a leader");
  std::vector<std::byte> fill(5);
  fill[0] = std::byte{'F'};
  std::memcpy(fill.data() + 1, &s.mib, 4);
  auto filled = n1->propose(fill, ba::use_future);
  if (std::get<0>(wait(filled))) return 1;
  // Roll the log past the fill command's segment, then snapshot: compaction drops it.
  for (int i = 0; i < 3; ++i) {
    std::vector<std::future<std::tuple<std::error_code, raftkit::index_t, std::uint64_t>>> pad;
    for (int k = 0; k < 1024; ++k) pad.push_back(n1->propose(std::vector<std::byte>(1024), ba::use_future));
    for (auto& f : pad) wait(f);
  }
  auto snap = n1->snapshot_now(ba::use_future);
  const auto [sec, sidx] = wait(snap);
  auto st1 = n1->status(ba::use_future);
  const raftkit::node_status st = wait(st1);
  std::printf("state %u MiB; snapshot at %llu (%llu bytes); leader's log starts at %llu\n", s.mib,
              static_cast<unsigned long long>(sidx), static_cast<unsigned long long>(st.snapshot_size),
              static_cast<unsigned long long>(st.first_log_index));
  if (sec || st.first_log_index <= 2) {
    std::fprintf(stderr, "snapshot-transfer: the log was not compacted past the state's command\n");
    return 1;
  }
  const std::vector<std::byte> bytes = blob_machine::generate(std::size_t{s.mib} << 20);

  tcp::acceptor acceptor(io, tcp::endpoint(ba::ip::make_address("127.0.0.1"), 0));
  s.copy_port = acceptor.local_endpoint().port();
  std::vector<double> copies, durable, installs;
  const double mib = s.mib;
  std::printf("%-6s %-12s %10s %10s   %s\n", "round", "what", "seconds", "MiB/s", "cpu leader + follower");
  for (int r = 0; r < s.rounds; ++r) {
    const fs::path fdir = root / ("3-" + std::to_string(r));
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string a = std::to_string(s.base_port), c = std::to_string(s.copy_port), m = std::to_string(s.mib),
                        k = std::to_string(s.chunk_kib), q = std::to_string(s.queue_mib);
      ::execl(self, self, "--follower", fdir.c_str(), "--base-port", a.c_str(), "--copy-port", c.c_str(), "--mib",
              m.c_str(), "--chunk-kib", k.c_str(), "--tcp-queue-mib", q.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    {
      cpu_meter cpu{pid};
      copies.push_back(copy_to(acceptor, bytes));
      std::printf("%-6d %-12s %10.3f %10.1f   %s\n", r, "tcp copy", copies.back(), mib / copies.back(),
                  cpu.text().c_str());
    }
    {
      cpu_meter cpu{pid};
      durable.push_back(copy_to(acceptor, bytes));
      std::printf("%-6d %-12s %10.3f %10.1f   %s\n", r, "copy+fsync", durable.back(), mib / durable.back(),
                  cpu.text().c_str());
    }
    const auto base = n1->counters();
    poll([&] { return n1->counters().snapshot_bytes_sent > base.snapshot_bytes_sent; }, "the first chunk");
    const auto t0 = bench_clock::now();
    cpu_meter cpu{pid};
    poll([&] { return n1->counters().snapshots_sent > base.snapshots_sent; }, "the install");
    installs.push_back(std::chrono::duration<double>(bench_clock::now() - t0).count());
    std::printf("%-6d %-12s %10.3f %10.1f   %s   (%llu chunk bytes sent)\n", r, "install", installs.back(),
                mib / installs.back(), cpu.text().c_str(),
                static_cast<unsigned long long>(n1->counters().snapshot_bytes_sent - base.snapshot_bytes_sent));
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  // The closing copy, to a follower that only copies.
  {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const std::string c = std::to_string(s.copy_port), m = std::to_string(s.mib);
      ::execl(self, self, "--copy-only", "--copy-port", c.c_str(), "--mib", m.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    cpu_meter cpu{pid};
    copies.push_back(copy_to(acceptor, bytes));
    std::printf("%-6s %-12s %10.3f %10.1f   %s\n", "last", "tcp copy", copies.back(), mib / copies.back(),
                cpu.text().c_str());
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  auto mean = [](const std::vector<double>& v) {
    double t = 0;
    for (double x : v) t += x;
    return t / static_cast<double>(v.size());
  };
  const double c = mean(copies), d = mean(durable), i = mean(installs);
  std::printf("mean: tcp copy %.1f MiB/s, copy+fsync %.1f MiB/s, install %.1f MiB/s, ratio %.2f (to copy+fsync %.2f)\n",
              mib / c, mib / d, mib / i, c / i, d / i);
  auto stop1 = n1->stop(ba::use_future);
  auto stop2 = n2->stop(ba::use_future);
  stop1.wait();
  stop2.wait();
  n1.reset();
  n2.reset();
  work.reset();
  t1.join();
  t2.join();
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  bool is_follower = false, copy_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "snapshot-transfer: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::string(argv[++i]);
    };
    if (a == "--mib") s.mib = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--rounds") s.rounds = std::stoi(next());
    else if (a == "--dir") s.dir = next();
    else if (a == "--chunk-kib") s.chunk_kib = std::stoul(next());
    else if (a == "--tcp-queue-mib") s.queue_mib = std::stoul(next());
    else if (a == "--base-port") s.base_port = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--copy-port") s.copy_port = static_cast<unsigned>(std::stoul(next()));
    else if (a == "--follower") is_follower = true, s.follower_dir = next();
    else if (a == "--copy-only") copy_only = true;
    else {
      std::fprintf(stderr,
                   "usage: snapshot-transfer [--mib N] [--rounds R] [--dir D] [--chunk-kib K] [--tcp-queue-mib Q]\n");
      return 2;
    }
  }
  if (copy_only) {
    receive_copy(s);  // the closing copy: the same reader, no node
    return 0;
  }
  if (is_follower) return follower(s);
  return lead(s, argv[0]);
}
