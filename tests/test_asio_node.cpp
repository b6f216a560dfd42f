// raftkit::asio::node: three drivers in one process over TCP on 127.0.0.1, with the memory
// and the file log stores. Real time and real sockets, so no step is scripted: every wait
// is for a condition (a leader, an applied index) with a bounded hang guard.

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

#include "raftkit/asio/node.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/memory/log_store.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;

/// Adds each command's first 8 bytes to a total and returns the new total.
struct adder {
  std::int64_t total = 0;
  std::int64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    std::int64_t d = 0;
    std::memcpy(&d, cmd.data(), std::min(cmd.size(), sizeof d));
    return total += d;
  }
};

std::vector<std::byte> cmd(std::int64_t d) {
  std::vector<std::byte> v(sizeof d);
  std::memcpy(v.data(), &d, sizeof d);
  return v;
}

/// Waits for a future, failing the test instead of hanging.
template <class T>
T get(std::future<T>& f, std::chrono::seconds guard = 10s) {
  REQUIRE(f.wait_for(guard) == std::future_status::ready);
  return f.get();
}

/// With a std::error_code first, use_future and use_awaitable deliver (error, value) as a
/// tuple (Asio turns only boost::system::error_code into exceptions): checks the error is
/// empty and returns the value.
/// The tuple is (error, index, value); the index is checked to be set on success.
std::int64_t ok(const std::tuple<std::error_code, raftkit::index_t, std::int64_t>& r) {
  CHECK_MESSAGE(!std::get<0>(r), std::get<0>(r).message());
  CHECK(std::get<1>(r) > 0);
  return std::get<2>(r);
}

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    path = std::filesystem::temp_directory_path() /
           ("raftkit-asio-node-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Three nodes on one io_context run by one thread, wired after binding port 0.
template <class Store>
struct cluster {
  using node_t = raftkit::asio::node<Store, adder>;
  ba::io_context io;
  ba::executor_work_guard<ba::io_context::executor_type> work{io.get_executor()};
  std::array<std::unique_ptr<node_t>, 3> nodes;
  std::thread runner;

  template <class MakeStore>
  explicit cluster(MakeStore make_store) {
    raftkit::asio::cluster_map map;
    for (raftkit::node_id id = 1; id <= 3; ++id) map[id] = {"127.0.0.1", 0};
    for (raftkit::node_id id = 1; id <= 3; ++id) {
      raftkit::node_config cfg;
      cfg.id = id;
      cfg.members = {1, 2, 3};
      cfg.election_timeout = 100ms;
      cfg.heartbeat_interval = 20ms;
      cfg.seed = 42;
      nodes[id - 1] = std::make_unique<node_t>(io.get_executor(), cfg, 99, map,
                                               [&] { return make_store(id); }, adder{});
    }
    for (auto& a : nodes)
      for (raftkit::node_id id = 1; id <= 3; ++id)
        a->set_peer(id, {"127.0.0.1", nodes[id - 1]->local_port()});
    runner = std::thread([this] { io.run(); });
    for (auto& n : nodes) n->start();
  }
  ~cluster() {
    for (auto& n : nodes) n.reset();
    work.reset();
    runner.join();
  }

  raftkit::node_status status(std::size_t i) {
    auto f = nodes[i]->status(ba::use_future);
    return get(f);
  }

  /// Polls (every 5 ms, on the io_context) until all running nodes agree on one leader;
  /// returns its index into `nodes`.
  std::size_t wait_leader(std::vector<std::size_t> running = {0, 1, 2}) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<std::size_t> leader;
      bool agree = true;
      for (std::size_t i : running) {
        const auto s = status(i);
        if (s.role == raftkit::role::leader) leader = i;
        if (s.leader == raftkit::no_node) agree = false;
      }
      if (leader && agree) {
        for (std::size_t i : running) agree = agree && status(i).leader == *leader + 1;
        if (agree) return *leader;
      }
      ba::steady_timer t(io, 5ms);
      auto f = t.async_wait(ba::use_future);
      f.wait_for(1s);
    }
    FAIL("no leader within 10 s");
    return 0;
  }

  /// Polls until node i has applied at least `index`.
  void wait_applied(std::size_t i, raftkit::index_t index) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (status(i).applied_index < index) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      ba::steady_timer t(io, 5ms);
      auto f = t.async_wait(ba::use_future);
      f.wait_for(1s);
    }
  }
};

/// The real file system, except that fdatasync fails with EIO once `fail` is set.
struct failing_fs : raftkit::file::posix_fs {
  std::shared_ptr<std::atomic<bool>> fail = std::make_shared<std::atomic<bool>>(false);
  int fdatasync(int fd) {
    if (*fail) return -EIO;
    return posix_fs::fdatasync(fd);
  }
};

auto memory_store() {
  return [](raftkit::node_id) { return raftkit::memory::log_store{}; };
}

}  // namespace

TEST_SUITE("asio_node") {
  TEST_CASE("three nodes elect one leader and a proposal completes through a callback on the strand") {
    cluster<raftkit::memory::log_store> c(memory_store());
    const std::size_t l = c.wait_leader();
    std::promise<std::pair<std::error_code, std::int64_t>> p;
    std::atomic<bool> on_strand{false};
    auto& leader = *c.nodes[l];
    leader.propose(cmd(5), [&](std::error_code ec, raftkit::index_t, std::int64_t v) {
      on_strand = leader.get_executor().running_in_this_thread();
      p.set_value({ec, v});
    });
    auto f = p.get_future();
    const auto [ec, v] = get(f);
    CHECK_FALSE(ec);
    CHECK(v == 5);
    CHECK(on_strand);
    CHECK(leader.counters().proposals >= 1);
    CHECK(leader.transport_stats().messages_sent > 0);
  }

  TEST_CASE("propose with use_future and use_awaitable; read goes through the log") {
    cluster<raftkit::memory::log_store> c(memory_store());
    auto& leader = *c.nodes[c.wait_leader()];
    auto f1 = leader.propose(cmd(2), ba::use_future);
    CHECK(ok(get(f1)) == 2);
    auto f2 = ba::co_spawn(
        c.io,
        [&]() -> ba::awaitable<std::int64_t> {
          const auto [ea, ia, a] = co_await leader.propose(cmd(3), ba::use_awaitable);
          const auto [eb, ib, b] = co_await leader.read(cmd(0), ba::use_awaitable);
          if (ea || eb || ib <= ia) co_return -1;
          co_return a * 100 + b;
        },
        ba::use_future);
    CHECK(get(f2) == 505);
  }

  TEST_CASE("a follower's proposal is forwarded to the leader and applied") {
    cluster<raftkit::memory::log_store> c(memory_store());
    const std::size_t l = c.wait_leader();
    const std::size_t follower = (l + 1) % 3;
    auto f = c.nodes[follower]->propose(cmd(7), ba::use_future);
    CHECK(ok(get(f)) == 7);
    CHECK(c.nodes[follower]->counters().forwarded == 1);
    CHECK(c.status(follower).role == raftkit::role::follower);
  }

  TEST_CASE("a proposal from a foreign thread completes") {
    cluster<raftkit::memory::log_store> c(memory_store());
    auto& leader = *c.nodes[c.wait_leader()];
    std::int64_t last = 0;
    std::thread t([&] {
      for (int i = 0; i < 50; ++i) {
        auto f = leader.propose(cmd(1), ba::use_future);
        last = std::get<2>(get(f));
      }
    });
    t.join();
    CHECK(last == 50);
  }

  TEST_CASE("stop completes pending proposals with shutting_down, later ones with stopped") {
    cluster<raftkit::memory::log_store> c(memory_store());
    const std::size_t l = c.wait_leader();
    // Without its followers the leader cannot commit, so the proposal stays pending.
    for (std::size_t i = 0; i < 3; ++i) {
      if (i == l) continue;
      auto f = c.nodes[i]->stop(ba::use_future);
      get(f);
    }
    auto pending = c.nodes[l]->propose(cmd(1), ba::use_future);
    CHECK(c.status(l).pending_proposals == 1);  // the strand ran the proposal first
    CHECK(pending.wait_for(0s) == std::future_status::timeout);
    auto stopped = c.nodes[l]->stop(ba::use_future);
    get(stopped);
    CHECK(std::get<0>(get(pending)) == raftkit::errc::shutting_down);
    auto after = c.nodes[l]->propose(cmd(1), ba::use_future);
    CHECK(std::get<0>(get(after)) == raftkit::errc::stopped);  // refused: entered no log
    auto again = c.nodes[l]->stop(ba::use_future);  // idempotent
    get(again);
  }

  TEST_CASE("file log store: a cluster replicates, restarts from its directories and replays") {
    temp_dir dir;
    auto make = [&](raftkit::node_id id) {
      return raftkit::file::log_store((dir.path / std::to_string(id)).string());
    };
    raftkit::index_t committed = 0;
    {
      cluster<raftkit::file::log_store> c(make);
      auto& leader = *c.nodes[c.wait_leader()];
      for (int i = 0; i < 20; ++i) {
        auto f = leader.propose(cmd(1), ba::use_future);
        CHECK(ok(get(f)) == i + 1);
      }
      committed = c.status(0).last_log_index;
      for (std::size_t i = 0; i < 3; ++i) c.wait_applied(i, 21);  // the no-op and 20
    }
    CHECK(committed >= 21);
    cluster<raftkit::file::log_store> c(make);
    auto& leader = *c.nodes[c.wait_leader()];
    // A new entry of the new term commits everything before it; the state machine, rebuilt
    // from the log, continues from 20.
    auto f = leader.propose(cmd(1), ba::use_future);
    CHECK(ok(get(f)) == 21);
  }

  TEST_CASE("a log store failure stops the node: pending proposals fail with io_error, later ones with stopped") {
    temp_dir dir;
    failing_fs fs;
    using store = raftkit::file::basic_log_store<failing_fs>;
    ba::io_context io;
    raftkit::node_config cfg;
    cfg.id = 1;
    cfg.members = {1};  // a cluster of one elects itself and commits alone
    cfg.election_timeout = 50ms;
    cfg.heartbeat_interval = 10ms;
    raftkit::asio::node<store, adder> n(io.get_executor(), cfg, 99, {{1, {"127.0.0.1", 0}}},
                                        [&] { return store((dir.path / "log").string(), {}, fs); },
                                        adder{});
    auto work = ba::make_work_guard(io);
    std::thread runner([&] { io.run(); });
    n.start();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {  // polls every 5 ms until the node has elected itself
      auto st = n.status(ba::use_future);
      if (get(st).role == raftkit::role::leader) break;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      ba::steady_timer t(io, 5ms);
      t.async_wait(ba::use_future).wait_for(1s);
    }
    auto first = n.propose(cmd(1), ba::use_future);
    CHECK(ok(get(first)) == 1);
    *fs.fail = true;
    auto failed = n.propose(cmd(1), ba::use_future);
    CHECK(std::get<0>(get(failed)) == raftkit::errc::io_error);
    auto after = n.propose(cmd(1), ba::use_future);
    CHECK(std::get<0>(get(after)) == raftkit::errc::stopped);  // the node had halted: not applied
    auto stopped = n.stop(ba::use_future);
    get(stopped);
    work.reset();
    runner.join();
  }
}
