#pragma once
/// \file The clock policy: where a node reads time. The engine never reads a wall clock.

#include <concepts>

#include "raftkit/types.hpp"

namespace raftkit {

/// What a clock must provide: a monotonic `now()` in nanoseconds.
template <class C>
concept clock = requires(const C& c) {
  { c.now() } -> std::convertible_to<time_point>;
};

}  // namespace raftkit
