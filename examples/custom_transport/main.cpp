// raftkit-custom-transport: three raftkit::asio::node instances in one process, talking
// over Unix-domain sockets through custom::unix_transport (unix_transport.hpp) instead
// of TCP. It elects a leader, proposes through the leader and through a follower (which
// forwards), prints what the state machine returned, and stops.
//
//   build/examples/custom_transport/raftkit-custom-transport

#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "raftkit/asio/node.hpp"
#include "raftkit/memory/log_store.hpp"
#include "unix_transport.hpp"

namespace {

/// The replicated state: a running sum of the 8-byte integers proposed.
struct counter {
  std::int64_t total = 0;
  std::int64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    std::int64_t d = 0;
    std::memcpy(&d, cmd.data(), std::min(cmd.size(), sizeof d));
    return total += d;
  }
};

using node_type = raftkit::asio::node<raftkit::memory::log_store, counter, custom::unix_transport>;

std::vector<std::byte> command(std::int64_t d) {
  std::vector<std::byte> v(sizeof d);
  std::memcpy(v.data(), &d, sizeof d);
  return v;
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("raftkit-uds-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  custom::path_map paths;
  for (raftkit::node_id id = 1; id <= 3; ++id) paths[id] = (dir / ("node" + std::to_string(id) + ".sock")).string();

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::unique_ptr<node_type>> nodes;
  for (raftkit::node_id id = 1; id <= 3; ++id) {
    raftkit::node_config cfg;
    cfg.id = id;
    cfg.members = {1, 2, 3};
    // The factory the driver calls with its receive handler: the only place that names
    // the transport's own constructor.
    auto make_transport = [&, id](custom::unix_transport::receive_handler on_receive) {
      return custom::unix_transport(io.get_executor(), id, 0xC0FFEE, paths, std::move(on_receive));
    };
    nodes.push_back(std::make_unique<node_type>(cfg, make_transport, raftkit::memory::log_store{}, counter{}));
  }
  std::thread runner([&] { io.run(); });
  for (auto& n : nodes) n->start();

  int rc = 1;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::size_t leader = nodes.size();
  while (leader == nodes.size() && std::chrono::steady_clock::now() < deadline) {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i]->status(boost::asio::use_future).get().role == raftkit::role::leader) leader = i;
    std::this_thread::sleep_for(10ms);
  }
  if (leader < nodes.size()) {
    std::printf("leader: node %zu (window fitted to the transport: %zu bytes per message, %zu in flight)\n",
                leader + 1, nodes[leader]->config().max_bytes_per_message,
                nodes[leader]->config().max_inflight_bytes);
    const std::size_t follower = (leader + 1) % nodes.size();
    auto a = nodes[leader]->propose(command(40), boost::asio::use_future).get();
    auto b = nodes[follower]->propose(command(2), boost::asio::use_future).get();
    std::printf("through the leader: %s, total %lld at index %llu\n", std::get<0>(a).message().c_str(),
                static_cast<long long>(std::get<2>(a)), static_cast<unsigned long long>(std::get<1>(a)));
    std::printf("through node %zu (forwarded): %s, total %lld at index %llu\n", follower + 1,
                std::get<0>(b).message().c_str(), static_cast<long long>(std::get<2>(b)),
                static_cast<unsigned long long>(std::get<1>(b)));
    if (!std::get<0>(a) && !std::get<0>(b) && std::get<2>(b) == 42) rc = 0;
  } else {
    std::fprintf(stderr, "no leader within 10 s\n");
  }
  for (auto& n : nodes) n->stop(boost::asio::use_future).get();
  nodes.clear();
  work.reset();
  runner.join();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}
