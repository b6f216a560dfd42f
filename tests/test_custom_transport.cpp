// raftkit::asio::node over a transport that is not TCP: examples/custom_transport's
// Unix-domain socket transport runs a three-node cluster (elects, proposes through the
// leader and through a follower, stops). Also: the smallest type the async_transport
// concept accepts, and the driver instantiated with it.

#include <doctest/doctest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
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

#include "raftkit/asio/node.hpp"
#include "raftkit/memory/log_store.hpp"
#include "unix_transport.hpp"

#include "asio_waits.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;

using asio_test::adder;
using asio_test::cmd;

template <class T>
T get(std::future<T>& f) {
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

/// The least a transport needs for the driver: no limits, no backlog, no counters.
struct minimal_transport {
  using executor_type = ba::strand<ba::any_io_executor>;
  using receive_handler = std::function<void(raftkit::message&&)>;
  executor_type ex;
  void send(raftkit::message&&) {}
  void close() {}
  executor_type get_executor() const { return ex; }
};
static_assert(raftkit::async_transport<minimal_transport>);
static_assert(!raftkit::transport_with_limits<minimal_transport>);
static_assert(!raftkit::async_transport<raftkit::memory::log_store>);
using minimal_node = raftkit::asio::node<raftkit::memory::log_store, adder, minimal_transport>;
static_assert(std::is_same_v<minimal_node::executor_type, ba::strand<ba::any_io_executor>>);

using uds_node = raftkit::asio::node<raftkit::memory::log_store, adder, custom::unix_transport>;

}  // namespace

TEST_SUITE("custom_transport") {
  TEST_CASE("asio::node over Unix-domain sockets: three nodes elect, take proposals through leader and follower, stop") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() /
                         ("raftkit-uds-test-" + std::to_string(::getpid()) + "-" +
                          std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(dir);
    struct remove_dir {
      fs::path p;
      ~remove_dir() {
        std::error_code ec;
        fs::remove_all(p, ec);
      }
    } cleanup{dir};
    custom::path_map paths;
    for (raftkit::node_id id = 1; id <= 3; ++id) paths[id] = (dir / (std::to_string(id) + ".sock")).string();

    ba::io_context io;
    auto work = ba::make_work_guard(io);
    std::array<std::unique_ptr<uds_node>, 3> nodes;
    for (raftkit::node_id id = 1; id <= 3; ++id) {
      raftkit::node_config cfg;
      cfg.id = id;
      cfg.members = {1, 2, 3};
      cfg.election_timeout = 100ms;
      cfg.heartbeat_interval = 20ms;
      cfg.seed = 7;
      nodes[id - 1] = std::make_unique<uds_node>(
          cfg,
          [&, id](custom::unix_transport::receive_handler h) {
            return custom::unix_transport(io.get_executor(), id, 0xAB, paths, std::move(h), 1u << 20);
          },
          raftkit::memory::log_store{}, adder{});
    }
    std::thread runner([&] { io.run(); });
    struct join_runner {
      std::array<std::unique_ptr<uds_node>, 3>& nodes;
      decltype(work)& w;
      std::thread& t;
      ~join_runner() {
        for (auto& n : nodes) n.reset();
        w.reset();
        t.join();
      }
    } joiner{nodes, work, runner};
    for (auto& n : nodes) n->start();
    // The driver fitted the engine to the transport's 1 MiB queue and 4 MiB frames.
    CHECK(nodes[0]->config().max_inflight_bytes < (1u << 20));

    std::optional<std::size_t> leader;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!leader) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::size_t agree = 0;
      std::optional<std::size_t> l;
      for (std::size_t i = 0; i < 3; ++i) {
        auto f = nodes[i]->status(ba::use_future);
        const auto st = get(f);
        if (st.role == raftkit::role::leader) l = i;
        agree += st.leader != raftkit::no_node;
      }
      if (l && agree == 3) leader = l;
      else std::this_thread::sleep_for(5ms);
    }
    auto a = nodes[*leader]->propose(cmd(40), ba::use_future);
    const auto ra = get(a);
    CHECK_FALSE(std::get<0>(ra));
    CHECK(std::get<2>(ra) == 40);
    const std::size_t follower = (*leader + 1) % 3;
    auto b = nodes[follower]->propose(cmd(2), ba::use_future);
    const auto rb = get(b);
    CHECK_FALSE(std::get<0>(rb));
    CHECK(std::get<2>(rb) == 42);
    CHECK(nodes[follower]->counters().forwarded == 1);
    CHECK(nodes[*leader]->transport_stats().sent > 0);
    CHECK(nodes[*leader]->transport_stats().dropped == 0);
    for (auto& n : nodes) {
      auto f = n->stop(ba::use_future);
      get(f);
    }
    auto after = nodes[*leader]->propose(cmd(1), ba::use_future);
    CHECK(std::get<0>(get(after)) == raftkit::errc::stopped);  // refused after stop: not applied
  }
}
