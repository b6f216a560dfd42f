// raftkit::asio::node: three drivers in one process over TCP on 127.0.0.1, with the memory
// and the file log stores. Real time and real sockets, so no step is scripted: every wait
// is for a condition (a leader, an applied index) with a bounded hang guard.

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <unistd.h>

#include "asio_waits.hpp"
#include "raftkit/asio/node.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/memory/log_store.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;
using tcp = ba::ip::tcp;

using asio_test::adder;
using asio_test::cmd;

using asio_test::get;
using asio_test::wait_for;

/// With a std::error_code first, use_future and use_awaitable deliver (error, value) as a
/// tuple (Asio turns only boost::system::error_code into exceptions): checks the error is
/// empty and returns the value.
/// The tuple is (error, index, value); the index is checked to be set on success.
std::int64_t ok(const std::tuple<std::error_code, raftkit::index_t, std::int64_t>& r) {
  CHECK_MESSAGE(!std::get<0>(r), std::get<0>(r).message());
  CHECK(std::get<1>(r) > 0);
  return std::get<2>(r);
}

/// This suite's temporary directories.
struct temp_dir : asio_test::temp_dir {
  temp_dir() : asio_test::temp_dir("raftkit-asio-node-") {}
};

/// How a test cluster differs from the default one.
struct cluster_options {
  raftkit::asio::tcp_options tcp{};
  raftkit::asio::node_options driver{};
  /// Adjusts each node's configuration before it is built.
  std::function<void(raftkit::node_config&)> tune = [](raftkit::node_config&) {};
  /// The address node `from` uses for node `to`, which listens on `port`.
  std::function<raftkit::asio::peer_address(raftkit::node_id from, raftkit::node_id to, std::uint16_t port)>
      address = [](raftkit::node_id, raftkit::node_id, std::uint16_t port) {
        return raftkit::asio::peer_address{"127.0.0.1", port};
      };
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
  explicit cluster(MakeStore make_store, const cluster_options& o = {}) {
    raftkit::asio::cluster_map map;
    for (raftkit::node_id id = 1; id <= 3; ++id) map[id] = {"127.0.0.1", 0};
    for (raftkit::node_id id = 1; id <= 3; ++id) {
      raftkit::node_config cfg;
      cfg.id = id;
      cfg.members = {1, 2, 3};
      cfg.election_timeout = 100ms;
      cfg.heartbeat_interval = 20ms;
      cfg.seed = 42;
      o.tune(cfg);
      nodes[id - 1] = std::make_unique<node_t>(io.get_executor(), cfg, 99, map,
                                               [&] { return make_store(id); }, adder{}, o.tcp, o.driver);
    }
    for (raftkit::node_id from = 1; from <= 3; ++from)
      for (raftkit::node_id to = 1; to <= 3; ++to)
        if (from != to) nodes[from - 1]->set_peer(to, o.address(from, to, nodes[to - 1]->local_port()));
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

/// Holds a node's strand (and, with one io thread, the whole io_context) busy until
/// released, so what the test does meanwhile piles up in the driver.
class strand_block {
 public:
  template <class Node>
  explicit strand_block(Node& n) {
    ba::post(n.get_executor(), [this, go = release_.get_future().share()] {
      entered_.set_value();
      go.wait();
    });
    entered_.get_future().wait();
  }
  void release() {
    if (!released_) release_.set_value();
    released_ = true;
  }
  ~strand_block() { release(); }

 private:
  std::promise<void> entered_, release_;
  bool released_ = false;
};

/// A one-node cluster (it elects itself) on its own io thread.
template <class Store = raftkit::memory::log_store>
struct single {
  using node_t = raftkit::asio::node<Store, adder>;
  ba::io_context io;
  ba::executor_work_guard<ba::io_context::executor_type> work{io.get_executor()};
  std::unique_ptr<node_t> n;
  std::thread runner;
  explicit single(raftkit::asio::node_options opts = {}) {
    raftkit::node_config cfg;
    cfg.id = 1;
    cfg.members = {1};
    cfg.election_timeout = 50ms;
    cfg.heartbeat_interval = 10ms;
    n = std::make_unique<node_t>(io.get_executor(), cfg, 99, raftkit::asio::cluster_map{{1, {"127.0.0.1", 0}}},
                                 Store{}, adder{}, raftkit::asio::tcp_options{}, opts);
    runner = std::thread([this] { io.run(); });
    n->start();
    REQUIRE(wait_for([&] {
      auto st = n->status(ba::use_future);
      return get(st).role == raftkit::role::leader;
    }));
  }
  ~single() {
    n.reset();
    work.reset();
    runner.join();
  }
};

/// A TCP relay on loopback standing in for the network on one link. `stall()` is a
/// silent partition: every connection it carries stops being forwarded (without being
/// closed), and so does every connection made while it lasts; they stay that way after
/// `heal()`, as a connection left in TCP's retransmission backoff stays silent long after
/// the network heals. Connections made after `heal()` are forwarded. It runs on its own
/// io_context; the receive buffer is small so a stalled sender is noticed quickly.
class relay {
 public:
  relay(ba::io_context& io, std::uint16_t target_port)
      : io_(io), acceptor_(io, tcp::endpoint(ba::ip::make_address("127.0.0.1"), 0)),
        target_(ba::ip::make_address("127.0.0.1"), target_port) {
    acceptor_.set_option(ba::socket_base::receive_buffer_size(16 << 10));
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  void stall() {
    ba::post(io_, [this] {
      stalled_ = true;
      for (auto& c : conns_) c->stuck = true;
    });
  }
  void heal() {
    ba::post(io_, [this] { stalled_ = false; });
  }
  /// Closes everything; call on the relay's io thread or after it stopped.
  void close() {
    boost::system::error_code ignore;
    acceptor_.close(ignore);
    for (auto& c : conns_) {
      c->in.close(ignore);
      c->out.close(ignore);
    }
  }

 private:
  using tcp = ba::ip::tcp;
  struct conn {
    explicit conn(ba::io_context& io) : in(io), out(io) {}
    tcp::socket in, out;
    bool stuck = false;
    std::array<char, 16384> up{}, down{};
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      auto c = std::make_shared<conn>(io_);
      c->in = std::move(s);
      c->stuck = stalled_;
      conns_.push_back(c);
      if (!c->stuck) {
        c->out.async_connect(target_, [this, c](boost::system::error_code e) {
          if (e || c->stuck) return;
          pump(c, c->in, c->out, c->up);
          pump(c, c->out, c->in, c->down);
        });
      }
      accept();
    });
  }
  void pump(const std::shared_ptr<conn>& c, tcp::socket& from, tcp::socket& to, std::array<char, 16384>& buf) {
    from.async_read_some(ba::buffer(buf), [this, c, &from, &to, &buf](boost::system::error_code ec, std::size_t n) {
      if (c->stuck) return;  // swallowed by the partition; nothing more is read
      if (ec) {
        boost::system::error_code ignore;
        to.shutdown(tcp::socket::shutdown_send, ignore);
        return;
      }
      ba::async_write(to, ba::buffer(buf.data(), n), [this, c, &from, &to, &buf](boost::system::error_code e, std::size_t) {
        if (!e && !c->stuck) pump(c, from, to, buf);
      });
    });
  }

  ba::io_context& io_;
  tcp::acceptor acceptor_;
  tcp::endpoint target_;
  bool stalled_ = false;
  std::vector<std::shared_ptr<conn>> conns_;
};

/// Keeps `outstanding` proposals of `payload` bytes in flight on `n` until `stop()`.
template <class Node>
struct closed_loop {
  Node& n;
  std::vector<std::byte> payload;
  std::atomic<bool> running{true};
  std::atomic<int> outstanding{0};
  std::atomic<std::uint64_t> ok{0};
  closed_loop(Node& node, std::size_t bytes, int clients) : n(node), payload(bytes, std::byte{0}) {
    for (int i = 0; i < clients; ++i) issue();
  }
  void issue() {
    if (!running) return;
    ++outstanding;
    n.propose(payload, [this](std::error_code ec, raftkit::index_t, std::int64_t) {
      if (!ec) ++ok;
      --outstanding;
      issue();
    });
  }
  /// Stops issuing and waits for what is in flight.
  void stop() {
    running = false;
    REQUIRE(wait_for([&] { return outstanding == 0; }));
  }
};

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

  TEST_CASE("the driver fits the engine's message size and window to what the transport carries") {
    raftkit::asio::tcp_options t;
    t.max_frame_size = 64u << 10;
    t.max_queue_bytes = 512u << 10;
    const raftkit::transport_limits l =
        raftkit::asio::frame_limits(t.max_frame_size, t.max_queue_bytes, t.max_queue_messages);
    raftkit::node_config cfg;  // engine defaults: 1 MiB messages, 64 x 32 MiB in flight
    raftkit::asio::detail::fit_to_transport(cfg, l);
    CHECK(cfg.max_bytes_per_message < t.max_frame_size);
    CHECK(cfg.max_inflight_bytes < t.max_queue_bytes);
    // The largest AppendEntries the engine may build (max_entries_per_message entries, the
    // engine's byte count at its limit) is exactly one frame.
    const std::size_t engine_entry = raftkit::entry{}.wire_size();
    raftkit::message m;
    m.type = raftkit::message_type::append_entries;
    for (std::size_t i = 0; i + 1 < cfg.max_entries_per_message; ++i) m.entries.push_back(raftkit::entry{});
    const std::size_t last = cfg.max_bytes_per_message - cfg.max_entries_per_message * engine_entry;
    m.entries.push_back(raftkit::entry{1, 1, raftkit::entry_type::normal,
                                       raftkit::shared_bytes::copy_of(std::string(last, 'x'))});
    std::vector<std::byte> frame;
    CHECK(raftkit::wire::encode_frame(m, 99, frame) == t.max_frame_size);
    // A whole window of such messages (the last may take the bytes past the limit by one
    // message) fits the per-peer queue.
    const std::size_t fixed = frame.size() - cfg.max_bytes_per_message;
    CHECK(cfg.max_inflight_messages * fixed + (cfg.max_inflight_bytes - 1) + cfg.max_bytes_per_message <=
          t.max_queue_bytes);
    // What already fits is left alone.
    raftkit::node_config small;
    small.max_bytes_per_message = 1000;
    small.max_inflight_bytes = 10000;
    raftkit::asio::detail::fit_to_transport(small, l);
    CHECK(small.max_bytes_per_message == 1000);
    CHECK(small.max_inflight_bytes == 10000);
  }

  TEST_CASE("a transport too small for one AppendEntries is a set-up error") {
    ba::io_context io;
    raftkit::node_config cfg;
    cfg.id = 1;
    cfg.members = {1};
    raftkit::asio::tcp_options t;
    t.max_frame_size = 256;  // not even max_entries_per_message empty entries
    using node_t = raftkit::asio::node<raftkit::memory::log_store, adder>;
    CHECK_THROWS_AS(node_t(io.get_executor(), cfg, 99, {{1, {"127.0.0.1", 0}}}, raftkit::memory::log_store{},
                           adder{}, t),
                    std::invalid_argument);
    t = {};
    t.max_queue_bytes = 16u << 10;  // a window of 64 empty messages takes more
    CHECK_THROWS_AS(node_t(io.get_executor(), cfg, 99, {{1, {"127.0.0.1", 0}}}, raftkit::memory::log_store{},
                           adder{}, t),
                    std::invalid_argument);
    t.max_queue_bytes = 1u << 20;  // smaller than two of the engine's 1 MiB messages: they shrink
    {
      node_t n(io.get_executor(), cfg, 99, {{1, {"127.0.0.1", 0}}}, raftkit::memory::log_store{}, adder{}, t);
      CHECK(n.config().max_bytes_per_message <= t.max_queue_bytes / 2);
      CHECK(n.config().max_inflight_bytes >= t.max_queue_bytes / 4);
    }
    io.run();  // the node's shutdown and the transport's close run dry
  }

  TEST_CASE("a burst larger than the transport's queue is paced by the fitted window, nothing dropped") {
    cluster_options o;
    o.tcp.max_frame_size = 64u << 10;
    o.tcp.max_queue_bytes = 512u << 10;
    cluster<raftkit::memory::log_store> c(memory_store(), o);
    auto& leader = *c.nodes[c.wait_leader()];
    CHECK(leader.config().max_bytes_per_message < o.tcp.max_frame_size);
    constexpr int n = 200;  // 200 x 16 KiB: six times the queue, proposed as one batch
    std::vector<std::future<std::tuple<std::error_code, raftkit::index_t, std::int64_t>>> done;
    {
      strand_block hold(leader);
      for (int i = 0; i < n; ++i) {
        auto v = cmd(1);
        v.resize(16u << 10);
        done.push_back(leader.propose(std::move(v), ba::use_future));
      }
    }
    for (auto& f : done) ok(get(f, 20s));
    const auto st = leader.transport_stats();
    CHECK(st.dropped == 0);
    CHECK(st.control_dropped == 0);
  }

  TEST_CASE("a flood of proposals through the driver is held to its queue bound and answered busy") {
    raftkit::asio::node_options opts;
    opts.max_queued_proposals = 100;
    single s(opts);
    constexpr int flood = 1000;
    std::atomic<int> busy{0}, applied{0}, other{0};
    {
      strand_block hold(*s.n);  // nothing drains while the flood arrives
      for (int i = 0; i < flood; ++i) {
        s.n->propose(cmd(1), [&](std::error_code ec, raftkit::index_t, std::int64_t) {
          if (ec == raftkit::errc::busy) ++busy;
          else if (!ec) ++applied;
          else ++other;
        });
      }
      const auto q = s.n->queue_stats();
      CHECK(q.queued == opts.max_queued_proposals);
      CHECK(q.busy == flood - opts.max_queued_proposals);
    }
    REQUIRE(wait_for([&] { return busy + applied + other == flood; }));
    CHECK(busy == flood - 100);
    CHECK(applied == 100);
    CHECK(other == 0);
    const auto q = s.n->queue_stats();
    CHECK(q.max_queued == opts.max_queued_proposals);
    CHECK(q.queued == 0);
  }

  TEST_CASE("destroying a node without stop completes its pending and queued proposals with shutting_down") {
    cluster<raftkit::memory::log_store> c(memory_store());
    const std::size_t l = c.wait_leader();
    for (std::size_t i = 0; i < 3; ++i) {  // without followers nothing commits
      if (i == l) continue;
      auto f = c.nodes[i]->stop(ba::use_future);
      get(f);
    }
    auto pending = c.nodes[l]->propose(cmd(1), ba::use_future);
    CHECK(c.status(l).pending_proposals == 1);
    std::vector<std::future<std::tuple<std::error_code, raftkit::index_t, std::int64_t>>> queued;
    {
      strand_block hold(*c.nodes[l]);
      for (int i = 0; i < 10; ++i) queued.push_back(c.nodes[l]->propose(cmd(1), ba::use_future));
      c.nodes[l].reset();  // no stop(): the destructor must fail what is pending
    }
    CHECK(std::get<0>(get(pending)) == raftkit::errc::shutting_down);
    for (auto& f : queued) CHECK(std::get<0>(get(f)) == raftkit::errc::shutting_down);
  }

  TEST_CASE("a node destroyed before its io_context ran takes back the durable handler it gave its store") {
    // raftkit-kv builds its node, then fails to listen for HTTP and unwinds without ever
    // running the io_context: the node never shut down, so the handler (holding a strand
    // of that io_context) stayed in the file store it was lent, and the store's end
    // destroyed the strand after its io_context. Under ASan a heap-use-after-free; on the
    // CI machine the process hung in the dead strand's mutex.
    auto handler = std::make_shared<std::function<void(raftkit::index_t)>>();
    struct notifying_store : raftkit::memory::log_store {
      std::shared_ptr<std::function<void(raftkit::index_t)>> h;
      explicit notifying_store(std::shared_ptr<std::function<void(raftkit::index_t)>> p) : h(std::move(p)) {}
      void set_durable_handler(std::function<void(raftkit::index_t)> f) { *h = std::move(f); }
    };
    raftkit::node_config cfg;
    cfg.id = 1;
    cfg.members = {1};
    {
      ba::io_context io;
      raftkit::asio::node<notifying_store, adder> n(io.get_executor(), cfg, 99,
                                                    raftkit::asio::cluster_map{{1, {"127.0.0.1", 0}}},
                                                    notifying_store(handler), adder{});
      CHECK(static_cast<bool>(*handler));
    }
    CHECK_FALSE(static_cast<bool>(*handler));

    // The same with a real file store lent through log_store_ref, which outlives the node
    // and the io_context and then writes, syncs (durability advances) and closes.
    temp_dir dir;
    raftkit::file::log_store store(dir.path.string());
    using ref = raftkit::log_store_ref<raftkit::file::log_store>;
    {
      ba::io_context io;
      raftkit::asio::node<ref, adder> n(io.get_executor(), cfg, 99, raftkit::asio::cluster_map{{1, {"127.0.0.1", 0}}},
                                        [&] { return ref(store); }, adder{});
    }
    const raftkit::entry e{1, store.last_index() + 1, raftkit::entry_type::noop, {}};
    store.append(std::span(&e, 1));
    CHECK(!store.wait_durable(e.index));
    CHECK(store.durable_index() == e.index);
  }

  TEST_CASE("a connection stuck across a silent partition is replaced and replication resumes after it heals") {
    // Every link goes through its own relay. Node 3 gets a long election timeout, so the
    // campaigns of a node that hears no leader (there is no pre-vote yet) do not mix into
    // what this measures: the leader's link to node 3 goes silent under load, its writes
    // stall, the write timeout replaces the connection (the relay keeps the old one stuck
    // forever), and once the relay heals node 3 catches up.
    ba::io_context relay_io;
    auto relay_work = ba::make_work_guard(relay_io);
    std::map<std::pair<raftkit::node_id, raftkit::node_id>, std::unique_ptr<relay>> relays;
    cluster_options o;
    o.tcp.write_timeout = 500ms;  // (2 s by default) keeps the partition, and the log to catch up, short
    o.tune = [](raftkit::node_config& cfg) {
      cfg.election_timeout = 150ms;  // the engine's defaults
      cfg.heartbeat_interval = 30ms;
      if (cfg.id == 3) cfg.election_timeout = 30s;
    };
    o.address = [&](raftkit::node_id from, raftkit::node_id to, std::uint16_t port) {
      auto& r = relays[{from, to}];
      r = std::make_unique<relay>(relay_io, port);
      return raftkit::asio::peer_address{"127.0.0.1", r->port()};
    };
    std::thread relay_runner;
    struct stop_relays {
      ba::io_context& io;
      decltype(relay_work)& work;
      std::thread& runner;
      decltype(relays)& all;
      ~stop_relays() {
        ba::post(io, [this] {
          for (auto& [link, r] : all) r->close();
        });
        work.reset();
        if (runner.joinable()) runner.join();
      }
    };
    cluster<raftkit::memory::log_store> c(memory_store(), o);
    stop_relays cleanup{relay_io, relay_work, relay_runner, relays};
    relay_runner = std::thread([&] { relay_io.run(); });
    const std::size_t l = c.wait_leader({0, 1, 2});
    REQUIRE(l != 2);
    auto& leader = *c.nodes[l];
    const raftkit::node_id leader_id = l + 1;

    closed_loop load(leader, 512, 4);
    REQUIRE(wait_for([&] { return load.ok > 200; }));
    const auto elections_before = c.nodes[0]->counters().elections + c.nodes[1]->counters().elections +
                                  c.nodes[2]->counters().elections;
    relays.at({leader_id, 3})->stall();
    // The partition lasts until the leader gives up on the stuck connection (it keeps
    // committing with the other follower meanwhile), or 10 s if it never does.
    wait_for([&] { return leader.transport_stats().write_timeouts >= 1; }, 10s);
    load.stop();
    const raftkit::index_t target = c.status(l).commit_index;
    const raftkit::index_t before = c.status(2).applied_index;
    relays.at({leader_id, 3})->heal();
    const auto healed = std::chrono::steady_clock::now();
    using ms = std::chrono::duration<double, std::milli>;
    REQUIRE(wait_for([&] { return c.status(2).applied_index > before; }, 30s));
    const ms resumed = std::chrono::steady_clock::now() - healed;
    REQUIRE(wait_for([&] { return c.status(2).applied_index >= target; }, 30s));
    const ms caught_up = std::chrono::steady_clock::now() - healed;
    const auto elections = c.nodes[0]->counters().elections + c.nodes[1]->counters().elections +
                           c.nodes[2]->counters().elections - elections_before;
    MESSAGE("after the relay healed, node 3 applied a new entry in " << resumed.count() << " ms ("
            << resumed.count() / 150.0 << " election timeouts of 150 ms) and caught up on "
            << (target - before) << " entries in " << caught_up.count() << " ms (" << caught_up.count() / 150.0
            << "); write timeouts " << leader.transport_stats().write_timeouts << ", elections "
            << elections);
    CHECK(leader.transport_stats().write_timeouts >= 1);
  }
}
