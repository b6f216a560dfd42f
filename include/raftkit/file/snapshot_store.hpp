#pragma once
/// \file raftkit::file::snapshot_store — durable snapshots in one directory.
///
/// ## On disk
/// The directory (created if missing) holds:
///  - `snapshot.lock`: flock'ed while a store has the directory open (a second opener gets
///    `errc::locked`);
///  - `snapshot-<index>-<term>.snap` (16 hex digits each): committed snapshots;
///  - `snapshot-<index>-<term>-<n>.tmp`: snapshots being written; leftovers of a crash are
///    deleted on open;
///  - `<snapshot name>.corrupt`: files refused on open, set aside for inspection and never read
///    again.
/// No other name is touched, so the directory may be shared with a `file::log_store`.
///
/// A file is a 64-byte header, the configuration bytes, then the content:
///
///     0  magic "RKSNAPSH"      8  u32 format version   12 u32 header size (64)
///     16 u64 index             24 u64 term             32 u64 content size
///     40 u32 content CRC-32C   44 u32 config length    48 u32 config CRC-32C
///     52 u32 0                 56 u32 CRC-32C of bytes 0..56           60 u32 0
///
/// little-endian. A sink writes the content through a buffer into a temporary file, leaving
/// room for the header and configuration, and asks the disk to start writing back each chunk
/// written (`sync_file_range` on Linux: the disk works while the next chunk is filled);
/// `commit` writes the header and configuration, fsyncs the file once, renames it into place
/// and fsyncs the directory, then deletes all but the 2 newest snapshots and fsyncs the
/// directory again. So a crash at any moment leaves the previous snapshot, or the new one
/// complete.
///
/// ## Opening
/// Snapshots are verified newest first: header CRC, format version, name against header,
/// configuration CRC, file size against the header, and a CRC over the whole content. The
/// first that passes is `latest()`. Each one refused on the way is renamed to `.corrupt` and
/// listed in `recovery()` with its file name and the reason; older ones are kept unread as
/// fallbacks. An I/O error while opening throws std::system_error with errc::io_error (or
/// `locked`, `no_space`) and a message naming the file.
///
/// ## Threads and errors
/// As the raftkit::snapshot_store concept says: `latest`, `create` and `open` may be called
/// from any thread; sinks and sources from one thread at a time each. `latest()` and `open()`
/// only take a short lock; a commit's fsyncs run without it (its rename, directory fsync and
/// deletions hold a second lock that serialises commits). The file-system policy is called
/// from several threads at once. After open nothing throws except RAFTKIT_ASSERT on misuse:
/// writes and commits return `no_space` (ENOSPC, EDQUOT) or `io_error` (any other errno),
/// discard the temporary file at once and leave the previous snapshot as it was. Copies of a
/// store are handles to one open store; sinks keep it (and its lock) alive, sources keep only
/// their file open.

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <concepts>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/detail/crc32c.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/file/posix_fs.hpp"
#include "raftkit/snapshot_store.hpp"

namespace raftkit::file {

static_assert(std::endian::native == std::endian::little,
              "raftkit::file::snapshot_store writes little-endian headers");

/// What the snapshot store needs from a file system: the members of file::file_system it
/// calls, each with the meaning documented there (so `posix_fs` serves both stores, and a test
/// double needs only these). Every call returns a non-negative value or `-errno`.
template <class F>
concept snapshot_file_system = requires(F& f, const std::string& p, int fd, void* out, const void* in,
                                        std::size_t n, std::uint64_t off, std::vector<std::string>& names) {
  { f.open(p, bool{}) } -> std::same_as<int>;
  { f.close(fd) } -> std::same_as<int>;
  { f.pwrite(fd, in, n, off) } -> std::same_as<long long>;
  { f.pread(fd, out, n, off) } -> std::same_as<long long>;
  { f.fsync(fd) } -> std::same_as<int>;
  { f.size(fd) } -> std::same_as<long long>;
  { f.rename(p, p) } -> std::same_as<int>;
  { f.unlink(p) } -> std::same_as<int>;
  { f.make_dir(p) } -> std::same_as<int>;
  { f.sync_dir(p) } -> std::same_as<int>;
  { f.list_dir(p, names) } -> std::same_as<int>;
  { f.lock(p) } -> std::same_as<int>;
  { f.unlock(fd) } -> std::same_as<void>;
};

static_assert(snapshot_file_system<posix_fs>);

/// Optional in a snapshot_file_system: starts writing a range of a file back to the disk
/// without waiting for it, so the disk works while a sink fills its next chunk and the fsync
/// at commit has little left to do. Errors are ignored (the fsync reports them).
template <class F>
concept writeback_hint = requires(F& f, int fd, std::uint64_t off, std::uint64_t n) {
  { f.start_writeback(fd, off, n) } -> std::same_as<int>;
};

/// The snapshot store's POSIX policy: posix_fs, plus the writeback hint on Linux.
struct snapshot_posix_fs : posix_fs {
  int start_writeback([[maybe_unused]] int fd, [[maybe_unused]] std::uint64_t off,
                      [[maybe_unused]] std::uint64_t n) {
#ifdef __linux__
    return ::sync_file_range(fd, static_cast<off_t>(off), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE) == 0 ? 0 : -errno;
#else
    return 0;
#endif
  }
};

static_assert(snapshot_file_system<snapshot_posix_fs> && writeback_hint<snapshot_posix_fs>);

/// Tuning of a file snapshot store.
struct snapshot_options {
  /// A sink gathers this many bytes before one write; larger writes go straight to the file.
  std::size_t buffer_bytes = 1u << 20;
};

/// A snapshot file that opening refused.
struct snapshot_refusal {
  std::string file;      ///< path of the refused file
  std::string reason;    ///< what failed verification
  std::string moved_to;  ///< where it was set aside
  /// One line for a log: the file, why it was refused and where it went.
  std::string message() const { return file + ": refused: " + reason + "; moved to " + moved_to; }
};

/// What opening the snapshot directory found.
struct snapshot_recovery_report {
  std::vector<snapshot_refusal> refused;         ///< newest first
  std::vector<std::string> removed_temporaries;  ///< unfinished snapshots deleted
  std::string used;                              ///< path latest() comes from; empty when none
};

namespace detail {

inline constexpr char snapshot_magic[8] = {'R', 'K', 'S', 'N', 'A', 'P', 'S', 'H'};
inline constexpr std::uint32_t snapshot_format_version = 1;
inline constexpr std::size_t snapshot_header_size = 64;
inline constexpr std::size_t snapshot_header_crc_at = 56;
inline constexpr std::string_view snapshot_prefix = "snapshot-";

/// Sequential little-endian field access over a header buffer.
struct le_cursor {
  std::byte* p;
  template <class T>
  void put(T v) noexcept {
    std::memcpy(p, &v, sizeof v);
    p += sizeof v;
  }
  template <class T>
  T get() noexcept {
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
};

/// The fixed part of a snapshot file's header (see the file comment).
struct snapshot_header {
  std::uint32_t version = snapshot_format_version;
  std::uint32_t header_size = snapshot_header_size;
  index_t index = 0;
  term_t term = 0;
  std::uint64_t size = 0;
  std::uint32_t crc = 0;
  std::uint32_t config_len = 0;
  std::uint32_t config_crc = 0;

  /// Header of `m`, whose configuration the file carries after the header.
  static snapshot_header of(const snapshot_meta& m) noexcept {
    snapshot_header h;
    h.index = m.index;
    h.term = m.term;
    h.size = m.size;
    h.crc = m.crc;
    h.config_len = static_cast<std::uint32_t>(m.config.size());
    h.config_crc = raftkit::detail::crc32c(m.config.data(), m.config.size());
    return h;
  }
  void encode(std::byte* b) const noexcept {
    std::memcpy(b, snapshot_magic, 8);
    le_cursor c{b + 8};
    c.put(version), c.put(header_size), c.put(index), c.put(term), c.put(size), c.put(crc);
    c.put(config_len), c.put(config_crc), c.put(std::uint32_t{0});
    c.put(raftkit::detail::crc32c(b, snapshot_header_crc_at)), c.put(std::uint32_t{0});
  }
  /// Decodes and checks the fixed header: nullopt with `why` set when it is not one.
  static std::optional<snapshot_header> decode(std::byte* b, std::string& why) {
    if (std::memcmp(b, snapshot_magic, 8) != 0) {
      why = "not a raftkit snapshot (bad magic)";
      return std::nullopt;
    }
    le_cursor c{b + 8};
    snapshot_header h;
    h.version = c.get<std::uint32_t>();
    h.header_size = c.get<std::uint32_t>();
    h.index = c.get<index_t>();
    h.term = c.get<term_t>();
    h.size = c.get<std::uint64_t>();
    h.crc = c.get<std::uint32_t>();
    h.config_len = c.get<std::uint32_t>();
    h.config_crc = c.get<std::uint32_t>();
    c.get<std::uint32_t>();
    if (c.get<std::uint32_t>() != raftkit::detail::crc32c(b, snapshot_header_crc_at)) {
      why = "header checksum mismatch";
      return std::nullopt;
    }
    if (h.version != snapshot_format_version) {
      why = "unsupported format version " + std::to_string(h.version);
      return std::nullopt;
    }
    if (h.header_size != snapshot_header_size) {
      why = "unsupported header size " + std::to_string(h.header_size);
      return std::nullopt;
    }
    return h;
  }
  /// Where the content starts in the file.
  std::uint64_t content_offset() const noexcept { return snapshot_header_size + config_len; }
};

inline std::string hex16(std::uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

/// "snapshot-<index>-<term>.snap"
inline std::string snapshot_file_name(index_t i, term_t t) {
  return std::string(snapshot_prefix) + hex16(i) + "-" + hex16(t) + ".snap";
}

/// Parses a committed snapshot's name into (index, term); nullopt for any other name.
inline std::optional<std::pair<index_t, term_t>> parse_snapshot_file_name(std::string_view n) {
  constexpr std::size_t len = snapshot_prefix.size() + 16 + 1 + 16 + 5;
  if (n.size() != len || !n.starts_with(snapshot_prefix) || !n.ends_with(".snap") ||
      n[snapshot_prefix.size() + 16] != '-')
    return std::nullopt;
  auto hex = [&](std::size_t at, std::uint64_t& v) {
    v = 0;
    for (std::size_t k = at; k < at + 16; ++k) {
      const char c = n[k];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<std::uint64_t>(d);
    }
    return true;
  };
  std::pair<index_t, term_t> r;
  if (!hex(snapshot_prefix.size(), r.first) || !hex(snapshot_prefix.size() + 17, r.second)) return std::nullopt;
  return r;
}

inline bool is_snapshot_temporary(std::string_view n) {
  return n.starts_with(snapshot_prefix) && n.ends_with(".tmp");
}

/// The errc of a failed call's -errno: a full disk, or any other I/O failure.
inline std::error_code snapshot_io_error(long long neg_errno) noexcept {
  return neg_errno == -ENOSPC || neg_errno == -EDQUOT ? errc::no_space : errc::io_error;
}

}  // namespace detail

/// A directory of durable snapshots; `FS` is the file-system policy (real POSIX by default).
template <snapshot_file_system FS = snapshot_posix_fs>
class basic_snapshot_store {
  /// An open file of a source; closed when the last source copy goes.
  struct open_file {
    open_file(std::shared_ptr<FS> f, int d) noexcept : fs(std::move(f)), fd(d) {}
    open_file(const open_file&) = delete;
    open_file& operator=(const open_file&) = delete;
    ~open_file() { fs->close(fd); }
    std::shared_ptr<FS> fs;
    int fd;
  };
  /// A snapshot file the store keeps; `meta` is known for the newest (verified or committed
  /// by this store) and for those committed since open.
  struct kept_file {
    std::string path;
    std::optional<snapshot_meta> meta;
    std::uint64_t content_offset = 0;
  };
  struct shared {
    std::shared_ptr<FS> fs;
    std::string dir;
    snapshot_options opts;
    int lock_fd = -1;
    std::atomic<std::uint64_t> next_temp{0};
    std::mutex commit_mu;         // serialises commits: check, rename, directory fsyncs, deletions
    mutable std::mutex mu;        // guards `kept` (held briefly, never across an fsync)
    std::vector<kept_file> kept;  // ascending by index; the last one is latest()
    snapshot_recovery_report report;

    ~shared() {
      if (lock_fd >= 0) fs->unlock(lock_fd);
    }
    std::string path(std::string_view name) const { return dir + "/" + std::string(name); }
    std::optional<snapshot_meta> latest() const {
      std::lock_guard lk(mu);
      if (kept.empty()) return std::nullopt;
      return kept.back().meta;
    }
  };

 public:
  /// How many committed snapshots the store keeps.
  static constexpr std::size_t kept_count = 2;

  /// Writes a sink's bytes through a buffer into a temporary file; `publish` puts it in place.
  class sink_backend {
   public:
    std::error_code append(std::span<const std::byte> b) {
      const std::size_t cap = st_->opts.buffer_bytes;
      if (buffered_ + b.size() > cap)
        if (auto e = flush()) return e;
      if (b.size() >= cap) return write_file(b.data(), b.size());
      std::memcpy(buf_.get() + buffered_, b.data(), b.size());
      buffered_ += b.size();
      return {};
    }

    /// Writes the header, fsyncs, renames into place, fsyncs the directory, then deletes the
    /// snapshots beyond the 2 newest.
    std::error_code publish(snapshot_meta m) {
      if (auto e = flush()) return e;
      std::vector<std::byte> head(content_offset_);
      detail::snapshot_header::of(m).encode(head.data());
      if (!m.config.empty())
        std::memcpy(head.data() + detail::snapshot_header_size, m.config.data(), m.config.size());
      if (long long w = fs().pwrite(fd_, head.data(), head.size(), 0); w < 0) return detail::snapshot_io_error(w);
      if (int r = fs().fsync(fd_); r < 0) return detail::snapshot_io_error(r);
      if (int r = fs().close(std::exchange(fd_, -1)); r < 0) return detail::snapshot_io_error(r);

      std::lock_guard commit_lk(st_->commit_mu);
      if (auto e = raftkit::detail::not_newer(st_->latest(), m.index)) return e;
      const std::string dst = st_->path(detail::snapshot_file_name(m.index, m.term));
      if (int r = fs().rename(temp_, dst); r < 0) return detail::snapshot_io_error(r);
      temp_.clear();
      if (int r = fs().sync_dir(st_->dir); r < 0) {
        // Not known to be durable: take it back, so this process never reports it. (A crash
        // may still keep it; it is complete, so either outcome is a valid store.)
        fs().unlink(dst);
        return detail::snapshot_io_error(r);
      }
      retire_older({dst, std::move(m), content_offset_});
      return {};
    }

    /// Closes and deletes the temporary file (disk space comes back at once).
    void discard() noexcept {
      if (fd_ >= 0) fs().close(std::exchange(fd_, -1));
      if (!temp_.empty()) fs().unlink(std::exchange(temp_, std::string{}));
      buf_.reset();
    }

   private:
    friend class basic_snapshot_store;
    sink_backend(std::shared_ptr<shared> st, std::uint64_t content_offset)
        : st_(std::move(st)), content_offset_(content_offset) {}

    /// Creates the temporary file for (i, t).
    std::error_code begin(index_t i, term_t t) {
      temp_ = st_->path(std::string(detail::snapshot_prefix) + detail::hex16(i) + "-" + detail::hex16(t) + "-" +
                        std::to_string(st_->next_temp.fetch_add(1)) + ".tmp");
      int fd = fs().open(temp_, true);
      if (fd < 0) {
        temp_.clear();
        return detail::snapshot_io_error(fd);
      }
      fd_ = fd;
      buf_ = std::make_unique_for_overwrite<std::byte[]>(st_->opts.buffer_bytes);
      return {};
    }
    FS& fs() const noexcept { return *st_->fs; }
    std::error_code write_file(const std::byte* p, std::size_t n) {
      const std::uint64_t off = content_offset_ + flushed_;
      if (long long w = fs().pwrite(fd_, p, n, off); w < 0) return detail::snapshot_io_error(w);
      if constexpr (writeback_hint<FS>) fs().start_writeback(fd_, off, n);
      flushed_ += n;
      return {};
    }
    std::error_code flush() {
      if (buffered_ == 0) return {};
      if (auto e = write_file(buf_.get(), buffered_)) return e;
      buffered_ = 0;
      return {};
    }

    /// Publishes `f` as latest() and deletes all but the newest kept_count, durably. Called
    /// with commit_mu held. A deletion that fails is retried after the next commit; it never
    /// fails this one.
    void retire_older(kept_file f) {
      std::vector<kept_file> old;
      {
        std::lock_guard lk(st_->mu);
        st_->kept.push_back(std::move(f));
        const std::size_t n = st_->kept.size() > kept_count ? st_->kept.size() - kept_count : 0;
        old.assign(std::make_move_iterator(st_->kept.begin()), std::make_move_iterator(st_->kept.begin() + n));
        st_->kept.erase(st_->kept.begin(), st_->kept.begin() + n);
      }
      // Out of `kept` first, then unlinked: an open() either found it (and its descriptor
      // survives the unlink) or sees it gone.
      std::vector<kept_file> failed;
      for (auto& k : old)
        if (fs().unlink(k.path) < 0) failed.push_back(std::move(k));
      if (failed.size() < old.size()) fs().sync_dir(st_->dir);
      if (failed.empty()) return;
      std::lock_guard lk(st_->mu);
      st_->kept.insert(st_->kept.begin(), std::make_move_iterator(failed.begin()),
                       std::make_move_iterator(failed.end()));
    }

    std::shared_ptr<shared> st_;
    std::uint64_t content_offset_;  // where the content starts: after header and configuration
    std::string temp_;              // the temporary file's path while it exists
    int fd_ = -1;
    std::unique_ptr<std::byte[]> buf_;
    std::size_t buffered_ = 0;
    std::uint64_t flushed_ = 0;  // content bytes in the file
  };

  /// Reads a source's content with pread from the file it keeps open.
  struct source_reader {
    std::shared_ptr<const open_file> file;
    std::uint64_t content_offset = 0;
    std::error_code read(std::uint64_t off, std::span<std::byte> out) const {
      long long r = file->fs->pread(file->fd, out.data(), out.size(), content_offset + off);
      if (r < 0) return detail::snapshot_io_error(r);
      if (static_cast<std::size_t>(r) != out.size()) return errc::corrupt_snapshot;  // shorter than its verified header said
      return {};
    }
  };

  /// Writes one snapshot into a temporary file; `commit` puts it in place.
  using sink = raftkit::detail::basic_snapshot_sink<sink_backend>;
  /// Reads a snapshot's content with pread; keeps its file open, so it survives deletion.
  using source = raftkit::detail::basic_snapshot_source<source_reader>;

  /// Opens (creating if needed) the snapshot directory `dir` and finds its newest valid
  /// snapshot (see the file comment). Throws std::system_error with a raftkit::errc.
  explicit basic_snapshot_store(std::string dir, snapshot_options opts = {}, FS fs = FS{})
      : s_(std::make_shared<shared>()) {
    if (opts.buffer_bytes == 0) throw std::invalid_argument("snapshot_options::buffer_bytes must be positive");
    s_->fs = std::make_shared<FS>(std::move(fs));
    s_->dir = std::move(dir);
    s_->opts = opts;
    open_dir();
  }

  /// The newest valid snapshot, or nullopt.
  std::optional<snapshot_meta> latest() const { return s_->latest(); }
  /// Begins a snapshot of the log up to (i, t) with configuration `cfg`.
  sink create(index_t i, term_t t, std::vector<std::byte> cfg) {
    sink_backend be(s_, detail::snapshot_header_size + cfg.size());
    std::error_code ec = raftkit::detail::not_newer(latest(), i);  // its commit could only fail: write nothing
    if (!ec && cfg.size() > UINT32_MAX) ec = errc::too_large;
    if (!ec) ec = be.begin(i, t);
    return sink(std::move(be), i, t, std::move(cfg), ec);
  }
  /// Opens snapshot `m`; error() is `errc::stale_snapshot` if the store no longer keeps it,
  /// or the I/O error of opening its file.
  source open(const snapshot_meta& m) const {
    std::lock_guard lk(s_->mu);  // held across the open: a commit cannot delete it meanwhile
    for (const kept_file& k : s_->kept) {
      if (!k.meta || !(*k.meta == m)) continue;
      int fd = s_->fs->open(k.path, false);
      if (fd < 0) return source(m, {}, detail::snapshot_io_error(fd));
      return source(m, {std::make_shared<const open_file>(s_->fs, fd), k.content_offset});
    }
    return source(m, {}, errc::stale_snapshot);
  }
  /// What opening found: refused files with reasons, deleted temporaries, the file used.
  const snapshot_recovery_report& recovery() const noexcept { return s_->report; }
  /// The directory.
  const std::string& dir() const noexcept { return s_->dir; }

 private:
  FS& fs() const noexcept { return *s_->fs; }

  [[noreturn]] static void throw_io(long long neg_errno, const std::string& what) {
    throw std::system_error(detail::snapshot_io_error(neg_errno),
                            what + ": " + std::generic_category().message(static_cast<int>(-neg_errno)));
  }

  void open_dir() {
    if (int r = fs().make_dir(s_->dir); r < 0) throw_io(r, "mkdir " + s_->dir);
    const std::string lock = s_->path("snapshot.lock");
    int l = fs().lock(lock);
    if (l == -EWOULDBLOCK || l == -EAGAIN)
      throw std::system_error(make_error_code(errc::locked), lock + ": directory in use by another snapshot store");
    if (l < 0) throw_io(l, "lock " + lock);
    s_->lock_fd = l;

    std::vector<std::string> names;
    if (int r = fs().list_dir(s_->dir, names); r < 0) throw_io(r, "list " + s_->dir);
    std::vector<std::pair<std::pair<index_t, term_t>, std::string>> snaps;
    bool changed = false;
    for (const auto& n : names) {
      if (detail::is_snapshot_temporary(n)) {
        const std::string p = s_->path(n);
        if (int r = fs().unlink(p); r < 0) throw_io(r, "unlink " + p);
        s_->report.removed_temporaries.push_back(p);
        changed = true;
      } else if (auto it = detail::parse_snapshot_file_name(n)) {
        snaps.emplace_back(*it, n);
      }
    }
    std::sort(snaps.begin(), snaps.end());
    // Newest first until one verifies; the ones below it are kept unread, as fallbacks.
    std::size_t k = snaps.size();
    while (k > 0) {
      const auto& [it, name] = snaps[--k];
      const std::string p = s_->path(name);
      kept_file f{p, std::nullopt, 0};
      std::string why = verify(p, it.first, it.second, f);
      if (why.empty()) {
        s_->report.used = p;
        for (std::size_t j = 0; j < k; ++j) s_->kept.push_back({s_->path(snaps[j].second), std::nullopt, 0});
        s_->kept.push_back(std::move(f));
        break;
      }
      const std::string aside = p + ".corrupt";
      if (int r = fs().rename(p, aside); r < 0) throw_io(r, "rename " + p + " (refused: " + why + ")");
      s_->report.refused.push_back({p, why, aside});
      changed = true;
    }
    if (changed)
      if (int r = fs().sync_dir(s_->dir); r < 0) throw_io(r, "fsync " + s_->dir);
  }

  /// Verifies snapshot file `p` named for (i, t): an empty string and `f` filled, or why it
  /// is refused. Throws on I/O errors (they say nothing about the file's content).
  std::string verify(const std::string& p, index_t i, term_t t, kept_file& f) {
    int fd = fs().open(p, false);
    if (fd < 0) throw_io(fd, "open " + p);
    struct closer {
      FS& fs;
      int fd;
      ~closer() { fs.close(fd); }
    } guard{fs(), fd};
    long long size = fs().size(fd);
    if (size < 0) throw_io(size, "stat " + p);
    const auto file_size = static_cast<std::uint64_t>(size);
    auto read = [&](void* out, std::size_t n, std::uint64_t off) {
      long long r = fs().pread(fd, out, n, off);
      if (r < 0) throw_io(r, "read " + p);
      if (static_cast<std::size_t>(r) != n) throw_io(-EIO, "short read of " + p);
    };
    if (file_size < detail::snapshot_header_size)
      return "file of " + std::to_string(file_size) + " bytes is too short for a snapshot header";
    std::byte head[detail::snapshot_header_size];
    read(head, sizeof head, 0);
    std::string why;
    auto h = detail::snapshot_header::decode(head, why);
    if (!h) return why;
    if (h->index != i || h->term != t)
      return "header says index " + std::to_string(h->index) + " term " + std::to_string(h->term) +
             ", the name says index " + std::to_string(i) + " term " + std::to_string(t);
    if (file_size != h->content_offset() + h->size)
      return "file is " + std::to_string(file_size) + " bytes, its header says " +
             std::to_string(h->content_offset() + h->size) + " (truncated or extended)";
    snapshot_meta m;
    m.index = h->index;
    m.term = h->term;
    m.size = h->size;
    m.crc = h->crc;
    m.config.resize(h->config_len);
    if (h->config_len) read(m.config.data(), m.config.size(), detail::snapshot_header_size);
    if (raftkit::detail::crc32c(m.config.data(), m.config.size()) != h->config_crc)
      return "configuration checksum mismatch";
    std::vector<std::byte> buf(std::min<std::uint64_t>(h->size, std::uint64_t{1} << 20));
    std::uint32_t crc = 0;
    for (std::uint64_t off = 0; off < h->size;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), h->size - off));
      read(buf.data(), n, h->content_offset() + off);
      crc = raftkit::detail::crc32c_extend(crc, buf.data(), n);
      off += n;
    }
    if (crc != h->crc) return "content checksum mismatch";
    f.content_offset = h->content_offset();
    f.meta = std::move(m);
    return {};
  }

  std::shared_ptr<shared> s_;
};

/// The snapshot store on real files.
using snapshot_store = basic_snapshot_store<>;

static_assert(raftkit::snapshot_store<snapshot_store>);
static_assert(raftkit::snapshot_sink<snapshot_store::sink>);
static_assert(raftkit::snapshot_source<snapshot_store::source>);

}  // namespace raftkit::file
