#pragma once
/// \file Error codes for expected outcomes, in their own std::error_category.

#include <string>
#include <system_error>

namespace raftkit {

/// Expected outcomes of raftkit operations. Values are stable: they appear on the
/// wire (forwarded proposals) and in logs.
enum class errc {
  not_leader = 1,       ///< this node is not the leader; see the leader hint
  dropped = 2,          ///< the request was dropped (lost message, queue full)
  timeout = 3,          ///< no answer in time; the outcome is unknown
  busy = 4,             ///< too many pending proposals; retry later
  shutting_down = 5,    ///< the node is stopping
  leadership_lost = 6,  ///< leadership changed before the entry applied; outcome unknown
  corrupt_log = 7,      ///< a log record failed verification
  io_error = 8,         ///< a write or fsync failed; the store is unusable
  bad_message = 9,      ///< a malformed, foreign or undecodable message
  no_space = 10,        ///< the disk is full
  locked = 11,          ///< the data directory is in use by another process
  too_large = 12,       ///< a request or frame exceeds the configured maximum
};

namespace detail {
class errc_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "raftkit"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_leader: return "not the leader";
      case errc::dropped: return "request dropped";
      case errc::timeout: return "timed out";
      case errc::busy: return "too many pending proposals";
      case errc::shutting_down: return "node shutting down";
      case errc::leadership_lost: return "leadership lost; outcome unknown";
      case errc::corrupt_log: return "corrupt log";
      case errc::io_error: return "I/O error";
      case errc::bad_message: return "bad message";
      case errc::no_space: return "no space left on device";
      case errc::locked: return "data directory locked by another process";
      case errc::too_large: return "too large";
    }
    return "unknown raftkit error";
  }
};
}  // namespace detail

/// The category of raftkit::errc values.
inline const std::error_category& raftkit_category() noexcept {
  static const detail::errc_category cat;
  return cat;
}

/// Makes an error_code from a raftkit::errc (found by ADL).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), raftkit_category()};
}

}  // namespace raftkit

template <>
struct std::is_error_code_enum<raftkit::errc> : std::true_type {};
