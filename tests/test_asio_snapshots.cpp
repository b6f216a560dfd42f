// raftkit::asio::node with snapshots: drivers over TCP on 127.0.0.1 with file::log_store and
// file::snapshot_store in real directories. Real time and real sockets, so no step is
// scripted: every wait is for a condition (a leader, an applied index, a snapshot) with a
// bounded hang guard, and a slow snapshot write is a gate the test opens, never a sleep.

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

#include "raftkit/asio/node.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/file/snapshot_store.hpp"

#include "asio_waits.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;

/// Where a snapshot write waits while the test holds it closed: a slow write on demand.
class gate {
 public:
  void close() {
    std::lock_guard lk(mu_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lk(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  /// Called by the write: counts it as waiting and blocks while closed.
  void pass() {
    std::unique_lock lk(mu_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lk, [&] { return open_; });
  }
  /// Waits until `n` writes have arrived; false after `guard`.
  bool wait_arrived(int n, std::chrono::seconds guard = 10s) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, guard, [&] { return arrived_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;
  int arrived_ = 0;
};

/// What a test sees of one node's state machine, from any thread.
struct probe {
  std::atomic<std::int64_t> total{0};
  std::atomic<int> restores{0};
  std::atomic<bool> wrote_on_strand{false};
  std::shared_ptr<gate> writes = std::make_shared<gate>();
  /// Where the last snapshot write ran (checked against an executor by the test).
  std::function<bool()> on_executor;
  std::atomic<bool> wrote_on_executor{false};
};

/// Adds each command's first 8 bytes to a total. Its snapshot is the total followed by
/// `padding` bytes, so a transfer spans many chunks; the write waits at the probe's gate.
struct snap_adder {
  std::int64_t total = 0;
  std::size_t padding = 0;
  std::shared_ptr<probe> p = std::make_shared<probe>();

  std::int64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    std::int64_t d = 0;
    std::memcpy(&d, cmd.data(), std::min(cmd.size(), sizeof d));
    total += d;
    p->total = total;
    return total;
  }

  struct view {
    std::int64_t total;
    std::size_t padding;
    std::shared_ptr<probe> p;
    std::error_code write(raftkit::snapshot_writer& w) {
      p->writes->pass();
      if (p->on_executor) p->wrote_on_executor = p->on_executor();
      if (auto ec = w.write_value(total)) return ec;
      const std::vector<std::byte> zeros(64u << 10);
      for (std::size_t left = padding; left > 0;) {
        const std::size_t n = std::min(left, zeros.size());
        if (auto ec = w.write(std::span(zeros.data(), n))) return ec;
        left -= n;
      }
      return {};
    }
  };
  view snapshot() const { return {total, padding, p}; }

  std::error_code restore(raftkit::snapshot_reader& r) {
    std::int64_t t = 0;
    if (!r.read_value(t) || r.remaining() != padding) return make_error_code(raftkit::errc::corrupt_snapshot);
    std::vector<std::byte> skip(64u << 10);
    while (r.remaining() > 0)
      if (r.read(skip) == 0) return make_error_code(raftkit::errc::corrupt_snapshot);
    total = t;
    p->total = t;
    ++p->restores;
    return {};
  }
};
static_assert(raftkit::snapshottable<snap_adder>);

using node_t = raftkit::asio::node<raftkit::file::log_store, snap_adder, raftkit::asio::tcp_transport,
                                   raftkit::file::snapshot_store>;
static_assert(node_t::snapshots_enabled);
using result_t = std::tuple<std::error_code, raftkit::index_t, std::int64_t>;

std::vector<std::byte> cmd(std::int64_t d) {
  std::vector<std::byte> v(sizeof d);
  std::memcpy(v.data(), &d, sizeof d);
  return v;
}

template <class T>
T get(std::future<T>& f, std::chrono::seconds guard = 20s) {
  REQUIRE(f.wait_for(guard) == std::future_status::ready);
  return f.get();
}

/// Polls (every 5 ms) until `done` holds; false after `guard`. Real time is only a hang
/// guard here, never asserted on.
template <class F>
bool wait_for(F done, std::chrono::seconds guard = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// This suite's temporary directories.
struct temp_dir : asio_test::temp_dir {
  temp_dir() : asio_test::temp_dir("raftkit-asio-snap-") {}
};

/// How a test cluster differs from the default one.
struct cluster_options {
  std::size_t size = 3;
  raftkit::asio::tcp_options tcp{};
  raftkit::asio::node_options driver{};
  std::size_t padding = 256u << 10;
  std::function<void(raftkit::node_config&)> tune = [](raftkit::node_config&) {};
};

/// Nodes with file logs and file snapshot stores under one directory, on one io thread.
/// Each can be stopped and started again from its directories, on the same port.
struct cluster {
  cluster_options o;
  temp_dir dir;
  ba::io_context io;
  ba::executor_work_guard<ba::io_context::executor_type> work{io.get_executor()};
  std::thread runner;
  raftkit::asio::cluster_map map;
  std::vector<std::unique_ptr<node_t>> nodes;
  std::vector<std::shared_ptr<probe>> probes;

  explicit cluster(cluster_options opts, std::vector<std::size_t> start_now = {0, 1, 2}) : o(std::move(opts)) {
    nodes.resize(o.size);
    probes.resize(o.size);
    // Binds every port first (port 0), so each node's address is known before any starts.
    for (raftkit::node_id id = 1; id <= o.size; ++id) map[id] = {"127.0.0.1", free_port()};
    runner = std::thread([this] { io.run(); });
    for (std::size_t i : start_now) start(i);
  }
  ~cluster() {
    for (auto& n : nodes) n.reset();
    work.reset();
    runner.join();
  }

  static std::uint16_t free_port() {
    ba::io_context tmp;
    ba::ip::tcp::acceptor a(tmp, ba::ip::tcp::endpoint(ba::ip::make_address("127.0.0.1"), 0));
    return a.local_endpoint().port();
  }

  /// Builds node i from its directories (restoring its newest snapshot) and starts it.
  void start(std::size_t i) {
    const auto id = static_cast<raftkit::node_id>(i + 1);
    raftkit::node_config cfg;
    cfg.id = id;
    for (raftkit::node_id m = 1; m <= o.size; ++m) cfg.members.push_back(m);
    // Long enough that a loaded machine (the tests share it) does not depose the leader.
    cfg.election_timeout = 1000ms;
    cfg.heartbeat_interval = 50ms;
    cfg.seed = 42;
    o.tune(cfg);
    const auto d = dir.path / std::to_string(id);
    std::filesystem::create_directories(d);
    snap_adder sm;
    sm.padding = o.padding;
    probes[i] = sm.p;
    nodes[i] = std::make_unique<node_t>(io.get_executor(), cfg, 99, map,
                                        [&] { return raftkit::file::log_store((d / "log").string()); }, std::move(sm),
                                        raftkit::file::snapshot_store((d / "snapshots").string()), o.tcp, o.driver);
    nodes[i]->start();
  }

  /// Stops node i and destroys it (its directories stay, unlocked once this returns).
  void stop(std::size_t i) {
    auto f = nodes[i]->stop(ba::use_future);
    get(f);
    nodes[i].reset();
    // Handlers still queued on the strand (the one that completed the stop, the destructor's
    // shutdown, a cancelled timer) hold the node's state, and so its stores' locks, until
    // they have run: wait until both stores can be opened again.
    const auto d = dir.path / std::to_string(i + 1);
    REQUIRE(wait_for([&] {
      auto marker = ba::post(io, ba::use_future);
      marker.get();
      try {
        raftkit::file::snapshot_store snaps((d / "snapshots").string());
        raftkit::file::log_store log((d / "log").string());
        return true;
      } catch (const std::system_error& e) {
        if (e.code() != raftkit::errc::locked) throw;
        return false;
      }
    }));
  }

  raftkit::node_status status(std::size_t i) {
    auto f = nodes[i]->status(ba::use_future);
    return get(f);
  }

  /// Waits until one of `running` leads and the others follow it; returns its index.
  std::size_t wait_leader(std::vector<std::size_t> running = {0, 1, 2}) {
    std::size_t leader = 0;
    REQUIRE(wait_for([&] {
      std::optional<std::size_t> l;
      for (std::size_t i : running)
        if (status(i).role == raftkit::role::leader) l = i;
      if (!l) return false;
      for (std::size_t i : running)
        if (status(i).leader != *l + 1) return false;
      leader = *l;
      return true;
    }));
    return leader;
  }

  /// Proposes `n` commands of 1 (of `bytes` bytes) on node i, all at once, and checks each
  /// is applied once: one refused as definitely not applied (no leader for a moment on a
  /// loaded machine) is proposed again; an outcome-unknown error fails the test.
  void write(std::size_t i, int n, std::size_t bytes = 8) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (n > 0) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::vector<std::future<result_t>> done;
      for (int k = 0; k < n; ++k) {
        auto v = cmd(1);
        v.resize(bytes);
        done.push_back(nodes[i]->propose(std::move(v), ba::use_future));
      }
      n = 0;
      for (auto& f : done) {
        const std::error_code ec = std::get<0>(get(f));
        REQUIRE((!ec || !raftkit::may_have_applied(ec)));
        if (ec) ++n;
      }
      if (n > 0) std::this_thread::sleep_for(20ms);  // a retry pause, not a wait for a result
    }
  }
};

}  // namespace

TEST_SUITE("asio_snapshots") {
  TEST_CASE("a cluster takes snapshots and compacts, and a follower restarted after compaction catches up through "
            "InstallSnapshot") {
    cluster_options o;
    o.tune = [](raftkit::node_config& c) {
      c.snapshot_interval = 100;
      c.snapshot_trailing_entries = 20;
      c.max_snapshot_chunk_bytes = 16u << 10;  // 256 KiB of padding: 17 chunks
    };
    cluster c(o);
    std::size_t l = c.wait_leader();
    c.write(l, 300);
    for (std::size_t i = 0; i < 3; ++i) {
      INFO("node ", i + 1);
      raftkit::node_status st;
      CHECK(wait_for([&] {
        st = c.status(i);
        return st.snapshot_index >= 200 && st.first_log_index > 1 && c.probes[i]->total == 300;
      }));
      INFO("snapshot ", st.snapshot_index, ", first index ", st.first_log_index, ", total ", c.probes[i]->total.load());
      CHECK(c.nodes[i]->counters().snapshots_taken >= 1);
    }

    const std::size_t f = (l + 1) % 3;
    const raftkit::index_t f_last = c.status(f).last_log_index;
    c.stop(f);
    // The others go on until the leader has compacted past everything the follower holds.
    c.write(l, 400);
    CHECK(wait_for([&] { return c.status(l).first_log_index > f_last + 1; }));
    const raftkit::index_t leader_snapshot = c.status(l).snapshot_index;

    c.start(f);
    CHECK(c.probes[f]->restores >= 1);  // its own snapshot, at start-up
    CHECK(wait_for([&] { return c.probes[f]->total == 700 && c.nodes[f]->counters().snapshots_installed >= 1; }));
    const auto st = c.status(f);
    INFO("follower: snapshot ", st.snapshot_index, ", first ", st.first_log_index, ", last ", st.last_log_index,
         ", applied ", st.applied_index, ", durable ", st.durable_index, ", installed ", c.nodes[f]->counters().snapshots_installed,
         ", restores ", c.probes[f]->restores.load(), "; it held up to ", f_last, ", the leader's snapshot ", leader_snapshot,
         ", leader first ", c.status(l).first_log_index);
    CHECK(st.snapshot_index >= leader_snapshot);
    // Its log is compacted behind the snapshot (how far depends on what had reached its disk).
    CHECK(st.first_log_index > 1);
    CHECK(c.probes[f]->restores >= 2);
    CHECK(c.nodes[f]->counters().snapshot_bytes_received >= o.padding);
    l = c.wait_leader();
    CHECK(c.nodes[l]->counters().snapshots_sent >= 1);
    // And it takes part from the log again: a write through it is applied on it.
    c.write(f, 1);
    CHECK(wait_for([&] { return c.probes[f]->total == 701; }));
  }

  TEST_CASE("a restart restores the newest snapshot and replays only the log after it") {
    cluster_options o;
    o.size = 1;
    o.tune = [](raftkit::node_config& c) {
      c.snapshot_interval = 100;
      c.snapshot_trailing_entries = 10;
    };
    raftkit::index_t snap = 0;
    {
      cluster c(o, {0});
      c.wait_leader({0});
      c.write(0, 250);
      CHECK(wait_for([&] { return c.status(0).snapshot_index >= 200; }));
      snap = c.status(0).snapshot_index;
      c.stop(0);
      // Same directories, a new incarnation.
      c.start(0);
      CHECK(c.probes[0]->restores == 1);
      CHECK(c.probes[0]->total >= static_cast<std::int64_t>(snap) - 1);  // the snapshot's state, at once
      c.wait_leader({0});
      CHECK(wait_for([&] { return c.probes[0]->total == 250; }));
      const auto st = c.status(0);
      CHECK(st.snapshot_index >= snap);
      // Applied this incarnation: the tail after the snapshot (and a no-op per term), not 250.
      CHECK(c.nodes[0]->counters().applied <= st.applied_index - snap);
      CHECK(c.nodes[0]->counters().applied < 100);
    }
  }

  TEST_CASE("proposals commit while a snapshot write is blocked: the write runs off the strand") {
    cluster_options o;
    o.tune = [](raftkit::node_config& c) { c.snapshot_interval = 0; };  // on request only
    cluster c(o);
    const std::size_t l = c.wait_leader();
    c.write(l, 10);
    c.probes[l]->writes->close();
    struct open_at_exit {  // if a check fails, the blocked write must still end
      gate& g;
      ~open_at_exit() { g.open(); }
    } reopen{*c.probes[l]->writes};
    auto snap = c.nodes[l]->snapshot_now(ba::use_future);
    REQUIRE(c.probes[l]->writes->wait_arrived(1));  // the write is running, and stays blocked
    c.write(l, 200);                                 // meanwhile these all commit and apply
    CHECK(c.probes[l]->total == 210);
    CHECK(snap.wait_for(0s) == std::future_status::timeout);
    CHECK(c.status(l).snapshot_index == 0);
    auto again = c.nodes[l]->snapshot_now(ba::use_future);
    CHECK(std::get<0>(get(again)) == raftkit::errc::busy);  // one write at a time
    c.probes[l]->writes->open();
    const auto [ec, index] = get(snap);
    CHECK_FALSE(ec);
    CHECK(index >= 11);   // the no-op and the first 10, at least
    CHECK(index <= 211);  // taken when asked, not after the 200
    CHECK(c.status(l).snapshot_index == index);
    CHECK(c.nodes[l]->counters().snapshots_taken == 1);
  }

  TEST_CASE("snapshot writes run on the executor given in node_options") {
    ba::thread_pool pool(1);
    cluster_options o;
    o.size = 1;
    o.driver.snapshot_executor = pool.get_executor();
    o.tune = [](raftkit::node_config& c) { c.snapshot_interval = 0; };
    cluster c(o, {});
    c.start(0);
    c.probes[0]->on_executor = [&pool] { return pool.get_executor().running_in_this_thread(); };
    c.wait_leader({0});
    c.write(0, 5);
    auto snap = c.nodes[0]->snapshot_now(ba::use_future);
    CHECK_FALSE(std::get<0>(get(snap)));
    CHECK(c.probes[0]->wrote_on_executor);
    c.stop(0);
    pool.join();
  }

  TEST_CASE("a node without snapshots answers snapshot_now with not_supported") {
    temp_dir dir;
    ba::io_context io;
    raftkit::node_config cfg;
    cfg.id = 1;
    cfg.members = {1};
    std::future<std::tuple<std::error_code, raftkit::index_t>> f;
    {
      // The same state machine, without a snapshot store: the default composition.
      raftkit::asio::node<raftkit::file::log_store, snap_adder> n(
          io.get_executor(), cfg, 99, {{1, {"127.0.0.1", 0}}},
          [&] { return raftkit::file::log_store((dir.path / "log").string()); }, snap_adder{});
      static_assert(!decltype(n)::snapshots_enabled);
      f = n.snapshot_now(ba::use_future);
      io.run_for(50ms);
    }
    io.run();
    CHECK(std::get<0>(get(f)) == raftkit::errc::not_supported);
  }

  TEST_CASE("InstallSnapshot chunks go in tcp_transport's bulk lane, held to its byte bound") {
    ba::io_context io;
    raftkit::asio::tcp_options t;
    t.max_queue_bytes = 64u << 10;
    // Peer 2's port has no listener: nothing leaves, so the queues only fill.
    raftkit::asio::tcp_transport tr(io.get_executor(), 1, 99,
                                    {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", cluster::free_port()}}},
                                    [](raftkit::message&&) {}, t);
    for (int i = 0; i < 8; ++i) {
      raftkit::message m;
      m.type = raftkit::message_type::install_snapshot;
      m.from = 1;
      m.to = 2;
      m.snapshot_offset = static_cast<std::uint64_t>(i) << 14;
      m.data = raftkit::shared_bytes::copy_of(std::string(16u << 10, 'x'));
      tr.send(std::move(m));
    }
    raftkit::message hb;
    hb.type = raftkit::message_type::append_entries;
    hb.from = 1;
    hb.to = 2;
    tr.send(std::move(hb));
    std::size_t backlog = 0;
    ba::post(tr.get_executor(), [&] { backlog = tr.backlog(); });  // after every send: one strand
    io.run_for(50ms);
    const auto st = tr.stats();
    CHECK(st.dropped == 5);  // three 16 KiB chunks fill the 64 KiB bulk queue
    CHECK(st.control_dropped == 0);
    CHECK(backlog == 4);  // those three and the heartbeat, which had its own lane
    tr.close();
    io.run_for(10ms);
  }

  TEST_CASE("the driver fits an InstallSnapshot chunk, with the snapshot's configuration, into one message's budget") {
    raftkit::asio::tcp_options t;
    t.max_queue_bytes = 256u << 10;
    const auto l = raftkit::asio::frame_limits(t.max_frame_size, t.max_queue_bytes, t.max_queue_messages);
    raftkit::node_config cfg;  // 1 MiB chunks by default
    cfg.members = {1, 2, 3};
    raftkit::asio::detail::fit_to_transport(cfg, l);
    CHECK(cfg.max_snapshot_chunk_bytes <= cfg.max_bytes_per_message);
    // The frame of a first chunk is carried: the engine sends the configuration in the
    // chunk's budget (here one of 200 bytes, members with addresses in their contexts).
    raftkit::message m;
    m.type = raftkit::message_type::install_snapshot;
    m.data = raftkit::shared_bytes::copy_of(std::string(cfg.max_snapshot_chunk_bytes - 200, 'x'));
    m.config = raftkit::shared_bytes::copy_of(std::string(200, 'c'));
    std::vector<std::byte> frame;
    CHECK(raftkit::wire::encode_frame(m, 99, frame) <= t.max_frame_size);
    CHECK(frame.size() <= t.max_queue_bytes);
    raftkit::node_config small;
    small.members = {1, 2, 3};
    small.max_snapshot_chunk_bytes = 4096;  // what already fits is left alone
    raftkit::asio::detail::fit_to_transport(small, l);
    CHECK(small.max_snapshot_chunk_bytes == 4096);
  }

  TEST_CASE("the driver fits InstallSnapshot chunks to a small transport queue, and a new follower installs the "
            "snapshot through it") {
    cluster_options o;
    o.tcp.max_queue_bytes = 256u << 10;  // smaller than the engine's 1 MiB chunk
    o.padding = 2u << 20;
    o.tune = [](raftkit::node_config& c) {
      c.snapshot_interval = 50;
      c.snapshot_trailing_entries = 5;
    };
    cluster c(o, {0, 1});  // node 3 joins late, after compaction
    const std::size_t l = c.wait_leader({0, 1});
    const auto& cfg = c.nodes[l]->config();
    CHECK(cfg.max_snapshot_chunk_bytes <= cfg.max_bytes_per_message);
    // More than one window of entries: the transport holds only the window the leader sent
    // node 3 before it started (those arrive once it does); the rest is compacted.
    c.write(l, 120, 4096);
    // A snapshot of everything (an automatic one may be mid-write: busy, ask again), so the
    // log is compacted to a few entries before its end.
    CHECK(wait_for([&] {
      auto f = c.nodes[l]->snapshot_now(ba::use_future);
      const auto [ec, index] = get(f);
      return !ec && index >= 121;
    }));
    CHECK(c.status(l).first_log_index > 100);
    c.start(2);
    // Counters are published after the input that installed the snapshot: wait for both.
    const bool installed =
        wait_for([&] { return c.probes[2]->total == 120 && c.nodes[2]->counters().snapshots_installed >= 1; });
    CHECK(installed);
    // (A chunk the follower is slow to acknowledge is sent again after two heartbeats, and
    // a copy may find the queue full and be dropped: the bound holding, not a failure.)
  }
}
