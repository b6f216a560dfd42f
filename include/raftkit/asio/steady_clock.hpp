#pragma once
/// \file raftkit::asio::steady_clock: the clock policy of a real node.
///
/// The engine reads time only through its clock policy; over Asio that is the monotonic
/// std::chrono::steady_clock, so a wall-clock jump cannot start or delay an election.

#include <chrono>

#include "raftkit/clock.hpp"
#include "raftkit/types.hpp"

namespace raftkit::asio {

/// Monotonic time from std::chrono::steady_clock, in nanoseconds since its epoch.
struct steady_clock {
  /// Now, as the engine's time_point (nanoseconds since the steady clock's epoch).
  time_point now() const noexcept {
    return time_point(std::chrono::duration_cast<duration>(
        std::chrono::steady_clock::now().time_since_epoch()));
  }
};

static_assert(raftkit::clock<steady_clock>);

}  // namespace raftkit::asio
