#pragma once
/// \file Opening raftkit::file::log_store's directory: reading, verifying and repairing what
/// a crash left (see format.hpp for the format).
///
/// - Leftover `.tmp` files (an unfinished segment creation or hard-state replacement) never
///   became visible: they are removed.
/// - Segment headers are read first: the newest segment flagged *reset* voids every older
///   one, and those are removed unread.
/// - Every record is verified. A record that fails in a sealed (non-newest) segment, or an
///   unsealed older segment, refuses to open with `errc::corrupt_log` naming file and
///   offset. In the newest segment, bytes after the last good record that are not all zero
///   are either a torn write (cut off, zeroed, and reported) or corruption of data that was
///   once durable — told apart by the sync-group sequence: if a valid record follows the bad
///   bytes that was written after the bad record's group was durable (its group is two
///   later, or one later and its last record lacks flag bit 1), that group had completed its
///   fdatasync, so it is corruption and the store refuses to open. (Corruption of the last
///   one or two synced groups is indistinguishable from a torn write and is cut.)
/// - What was read may still be only in the page cache (a process crash keeps unsynced
///   writes readable). Before anything is reported durable — and so acknowledged, or voted
///   by — the segments kept, the hard state and the directory are synced (hardening
///   finding 3).
/// Recovery keeps no payload in memory: it fills the entry index (terms, record positions)
/// and lists the segments with the position of their first record; entries are read back
/// from the files when asked for.

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/file/entry_index.hpp"
#include "raftkit/file/format.hpp"
#include "raftkit/file/posix_fs.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file {

/// What opening the store found.
struct recovery_report {
  std::size_t segments = 0;          ///< segment files read
  std::size_t segments_removed = 0;  ///< older segments found void (before a reset) and removed
  std::size_t entries = 0;           ///< entries recovered
  bool tail_cut = false;             ///< a torn tail was cut off the newest segment
  std::string tail_file;             ///< ...in this file
  std::uint64_t tail_offset = 0;     ///< ...from this offset
  std::uint64_t tail_bytes = 0;      ///< ...this many non-zero bytes were discarded
};

namespace detail {

/// A segment file: its number, the index its records start at, and (for the owner) the
/// position of its first record in entry_index terms.
struct segment {
  std::uint64_t id = 0;
  index_t first = 0;
  std::uint64_t base = 0;
};

/// Where the writer continues after recovery.
struct writer_start {
  std::vector<segment> segments;   ///< in id order
  int fd = -1;                     ///< the newest segment, open for appending; -1: the next append opens one
  std::uint64_t offset = 0;        ///< ...where its next record goes
  std::uint64_t capacity = 0;      ///< ...its size
  std::uint64_t next_seq = 1;      ///< the next sync group's number
  std::uint64_t next_id = 1;       ///< the next segment's number
  index_t last = 0;                ///< the last entry
  term_t last_term = 0;            ///< ...and its term (the base term when the log is empty)
};

/// Reads directory `dir` into `index`; returns where the writer continues. Throws failure.
/// The descriptor in the result is the caller's to close.
template <file_system FS>
class recovery {
 public:
  recovery(FS& fs, std::string dir, entry_index& index) : fs_(fs), dir_(std::move(dir)), index_(index) {}
  recovery(const recovery&) = delete;
  recovery& operator=(const recovery&) = delete;
  ~recovery() {
    if (out_.fd >= 0) fs_.close(out_.fd);
  }

  /// Runs recovery; afterwards `hard()`, `report()` and `take_writer_start()` hold the result.
  void run() {
    std::vector<std::string> names;
    if (int r = fs_.list_dir(dir_, names); r < 0) throw_io(r, "list " + dir_);
    std::vector<std::pair<std::uint64_t, std::string>> segs;
    for (const auto& n : names) {
      if (ends_with(n, ".tmp")) {
        if (int r = fs_.unlink(path(n)); r < 0) throw_io(r, "unlink " + path(n));
      } else if (ends_with(n, ".seg")) {
        auto id = parse_segment_name(n);
        if (!id) throw failure{errc::corrupt_log, path(n) + ": not a raftkit segment name"};
        segs.emplace_back(*id, n);
      }
    }
    std::sort(segs.begin(), segs.end());
    read_hard_state();

    std::vector<segment_header> heads;
    std::size_t start = 0;
    for (std::size_t k = 0; k < segs.size(); ++k) {
      heads.push_back(read_header(segs[k].first, segs[k].second));
      if (heads.back().flags & segment_flag_reset) start = k;
    }
    for (std::size_t k = 0; k < start; ++k)
      if (int r = fs_.unlink(path(segs[k].second)); r < 0) throw_io(r, "unlink " + path(segs[k].second));
    report_.segments_removed = start;

    for (std::size_t k = start; k < segs.size(); ++k)
      load_segment(segs[k].second, heads[k], k + 1 == segs.size(), k == start);
    if (!segs.empty()) out_.next_id = segs.back().first + 1;
    out_.next_seq = next_seq_;
    report_.segments = segs.size() - start;
    report_.entries = index_.last() + 1 - index_.first();
    out_.last = index_.last();
    out_.last_term = index_.term_at(index_.last());
    sync_recovered();
  }

  const hard_state& hard() const noexcept { return hard_; }
  const recovery_report& report() const noexcept { return report_; }
  writer_start take_writer_start() { return std::exchange(out_, writer_start{}); }

 private:
  std::string path(const std::string& name) const { return join_path(dir_, name); }

  [[noreturn]] void throw_corrupt(const std::string& file, std::uint64_t off, const std::string& why) const {
    throw failure{errc::corrupt_log, path(file) + ": " + why + " at offset " + std::to_string(off)};
  }

  void read_hard_state() {
    int fd = fs_.open(path("hard_state"), false);
    if (fd == -ENOENT) return;
    if (fd < 0) throw_io(fd, "open " + path("hard_state"));
    std::byte b[hard_state_size];
    long long n = fs_.pread(fd, b, sizeof b, 0);
    fs_.close(fd);
    if (n < 0) throw_io(static_cast<int>(n), "read " + path("hard_state"));
    if (auto why = decode_hard_state(b, static_cast<std::size_t>(n), hard_))
      throw failure{errc::corrupt_log, path("hard_state") + ": " + *why};
  }

  segment_header read_header(std::uint64_t id, const std::string& name) {
    const std::string p = path(name);
    int fd = fs_.open(p, false);
    if (fd < 0) throw_io(fd, "open " + p);
    std::byte b[segment_header_size];
    long long n = fs_.pread(fd, b, sizeof b, 0);
    fs_.close(fd);
    if (n < 0) throw_io(static_cast<int>(n), "read " + p);
    segment_header h;
    if (auto why = segment_header::decode(b, static_cast<std::size_t>(n), h))
      throw failure{errc::corrupt_log, p + ": " + *why};
    if (h.id != id) throw_corrupt(name, 0, "bad segment header");
    return h;
  }

  /// Reads and verifies one segment (header `hd` already read), indexing its entries.
  void load_segment(const std::string& name, const segment_header& hd, bool newest, bool oldest) {
    const std::string p = path(name);
    int fd = fs_.open(p, false);
    if (fd < 0) throw_io(fd, "open " + p);
    struct closer {
      FS& fs;
      int fd;
      ~closer() {
        if (fd >= 0) fs.close(fd);
      }
    } guard{fs_, fd};
    long long sz = fs_.size(fd);
    if (sz < 0) throw_io(static_cast<int>(sz), "stat " + p);
    std::vector<std::byte> buf(static_cast<std::size_t>(sz));
    long long n = fs_.pread(fd, buf.data(), buf.size(), 0);
    if (n != sz) throw_io(n < 0 ? static_cast<int>(n) : -EIO, "read " + p);
    const std::byte* b = buf.data();
    const std::size_t size = buf.size();
    const index_t first = hd.first;
    if (oldest) {
      index_.reset(first - 1, hd.prev_term, [](entry&) {});
      index_.set_next_position(0);
    } else {
      // a segment starting inside the log loaded so far voids the entries from there (§5.3)
      if (first < index_.first() || first > index_.last() + 1)
        throw_corrupt(name, 0, "segment starts at index " + std::to_string(first) + " but the log holds " +
                                   std::to_string(index_.first()) + ".." + std::to_string(index_.last()));
      if (hd.version >= 2 && hd.prev_term != index_.term_at(first - 1))
        throw_corrupt(name, 0, "segment header gives entry " + std::to_string(first - 1) + " term " +
                                   std::to_string(hd.prev_term) + " but the log holds term " +
                                   std::to_string(index_.term_at(first - 1)));
      index_.truncate_after(first - 1, [](entry&) {});
    }
    // positions continue from the entries kept; within the segment they follow the offsets
    const std::uint64_t base = index_.next_position();
    out_.segments.push_back(segment{hd.id, first, base});

    // records
    std::size_t off = segment_header_size;
    term_t last_term = index_.term_at(index_.last());
    std::uint64_t last_seq = next_seq_ - 1;  // sequences never decrease along the log
    bool sealed = false;
    record_header h;
    for (;;) {
      const bool ok = record_valid(b + off, size - off, h) && h.seq >= last_seq &&
                      (h.type == seal_type ? h.index == index_.last()
                                           : h.index == index_.last() + 1 && h.term >= last_term);
      if (!ok) break;
      last_seq = h.seq;
      if (h.type == seal_type) {
        off += record_size(h.len);
        sealed = true;
        break;
      }
      last_term = h.term;
      index_.append_cold(h.term, base + (off - segment_header_size));
      off += record_size(h.len);
    }
    index_.set_next_position(base + (off - segment_header_size));
    next_seq_ = last_seq + 1;

    if (!newest) {
      if (!sealed) throw_corrupt(name, off, "bad record");
      return;
    }
    if (sealed) return;  // the newest segment is complete; the next append opens a new one
    if (!all_zero(b + off, size - off)) cut_torn_tail(name, fd, b, size, off, last_seq);
    guard.fd = -1;
    out_.fd = fd;
    out_.offset = off;
    out_.capacity = size;
  }

  /// Non-zero bytes after the last good record of the newest segment, from `off`: a torn
  /// write (zeroed durably) or lost durable data (refused). The bad record's sync group is
  /// at most the lowest group m of the valid records after it (groups only grow along a
  /// file). If one of those records was written when every group up to m was already
  /// durable (synced_before), the bad record had been synced: this is corruption. After a
  /// torn write no record can claim that.
  void cut_torn_tail(const std::string& name, int fd, const std::byte* b, std::size_t size, std::size_t off,
                     std::uint64_t last_seq) {
    std::uint64_t lowest_after = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t claimed = 0;  // the highest group some later record says was durable
    std::uint64_t max_seen = last_seq;
    for (std::size_t o = off; o + record_header_size <= size; o += 8) {
      record_header r;
      if (!record_valid(b + o, size - o, r)) continue;
      max_seen = std::max(max_seen, r.seq);
      lowest_after = std::min(lowest_after, r.seq);
      claimed = std::max(claimed, synced_before(r));
    }
    if (claimed > 0 && claimed >= lowest_after) throw_corrupt(name, off, "bad record followed by later durable records");
    // cut: zero the torn bytes durably before anything new is written after them
    std::size_t end = size;
    while (end > off && b[end - 1] == std::byte{0}) --end;
    end = std::min(pad8(end), size);
    report_.tail_cut = true;
    report_.tail_file = name;
    report_.tail_offset = off;
    report_.tail_bytes = end - off;
    std::vector<std::byte> zeros(end - off);
    if (long long w = fs_.pwrite(fd, zeros.data(), zeros.size(), off); w < 0)
      throw_io(static_cast<int>(w), "zero torn tail of " + path(name));
    if (int r = fs_.fdatasync(fd); r < 0) throw_io(r, "fdatasync " + path(name));
    next_seq_ = max_seen + 1;
  }

  /// Syncs what recovery read (see the file comment): the segments kept, the hard state,
  /// and the directory (renames and removals not yet synced, the removals above).
  void sync_recovered() {
    for (const segment& sg : out_.segments) {
      const std::string p = path(segment_name(sg.id));
      const bool current = sg.id == out_.segments.back().id && out_.fd >= 0;
      int fd = current ? out_.fd : fs_.open(p, false);
      if (fd < 0) throw_io(fd, "open " + p);
      int r = fs_.fsync(fd);
      if (!current) fs_.close(fd);
      if (r < 0) throw_io(r, "fsync " + p);
    }
    if (int fd = fs_.open(path("hard_state"), false); fd >= 0) {
      int r = fs_.fsync(fd);
      fs_.close(fd);
      if (r < 0) throw_io(r, "fsync " + path("hard_state"));
    } else if (fd != -ENOENT) {
      throw_io(fd, "open " + path("hard_state"));
    }
    if (int r = fs_.sync_dir(dir_); r < 0) throw_io(r, "fsync " + dir_);
  }

  FS& fs_;
  std::string dir_;
  entry_index& index_;
  hard_state hard_;
  recovery_report report_;
  writer_start out_;
  std::uint64_t next_seq_ = 1;
};

}  // namespace detail
}  // namespace raftkit::file
