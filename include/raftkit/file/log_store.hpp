#pragma once
/// \file raftkit::file::log_store — a durable, crash-safe, file-backed Raft log.
///
/// A directory of segment files with a CRC-32C per record, group commit with one fdatasync
/// per batch, a torn tail repaired on open, corruption in the middle refused. Its parts,
/// each with its rules next to its code:
///  - `format.hpp`: the files and records on disk;
///  - `recovery.hpp`: opening a directory (verifying, repairing, syncing what it read);
///  - `writer.hpp`: the writer and sync threads (group commit, ordering, durability);
///  - `entry_index.hpp`: what is kept in memory per entry (8 bytes plus terms as runs) and
///    the tail cache of payloads (bounded by options::max_cached_bytes);
///  - `reader.hpp`: reading older entries back from the segment files;
///  - this header: the store, which the owner thread calls.
///
/// ## Threads
/// `append`, `truncate_after`, `compact_before`, `reset`, `at`, `term_at`, `first_index`,
/// `last_index`, `save_hard_state`, `load_hard_state`, `memory` belong to one owner thread.
/// `durable_index`, `error`, `error_message`, `wait_durable`, `flush` and the statistics are
/// thread-safe. The durable handler runs on the store's sync thread.
///
/// ## Memory
/// Per entry held: 8 bytes (where its record is, see entry_index) plus 16 bytes per change
/// of term. Payloads
/// of the newest entries stay in memory up to options::max_cached_bytes (payload plus
/// sizeof(entry) each, and always every entry not yet durable); older ones are read back
/// from the files by `at` (verified; a failed read turns the store failed, see `at`), a
/// few read-ahead windows of options::read_ahead_bytes at a time. A reopened store holds
/// no payload in memory until entries are appended or read.
///
/// ## Compaction and reset
/// The rules of raftkit::log_store ("Compaction and reset"): `compact_before` drops what is
/// durable and below the index asked; segments holding only such entries are deleted,
/// oldest first. `reset` makes a new log durable in one rename. term_at(first_index() - 1)
/// survives reopening (each segment header records the term before it).
///
/// Errors found while opening are thrown as `std::system_error` holding a `raftkit::errc`
/// (`corrupt_log`, `locked`, `io_error`, `no_space`) and a message naming the file. A
/// missing data directory is created, and so are its missing parents unless
/// options::create_parents is off (then the error names the missing parent); each directory
/// created is synced into its parent, so the store cannot vanish with it in a power loss.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/file/entry_index.hpp"
#include "raftkit/file/format.hpp"
#include "raftkit/file/options.hpp"
#include "raftkit/file/posix_fs.hpp"
#include "raftkit/file/reader.hpp"
#include "raftkit/file/recovery.hpp"
#include "raftkit/file/writer.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file {

/// A file-backed Raft log; `FS` is the file-system policy (real POSIX by default).
template <file_system FS = posix_fs>
class basic_log_store {
 public:
  /// Opens (creating if needed) the log in directory `dir` and recovers it.
  /// Throws std::system_error with a raftkit::errc on failure (see the file comment).
  explicit basic_log_store(std::string dir, options opts = {}, FS fs = FS{})
      : fs_(std::move(fs)), dir_(std::move(dir)), opts_(opts), reader_(fs_, dir_, opts.read_ahead_bytes) {
    try {
      make_dirs();
      int l = fs_.lock(path("LOCK"));
      if (l == -EWOULDBLOCK || l == -EAGAIN)
        throw detail::failure{errc::locked, path("LOCK") + ": directory in use by another store"};
      if (l < 0) detail::throw_io(l, "lock " + path("LOCK"));
      lock_fd_ = l;
      detail::recovery<FS> rec(fs_, dir_, index_);
      rec.run();
      hard_ = rec.hard();
      report_ = rec.report();
      detail::writer_start st = rec.take_writer_start();
      segs_ = st.segments;
      writer_.emplace(fs_, dir_, opts_, std::move(st));
    } catch (const detail::failure& f) {
      release_lock();
      throw std::system_error(make_error_code(f.code), f.what);
    }
  }
  basic_log_store(const basic_log_store&) = delete;
  basic_log_store& operator=(const basic_log_store&) = delete;

  /// Writes and syncs everything appended so far, then closes the files.
  ~basic_log_store() {
    writer_.reset();
    reader_.close_all();
    release_lock();
  }

  // --- raftkit::log_store -------------------------------------------------------------

  /// First index held (1 on a fresh store; after compaction the first kept index).
  index_t first_index() const noexcept { return index_.first(); }
  /// Last index held; first_index() - 1 when empty.
  index_t last_index() const noexcept { return index_.last(); }
  /// Term of entry `i`; for first_index() - 1 the term of the entry before the first held
  /// (the last compacted one, or the term given to reset); 0 when not held.
  term_t term_at(index_t i) const noexcept { return index_.term_at(i); }

  /// Entry `i`; precondition first_index() <= i <= last_index(). An entry in the tail cache
  /// shares its payload; an older one is read back from its segment and verified. If that
  /// read fails (an I/O error, or a record that no longer verifies) the store turns failed
  /// (error() is io_error or corrupt_log, naming file and offset) and the entry returned is
  /// a placeholder (index and term right, type noop, no payload) that must not be used.
  entry at(index_t i) const {  // not noexcept: RAFTKIT_ASSERT may throw if a user redefines it
    RAFTKIT_ASSERT(i >= first_index() && i <= last_index(), "file::log_store::at out of range");
    if (index_.hot(i)) return index_.hot_entry(i);
    return read_back(i);
  }
  /// Highest index known to be on stable storage. Thread-safe.
  index_t durable_index() const noexcept { return writer_->durable(); }

  /// Appends entries starting at last_index() + 1; returns at once, durability follows.
  /// Precondition: every payload is at most max_payload bytes.
  void append(std::span<const entry> es) {
    if (es.empty()) return;
    index_.append(es);  // checks the preconditions as it goes: one pass over the entries
    // The writer reads the payloads through plain pointers: the cache keeps them alive (it
    // drops only durable entries, which the writer is past), and whatever truncate_after
    // or reset drop before the writer has encoded it is parked until then.
    const index_t durable = writer_->append(es, created_);
    note_segments();
    // a durable entry's segment is known (it was reported before the entry was written)
    index_.cool(opts_.max_cached_bytes, durable, [&](index_t i) { return !segs_.empty() && segs_.front().first <= i; });
  }

  /// The largest payload a record holds.
  static constexpr std::size_t max_payload = detail::max_payload;

  /// Removes every entry after `i` (§5.3). durable_index() drops to at most `i` at once; the
  /// removal reaches the disk in order with later appends (before any of them is durable).
  void truncate_after(index_t i) {
    if (i >= last_index()) return;
    RAFTKIT_ASSERT(i + 1 >= first_index(), "file::log_store::truncate_after below first_index");
    std::vector<shared_bytes> keep;
    index_.truncate_after(i, keep_unwritten(keep));
    writer_->truncate(i, index_.term_at(i), std::move(keep));
    reader_.close_all();
  }

  /// Forgets entries below min(i, durable_index() + 1) (a snapshot covers them), for any
  /// `i`: in memory at once; on disk the segments holding only entries below that are
  /// deleted, oldest first, each removal synced, so a reopened store may start somewhat
  /// below it and a crash at any moment reopens a contiguous log. term_at(first_index() - 1)
  /// stays the last dropped entry's term, also after a reopen.
  void compact_before(index_t i) {
    const index_t durable = writer_->take_segments(created_);
    note_segments();  // every segment holding an entry up to `durable`
    i = std::min({i, durable + 1, last_index() + 1});
    if (i <= first_index()) return;
    index_.compact_before(i);  // durable, so the writer reads none of it
    writer_->compact(i);
    // the writer deletes the segments holding only entries below i (the same rule)
    std::size_t gone = 0;
    while (gone + 1 < segs_.size() && segs_[gone + 1].first <= i) ++gone;
    segs_.erase(segs_.begin(), segs_.begin() + static_cast<std::ptrdiff_t>(gone));
    reader_.close_all();  // descriptors of segments about to go
  }

  /// Drops the whole log: afterwards it is empty and continues after (i, t) (a snapshot at
  /// (i, t) replaces it). On disk a segment starting at i + 1 and flagged as a reset is
  /// created (fsynced, renamed, directory fsynced: the reset is durable in one step, so a
  /// crash reopens the old log or the reset one), then every older segment is deleted.
  /// Ordered before later appends like a truncation; durable_index() is at most the lower
  /// of `i` and its value before until the reset is on disk, then `i`.
  void reset(index_t i, term_t t) {
    std::vector<shared_bytes> keep;
    index_.reset(i, t, keep_unwritten(keep));
    segs_.clear();  // none holds an entry now; the reset segment will be reported
    writer_->reset(i, t, std::move(keep));
    reader_.close_all();
  }

  /// The persisted term and vote (zeros on a fresh store).
  hard_state load_hard_state() const noexcept { return hard_; }

  /// Persists term and vote atomically; durable when it returns. On failure the store
  /// turns failed (see error()) and the previous hard state stays on disk.
  void save_hard_state(const hard_state& hs) {
    if (writer_->failed()) return;
    try {
      write_hard_state(hs);
      hard_ = hs;
    } catch (const detail::failure& f) {
      writer_->fail(f);
    }
  }

  // --- optional capabilities ----------------------------------------------------------

  /// A fatal storage failure, or an empty code. Thread-safe.
  std::error_code error() const { return writer_->error(); }
  /// The failure's description (file and call). Thread-safe.
  std::string error_message() const { return writer_->error_message(); }

  /// Sets a function called *on the store's sync thread* each time durable_index() advances,
  /// with the new value. It must be quick and must not call back into the store except
  /// durable_index(); an owner on another thread posts it to its own executor (the Asio
  /// driver posts it onto the node's strand). A value may be overtaken by a concurrent
  /// truncate_after: re-read durable_index() on the owner's thread.
  void set_durable_handler(std::function<void(index_t)> h) { writer_->set_durable_handler(std::move(h)); }

  /// Blocks until durable_index() >= i or the store fails; returns error().
  /// Precondition: i <= last_index().
  std::error_code wait_durable(index_t i) { return writer_->wait_durable(i); }

  /// Blocks until every operation issued so far (appends, truncations, compactions,
  /// resets) is on stable storage, or the store fails; returns error().
  std::error_code flush() { return writer_->flush(); }

  /// What opening the store found.
  const recovery_report& recovery() const noexcept { return report_; }
  /// The directory of this store.
  const std::string& directory() const noexcept { return dir_; }
  /// Number of fdatasync calls the writer made for log records (for benchmarks).
  std::uint64_t sync_count() const noexcept { return writer_->sync_count(); }
  /// fdatasync latency so far (for metrics); readable from any thread.
  sync_stats fsync_stats() const noexcept { return writer_->fsync_stats(); }
  /// Memory held for the log (owner thread).
  memory_stats memory() const noexcept {
    return {index_.hot_entries(), index_.hot_bytes(), index_.index_bytes(), reader_.bytes()};
  }

 private:
  std::string path(const std::string& name) const { return detail::join_path(dir_, name); }

  /// What truncate_after and reset hand each removed hot entry to: keeps the payloads the
  /// writer may not have encoded yet (above durable_index(), read first: it only rises, so
  /// this keeps enough).
  auto keep_unwritten(std::vector<shared_bytes>& keep) const {
    return [&keep, durable = durable_index()](entry& e) {
      if (e.index > durable && !e.payload.empty()) keep.push_back(std::move(e.payload));
    };
  }

  /// Records the segments the writer created. A segment's records start at the position
  /// of entry `first` — right even if the owner truncated after reporting (positions depend
  /// only on the entries before), and a segment that truncation voids is followed by the
  /// one that voids it (so it goes as that one is noted: a segment starting at f voids
  /// every later-or-equal one, as in recovery).
  void note_segments() {
    for (const detail::segment_event& ev : created_) {
      if (ev.reset) segs_.clear();
      while (!segs_.empty() && segs_.back().first >= ev.first) segs_.pop_back();
      if (ev.first > index_.last() + 1 || ev.first < index_.first()) continue;  // holds no entry we have
      const std::uint64_t base = ev.first <= index_.last() ? index_.position(ev.first) : index_.next_position();
      segs_.push_back(detail::segment{ev.id, ev.first, base});
    }
    created_.clear();
  }

  /// The segment holding entry `i`: the newest starting at or before it.
  const detail::segment* segment_of(index_t i) const noexcept {
    auto it = std::upper_bound(segs_.begin(), segs_.end(), i,
                               [](index_t x, const detail::segment& s) { return x < s.first; });
    return it == segs_.begin() ? nullptr : &*std::prev(it);
  }

  entry read_back(index_t i) const {
    const term_t t = index_.term_at(i);
    entry out;
    const detail::segment* seg = segment_of(i);
    std::optional<detail::failure> f;
    if (!seg)
      f = detail::failure{errc::io_error, dir_ + ": no segment known for entry " + std::to_string(i)};
    else
      f = reader_.read(seg->id, detail::segment_header_size + index_.position(i) - seg->base, i, t, out);
    if (!f) return out;
    writer_->fail(*f);
    return entry{t, i, entry_type::noop, shared_bytes{}};
  }

  /// Creates the store's directory, and its missing parents if options::create_parents;
  /// each directory created is synced into its parent.
  void make_dirs() {
    std::string d = dir_;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    std::vector<std::string> chain;  // dir_ and its ancestors, innermost first
    for (std::string p = d; !p.empty() && p != "/" && p != ".";) {
      chain.push_back(p);
      const auto slash = p.find_last_of('/');
      if (slash == std::string::npos) break;
      p = slash == 0 ? "/" : p.substr(0, slash);
    }
    if (!opts_.create_parents) chain.resize(std::min<std::size_t>(chain.size(), 1));
    for (std::size_t k = chain.size(); k-- > 0;) {
      const std::string& p = chain[k];
      int r = fs_.make_dir(p);
      if (r == -ENOENT && !opts_.create_parents)
        throw detail::failure{errc::io_error, "create log directory " + p + ": its parent directory " + parent_of(p) +
                                                  " does not exist (options::create_parents is off)"};
      if (r < 0) detail::throw_io(r, "create directory " + p + (p == d ? "" : " (a parent of the log directory " + d + ")"));
      if (r > 0)  // created: make its name durable in its parent
        if (int s = fs_.sync_dir(parent_of(p)); s < 0) detail::throw_io(s, "fsync " + parent_of(p));
    }
  }
  static std::string parent_of(const std::string& p) {
    const auto slash = p.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : p.substr(0, slash);
  }

  void write_hard_state(const hard_state& hs) {
    std::byte b[detail::hard_state_size];
    detail::encode_hard_state(b, hs);
    const std::string tmp = path("hard_state.tmp"), dst = path("hard_state");
    int fd = fs_.open(tmp, true);
    if (fd < 0) detail::throw_io(fd, "create " + tmp);
    long long w = fs_.pwrite(fd, b, sizeof b, 0);
    int s = w < 0 ? 0 : fs_.fsync(fd);
    fs_.close(fd);
    if (w < 0) detail::throw_io(static_cast<int>(w), "write " + tmp);
    if (s < 0) detail::throw_io(s, "fsync " + tmp);
    if (int r = fs_.rename(tmp, dst); r < 0) detail::throw_io(r, "rename " + tmp);
    if (int r = fs_.sync_dir(dir_); r < 0) detail::throw_io(r, "fsync " + dir_);
  }

  void release_lock() {
    if (lock_fd_ >= 0) fs_.unlock(lock_fd_);
    lock_fd_ = -1;
  }

  FS fs_;
  std::string dir_;
  options opts_;
  detail::entry_index index_;
  std::vector<detail::segment> segs_;  // the segments, as the writer last reported (see note_segments)
  std::vector<detail::segment_event> created_;  // reused by append
  hard_state hard_;
  recovery_report report_;
  int lock_fd_ = -1;
  mutable detail::segment_reader<FS> reader_;
  // Last: its threads stop before the rest goes. Mutable: a failed read-back in the const
  // at() turns the store failed.
  mutable std::optional<detail::log_writer<FS>> writer_;
};

/// The file log store over real POSIX files.
using log_store = basic_log_store<>;

}  // namespace raftkit::file

static_assert(raftkit::log_store<raftkit::file::log_store>);
static_assert(raftkit::detail::failable_store<raftkit::file::log_store>);
static_assert(raftkit::detail::compactable_store<raftkit::file::log_store>);
