#pragma once
// Bounded waits shared by the Asio driver's tests (test_asio_node.cpp, test_asio_reads.cpp).
// Real time is only a hang guard here, never asserted on.

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <thread>

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

}  // namespace asio_test
