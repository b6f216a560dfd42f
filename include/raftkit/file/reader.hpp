#pragma once
/// \file Reading entries of raftkit::file::log_store back from its segment files (owner
/// thread), for entries no longer in the tail cache: a follower catching up, a restart
/// replaying the log.
///
/// A read fetches `read_ahead` bytes from the record's offset into one of a few windows
/// (least recently used is replaced), so reading on in order costs one pread per window
/// and a few followers reading at different places do not evict each other. Every record
/// read is verified (CRC, index, term, type) before it is returned. A window may hold bytes
/// that were not yet written when it was read (the writer appends to the newest segment
/// meanwhile), so a record that fails in a window is read again from the file; only a
/// record that fails when read afresh is corrupt.

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/file/format.hpp"
#include "raftkit/file/posix_fs.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file::detail {

template <file_system FS>
class segment_reader {
 public:
  segment_reader(FS& fs, std::string dir, std::size_t read_ahead)
      : fs_(fs), dir_(std::move(dir)), read_ahead_(std::max<std::size_t>(read_ahead, 4096)) {}
  segment_reader(const segment_reader&) = delete;
  segment_reader& operator=(const segment_reader&) = delete;
  ~segment_reader() { close_all(); }

  /// Reads entry `i` (term `t`) from offset `off` of segment `seg` into `out`; on failure
  /// returns what failed (the store turns failed with it).
  std::optional<failure> read(std::uint64_t seg, std::uint64_t off, index_t i, term_t t, entry& out) {
    window* hit = find(seg, off);
    if (hit && decode(*hit, off, i, t, out)) return std::nullopt;
    window& w = hit ? *hit : victim();  // a stale window is read again
    if (auto f = fill(w, seg, off, record_header_size)) return f;
    if (w.len >= record_header_size) {  // a record longer than the window: read all of it
      const auto h = record_header::decode(w.bytes.data());
      if (record_size(h.len) > w.len && record_size(h.len) <= std::uint64_t{1} << 33)
        if (auto f = fill(w, seg, off, record_size(h.len))) return f;
    }
    if (decode(w, off, i, t, out)) return std::nullopt;
    w.len = 0;
    return failure{errc::corrupt_log, join_path(dir_, segment_name(seg)) + ": the record of entry " +
                                          std::to_string(i) + " fails verification when read back at offset " +
                                          std::to_string(off)};
  }

  /// Forgets windows and closes descriptors (after segments may have been deleted).
  void close_all() {
    for (auto& w : windows_) w.len = 0;
    for (auto& [id, fd] : fds_) fs_.close(fd);
    fds_.clear();
  }

  /// Bytes held by the windows.
  std::size_t bytes() const noexcept {
    std::size_t n = 0;
    for (const auto& w : windows_) n += w.bytes.capacity();
    return n;
  }

 private:
  struct window {
    std::uint64_t seg = 0;
    std::uint64_t off = 0;  // file offset of bytes[0]
    std::size_t len = 0;    // bytes valid
    std::uint64_t used = 0;
    std::vector<std::byte> bytes;
  };

  window* find(std::uint64_t seg, std::uint64_t off) {
    for (auto& w : windows_)
      if (w.len && w.seg == seg && off >= w.off && off - w.off + record_header_size <= w.len) {
        w.used = ++tick_;
        return &w;
      }
    return nullptr;
  }
  window& victim() {
    window* v = &windows_[0];
    for (auto& w : windows_)
      if (w.used < v->used) v = &w;
    v->used = ++tick_;
    return *v;
  }

  /// Reads max(read_ahead, need) bytes of segment `seg` from `off` into `w`.
  std::optional<failure> fill(window& w, std::uint64_t seg, std::uint64_t off, std::uint64_t need) {
    w.len = 0;
    const std::string p = join_path(dir_, segment_name(seg));
    int fd = descriptor(seg);
    if (fd < 0)
      return failure{errno_code(fd), "open " + p + ": " + std::generic_category().message(-fd)};
    const std::size_t n = std::max<std::size_t>(read_ahead_, static_cast<std::size_t>(need));
    if (w.bytes.size() < n) w.bytes.resize(n);
    long long r = fs_.pread(fd, w.bytes.data(), n, off);
    if (r < 0) return failure{errno_code(static_cast<int>(r)), "read " + p + ": " + std::generic_category().message(static_cast<int>(-r))};
    w.seg = seg;
    w.off = off;
    w.len = static_cast<std::size_t>(r);
    return std::nullopt;
  }

  /// Decodes and verifies the record at file offset `off` from window `w`.
  static bool decode(const window& w, std::uint64_t off, index_t i, term_t t, entry& out) {
    const std::size_t at = static_cast<std::size_t>(off - w.off);
    record_header h;
    if (!record_valid(w.bytes.data() + at, w.len - at, h)) return false;
    if (h.index != i || h.term != t || h.type == seal_type) return false;
    out = entry{h.term, h.index, static_cast<entry_type>(h.type),
                shared_bytes::copy_of(std::span<const std::byte>(w.bytes.data() + at + record_header_size, h.len))};
    return true;
  }

  int descriptor(std::uint64_t seg) {
    for (auto& [id, fd] : fds_)
      if (id == seg) return fd;
    int fd = fs_.open(join_path(dir_, segment_name(seg)), false);
    if (fd < 0) return fd;
    if (fds_.size() >= 8) {  // a few segments at a time; the oldest descriptor goes
      fs_.close(fds_.front().second);
      fds_.erase(fds_.begin());
    }
    fds_.emplace_back(seg, fd);
    return fd;
  }

  FS& fs_;
  std::string dir_;
  std::size_t read_ahead_;
  std::array<window, 4> windows_{};
  std::uint64_t tick_ = 0;
  std::vector<std::pair<std::uint64_t, int>> fds_;
};

}  // namespace raftkit::file::detail
