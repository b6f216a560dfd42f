#pragma once
// What the Asio driver's tests share (test_asio_node.cpp, test_asio_reads.cpp,
// test_custom_transport.cpp, tls/test_tls.cpp): bounded waits, where real time is only a
// hang guard, never asserted on, and a state machine that adds its commands.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <future>
#include <span>
#include <thread>
#include <vector>

#include <unistd.h>

#include "raftkit/types.hpp"

namespace asio_test {

/// Waits for a future, failing the test instead of hanging.
template <class T>
T get(std::future<T>& f, std::chrono::seconds guard = std::chrono::seconds(10)) {
  REQUIRE(f.wait_for(guard) == std::future_status::ready);
  return f.get();
}

/// Polls (every 5 ms) until `done` holds; false after `guard`.
template <class F>
bool wait_for(F done, std::chrono::seconds guard = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// A fresh directory under the system's temporary one, removed with everything in it.
struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const std::string& prefix) {
    path = std::filesystem::temp_directory_path() /
           (prefix + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Adds each command's first 8 bytes to a total and returns the new total.
struct adder {
  std::int64_t total = 0;
  std::int64_t apply(raftkit::index_t, std::span<const std::byte> cmd) {
    std::int64_t d = 0;
    std::memcpy(&d, cmd.data(), std::min(cmd.size(), sizeof d));
    return total += d;
  }
};

/// The command that adds `d`.
inline std::vector<std::byte> cmd(std::int64_t d) {
  std::vector<std::byte> v(sizeof d);
  std::memcpy(v.data(), &d, sizeof d);
  return v;
}

}  // namespace asio_test
