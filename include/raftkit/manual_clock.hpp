#pragma once
/// \file manual_clock: time that moves only when a test or the simulator moves it.

#include <memory>

#include "raftkit/clock.hpp"

namespace raftkit {

/// A clock advanced by hand. Copies share one time, so a test can hold a copy and move
/// the time of the node that owns another.
class manual_clock {
 public:
  manual_clock() : now_(std::make_shared<time_point>()) {}

  /// The current time.
  time_point now() const noexcept { return *now_; }
  /// Moves time forward by `d` (never backward).
  void advance(duration d) noexcept {
    if (d.count() > 0) *now_ += d;
  }
  /// Sets the time; ignored if it would move backward (clocks are monotonic).
  void set(time_point t) noexcept {
    if (t > *now_) *now_ = t;
  }

 private:
  std::shared_ptr<time_point> now_;
};

static_assert(clock<manual_clock>);

}  // namespace raftkit
