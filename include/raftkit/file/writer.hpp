#pragma once
/// \file The writing side of raftkit::file::log_store: a writer thread and a sync thread
/// that make the owner's appends, truncations, compactions and resets durable in order.
///
/// The owner hands entries over without copying payloads or touching their reference
/// counts: an op carries a plain pointer to the payload, which the owner keeps alive (in
/// its tail cache, and through `retire` for what truncate/reset drop before the writer has
/// encoded it). The writer encodes records (CRC included) into a buffer; the sync thread
/// makes them durable with one fdatasync per group (group commit) and advances `durable()`.
/// While a group is being synced the writer gathers the next one and already writes it in
/// parts of max_batch_bytes / 8, all but its last record; when the sync returns it writes
/// the rest and hands the group over at once. So the disk never waits for the CPU, and at
/// most two groups are ever unsynced — the group being synced and the open one — which
/// recovery relies on. A group is closed at max_batch_bytes. Any failed write or sync is
/// fatal: `error()` reports it (`no_space` for ENOSPC, else `io_error`) and durability never
/// advances again.
///
/// Rules the owner relies on:
///  - `durable()` covers only records on stable storage; a truncation or reset caps it at
///    once (`floor_`) until it is on disk, so it never covers a removed entry.
///  - Records lie back to back in a segment, in index order (a seal only ends one), so the
///    owner knows where each record is from its payload size (entry_index positions) and
///    from where each segment starts. Each segment created is reported (`segment_event`)
///    before any record goes into it, so before `durable()` can cover one: an owner that
///    takes the events and reads `durable()` under one lock knows where every durable entry
///    is, and may drop it from memory and read it back.
///  - Segments are deleted only when they hold nothing at or above the owner's first index
///    (compaction) or after its last (truncation, reset).

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "raftkit/errc.hpp"
#include "raftkit/file/format.hpp"
#include "raftkit/file/options.hpp"
#include "raftkit/file/posix_fs.hpp"
#include "raftkit/file/recovery.hpp"
#include "raftkit/types.hpp"

namespace raftkit::file::detail {

/// A segment the writer created: its records start at entry `first`; `reset`: every
/// earlier segment is void.
struct segment_event {
  std::uint64_t id = 0;
  index_t first = 0;
  bool reset = false;
};

template <file_system FS>
class log_writer {
 public:
  /// Starts the threads; the log continues as recovery left it (`st`, whose descriptor it
  /// takes over). `fs` must outlive the writer.
  log_writer(FS& fs, std::string dir, const options& opts, writer_start st)
      : fs_(fs), dir_(std::move(dir)), opts_(opts), segs_(std::move(st.segments)), cur_fd_(st.fd),
        cur_off_(st.offset), cur_cap_(st.capacity), written_last_(st.last), buf_last_(st.last),
        last_term_(st.last_term), next_seq_(st.next_seq), next_id_(st.next_id) {
    durable_.store(st.last, std::memory_order_relaxed);
    syncer_ = std::thread([this] { run_syncer(); });
    writer_ = std::thread([this] { run(); });
  }
  log_writer(const log_writer&) = delete;
  log_writer& operator=(const log_writer&) = delete;

  /// Writes and syncs everything handed over so far, then stops the threads.
  ~log_writer() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_one();
    writer_.join();
    {
      std::lock_guard lk(mu_);
      sync_stop_ = true;
    }
    sync_cv_.notify_all();
    syncer_.join();
  }

  // ------------------------------------------------------------ owner thread

  /// Hands entries over (the owner keeps their payloads alive, see the file comment).
  /// Swaps the segments created since the last call into `created` (which the owner
  /// empties) and returns durable() as of the same moment.
  index_t append(std::span<const entry> es, std::vector<segment_event>& created) {
    bool wake;
    index_t durable;
    {
      std::lock_guard lk(mu_);
      created.swap(created_);
      durable = durable_.load(std::memory_order_relaxed);
      if (failed_) return durable;
      for (const entry& e : es) {
        ops_.push_back(op{op_kind::append, static_cast<std::uint8_t>(e.type),
                          static_cast<std::uint32_t>(e.payload.size()), e.term, e.index, e.payload.data()});
        ops_bytes_ += record_size(e.payload.size());
      }
      ++submitted_;
      wake = writer_idle_ && writer_has_work();
    }
    if (wake) work_cv_.notify_one();  // a futex call only when the writer waits for this
    return durable;
  }

  /// Entries after `i` (whose term is `term`) are gone: durable() drops to at most `i` now.
  /// `dropped` holds payloads the writer may not have encoded yet.
  void truncate(index_t i, term_t term, std::vector<shared_bytes>&& dropped) {
    {
      std::lock_guard lk(mu_);
      ++trunc_issued_;
      floor_ = std::min(floor_, i);
      if (durable_.load(std::memory_order_relaxed) > i) durable_.store(i, std::memory_order_release);
      retire(std::move(dropped));
      if (failed_) return;
      ops_.push_back(op{op_kind::truncate, 0, 0, term, i, nullptr});
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// The owner forgot entries below `i` (all durable): delete the segments holding only those.
  void compact(index_t i) {
    {
      std::lock_guard lk(mu_);
      if (failed_) return;
      ops_.push_back(op{op_kind::compact, 0, 0, 0, i, nullptr});
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// The log restarts after (i, t): durable() is at most min(i, durable()) until that is on
  /// disk, then i. `dropped` as for truncate.
  void reset(index_t i, term_t t, std::vector<shared_bytes>&& dropped) {
    {
      std::lock_guard lk(mu_);
      ++trunc_issued_;
      const index_t cap = std::min(i, durable_.load(std::memory_order_relaxed));
      floor_ = std::min(floor_, cap);
      durable_.store(cap, std::memory_order_release);
      retire(std::move(dropped));
      if (failed_) return;
      ops_.push_back(op{op_kind::reset, 0, 0, t, i, nullptr});
      ++submitted_;
    }
    work_cv_.notify_one();
  }

  /// As append, without entries: the segments created since, and durable() then.
  index_t take_segments(std::vector<segment_event>& created) {
    std::lock_guard lk(mu_);
    created.swap(created_);
    return durable_.load(std::memory_order_relaxed);
  }

  // ------------------------------------------------------------ any thread

  index_t durable() const noexcept { return durable_.load(std::memory_order_acquire); }

  std::error_code error() const {
    std::lock_guard lk(mu_);
    return error_;
  }
  std::string error_message() const {
    std::lock_guard lk(mu_);
    return error_what_;
  }
  bool failed() const {
    std::lock_guard lk(mu_);
    return failed_;
  }

  void set_durable_handler(std::function<void(index_t)> h) {
    std::lock_guard lk(handler_mu_);
    handler_ = std::move(h);
  }

  std::error_code wait_durable(index_t i) {
    std::unique_lock lk(mu_);
    done_cv_.wait(lk, [&] { return failed_ || durable_.load(std::memory_order_relaxed) >= i; });
    return error_;
  }

  std::error_code flush() {
    std::unique_lock lk(mu_);
    auto target = submitted_;
    done_cv_.wait(lk, [&] { return failed_ || completed_ >= target; });
    return error_;
  }

  std::uint64_t sync_count() const noexcept { return syncs_.load(std::memory_order_relaxed); }
  sync_stats fsync_stats() const noexcept {
    sync_stats s{sync_calls_.load(std::memory_order_relaxed), sync_total_ns_.load(std::memory_order_relaxed),
                 sync_max_ns_.load(std::memory_order_relaxed), {}};
    for (std::size_t i = 0; i < s.buckets.size(); ++i) s.buckets[i] = sync_buckets_[i].load(std::memory_order_relaxed);
    return s;
  }

  /// Makes the store failed (first failure wins); durability never advances again.
  void fail(const failure& f) {
    {
      std::lock_guard lk(mu_);
      if (!failed_) {
        failed_ = true;
        error_ = make_error_code(f.code);
        error_what_ = f.what;
      }
      ops_.clear();
    }
    done_cv_.notify_all();
    work_cv_.notify_one();
  }

 private:
  enum class op_kind : std::uint8_t { append, truncate, compact, reset };
  /// An entry to encode (its payload borrowed), or a truncation/compaction/reset at
  /// `index` (`term`: of entry `index` for a truncation or reset, which the segment started
  /// after it records).
  struct op {
    op_kind kind;
    std::uint8_t type;
    std::uint32_t len;
    term_t term;
    index_t index;
    const std::byte* data;
  };
  /// Payloads dropped by the owner that ops up to number `upto` may still point into.
  struct retirement {
    std::uint64_t upto;
    std::vector<shared_bytes> payloads;
  };

  // ---------------------------------------------------------------- writer thread
  //
  // Group commit: the writer encodes ops into buf_ (CRC computed as each record is
  // encoded). While the sync thread is busy with the previous group it keeps gathering, up
  // to max_batch_bytes, and writes what it gathers in parts of part_bytes() (write_partial);
  // as soon as the sync thread is free, the rest is written and the group handed over for
  // one fdatasync (flush_group). So a lone append is written at once, and under load each
  // fdatasync covers everything that arrived during the previous one.

  void run() {
    std::vector<op> batch;
    for (;;) {
      std::uint64_t taken;
      {
        std::unique_lock lk(mu_);
        writer_idle_ = true;
        work_cv_.wait(lk, [&] { return writer_has_work(); });
        writer_idle_ = false;
        if (failed_ || (ops_.empty() && buf_len_ == 0)) break;
        batch.swap(ops_);
        ops_bytes_ = 0;
        taken = submitted_;
      }
      try {
        for (const op& o : batch) apply(o);
        buf_taken_ = taken;
        release_retired(taken);
        if (buf_len_ > 0) {
          if (!sync_busy()) flush_group();  // else: gather more until the disk is free
        } else {
          complete_when_synced(taken);
        }
      } catch (const failure& f) {
        fail(f);
        break;
      }
      batch.clear();
    }
    try {
      wait_sync();
    } catch (const failure&) {
    }
    if (cur_fd_ >= 0) fs_.close(cur_fd_);
    cur_fd_ = -1;
  }

  /// Under mu_: whether the writer has something to do. While a group is being synced it
  /// waits for that, unless part_bytes() of records have queued up meanwhile (those it
  /// encodes at once, so the next write is ready when the sync returns). Otherwise any op
  /// wakes it: a lone append is written without delay.
  /// buf_len_ belongs to the writer: the owner calls this only while writer_idle_, when the
  /// writer is parked on mu_ and its last write of buf_len_ happened before.
  bool writer_has_work() const {
    if (failed_) return true;
    if (buf_len_ > 0 && !sync_pending_) return true;
    if (!ops_.empty() && (!sync_pending_ || ops_bytes_ >= part_bytes())) return true;
    return buf_len_ == 0 && stop_;
  }
  /// Bytes the writer gathers before it writes part of an open group; also what wakes it
  /// while a sync runs.
  std::size_t part_bytes() const noexcept { return std::max<std::size_t>(opts_.max_batch_bytes / 8, 64); }

  /// Frees payloads the owner dropped once no op the writer has yet to read points into them.
  void release_retired(std::uint64_t taken) {
    std::vector<retirement> done;
    {
      std::lock_guard lk(mu_);
      if (retired_.empty() || retired_.front().upto > taken) return;
      auto it = std::find_if(retired_.begin(), retired_.end(),
                             [&](const retirement& r) { return r.upto > taken; });
      done.assign(std::make_move_iterator(retired_.begin()), std::make_move_iterator(it));
      retired_.erase(retired_.begin(), it);
    }
  }

  /// Owner side, under mu_: parks dropped payloads until the writer is past the next op.
  void retire(std::vector<shared_bytes>&& payloads) {
    if (!payloads.empty()) retired_.push_back(retirement{submitted_ + 1, std::move(payloads)});
  }

  bool sync_busy() {
    std::lock_guard lk(mu_);
    return sync_pending_;
  }

  /// Everything up to op number `taken` is written: it is complete when the group being
  /// synced (if any) is durable.
  void complete_when_synced(std::uint64_t taken) {
    {
      std::lock_guard lk(mu_);
      if (sync_pending_) {  // the pending group is the last one written: it completes `taken`
        sync_req_.taken = taken;
        return;
      }
    }
    publish(written_last_, taken);
  }

  void record_sync_latency(std::chrono::steady_clock::duration d) noexcept {
    const auto ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
    sync_calls_.fetch_add(1, std::memory_order_relaxed);
    sync_total_ns_.fetch_add(ns, std::memory_order_relaxed);
    const auto& b = sync_stats::bucket_bounds_ns;
    sync_buckets_[static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), ns) - b.begin())].fetch_add(
        1, std::memory_order_relaxed);
    std::uint64_t prev = sync_max_ns_.load(std::memory_order_relaxed);
    while (ns > prev && !sync_max_ns_.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
    }
  }

  /// The sync thread: one fdatasync per group handed over by flush_group, then publish.
  void run_syncer() {
    std::unique_lock lk(mu_);
    for (;;) {
      sync_cv_.wait(lk, [&] { return sync_pending_ || sync_stop_; });
      if (!sync_pending_) return;
      const sync_request req = sync_req_;
      lk.unlock();
      const auto sync_start = std::chrono::steady_clock::now();
      int r = fs_.fdatasync(req.fd);
      record_sync_latency(std::chrono::steady_clock::now() - sync_start);
      if (r < 0) {
        fail(failure{errno_code(r), "fdatasync " + join_path(dir_, segment_name(req.segment)) +
                                                        ": " + std::generic_category().message(-r)});
      } else {
        syncs_.fetch_add(1, std::memory_order_relaxed);
        publish(req.last, 0);  // the handler runs before the next group can be synced
      }
      lk.lock();
      // the writer may have attached a later completion while this group was syncing
      if (r >= 0 && !failed_) completed_ = std::max(completed_, sync_req_.taken);
      sync_pending_ = false;
      if (r < 0) sync_failed_ = true;
      lk.unlock();
      done_cv_.notify_all();
      work_cv_.notify_one();
      lk.lock();
    }
  }

  /// Waits until the group handed to the sync thread is durable; throws if its sync failed.
  void wait_sync() {
    std::unique_lock lk(mu_);
    work_cv_.wait(lk, [&] { return !sync_pending_; });
    if (sync_failed_) throw failure{errc::io_error, "an earlier fdatasync failed"};
  }

  void apply(const op& o) {
    switch (o.kind) {
      case op_kind::append: add_record(o); break;
      case op_kind::truncate: do_truncate(o.index, o.term); break;
      case op_kind::compact: do_compact(o.index); break;
      case op_kind::reset: do_reset(o.index, o.term); break;
    }
  }

  void add_record(const op& o) {
    const std::size_t rs = record_size(o.len);
    if (cur_fd_ < 0) open_segment(buf_last_ + 1, rs, last_term_);
    if (cur_off_ + buf_len_ + rs + record_header_size > cur_cap_) {
      // no room for this record and a seal: seal this segment and roll
      encode_seal(buf_last_);
      flush_group();
      wait_sync();  // the next segment is written only once this one is durable
      fs_.close(cur_fd_);
      cur_fd_ = -1;
      open_segment(buf_last_ + 1, rs, last_term_);
    }
    encode(o.term, o.index, o.type, {o.data, o.len});
    buf_last_ = o.index;
    last_term_ = o.term;
    if (buf_len_ >= part_bytes()) {
      if (!sync_busy() || group_bytes_ + buf_len_ >= opts_.max_batch_bytes)
        flush_group();  // closes the group (after waiting for the disk if it is full)
      else
        write_partial();
    }
  }

  /// While the previous group is being synced: writes the open group's records but the last
  /// (which mark_group_end will still change) so the buffer stays small and the final
  /// write short. Records of this group may now reach the disk before the previous group
  /// is durable; the group's last record will say so (flag_after_unsynced).
  void write_partial() {
    if (last_rec_ == 0) return;
    const auto h = record_header::decode(buf_.data() + last_rec_);
    if (long long w = fs_.pwrite(cur_fd_, buf_.data(), last_rec_, cur_off_); w < 0)
      throw_io(static_cast<int>(w), "write " + join_path(dir_, segment_name(segs_.back().id)));
    cur_off_ += last_rec_;
    group_bytes_ += last_rec_;
    group_partial_ = true;
    written_last_ = h.index - 1;  // records in the buffer are contiguous entries
    std::memmove(buf_.data(), buf_.data() + last_rec_, buf_len_ - last_rec_);
    buf_len_ -= last_rec_;
    last_rec_ = 0;
  }

  void encode(term_t term, index_t index, std::uint8_t type, std::span<const std::byte> payload) {
    const std::size_t rs = record_size(payload.size());
    if (buf_.size() < buf_len_ + rs)  // grows rarely: it starts at max_batch_bytes + 64 KiB
      buf_.resize(std::max({buf_len_ + rs, 2 * buf_.size(), opts_.max_batch_bytes + (64u << 10)}));
    encode_record(buf_.data() + buf_len_, term, index, type, next_seq_, payload);
    last_rec_ = buf_len_;
    buf_len_ += rs;
  }

  /// A seal (term 0) closes the current segment at index `last`.
  void encode_seal(index_t last) { encode(0, last, seal_type, {}); }

  /// Writes the buffered records with one call once the previous group is durable, and
  /// hands their fdatasync to the sync thread; it completes the ops up to buf_taken_.
  void flush_group() {
    if (buf_len_ == 0) return;
    mark_group_end(buf_.data() + last_rec_,
                           group_partial_ ? flag_group_end | flag_after_unsynced
                                          : flag_group_end);
    wait_sync();
    if (long long w = fs_.pwrite(cur_fd_, buf_.data(), buf_len_, cur_off_); w < 0)
      throw_io(static_cast<int>(w), "write " + join_path(dir_, segment_name(segs_.back().id)));
    cur_off_ += buf_len_;
    buf_len_ = 0;
    group_bytes_ = 0;
    group_partial_ = false;
    ++next_seq_;
    written_last_ = buf_last_;
    {
      std::lock_guard lk(mu_);
      sync_req_ = sync_request{cur_fd_, segs_.back().id, written_last_, buf_taken_};
      sync_pending_ = true;
    }
    sync_cv_.notify_one();
  }

  /// Creates a segment starting at `first` (entry first - 1 has term `prev_term`), big
  /// enough for a record of `need` bytes; durable (header, name) when it returns.
  void open_segment(index_t first, std::size_t need, term_t prev_term, std::uint32_t flags = 0) {
    const std::uint64_t id = next_id_++;
    const std::string name = segment_name(id);
    const std::string tmp = join_path(dir_, name + ".tmp"), dst = join_path(dir_, name);
    const std::uint64_t cap = std::max<std::uint64_t>(
        opts_.segment_size, segment_header_size + need + 2 * record_header_size);
    std::byte h[segment_header_size];
    segment_header{first, id, prev_term, flags}.encode(h);
    int fd = fs_.open(tmp, true);
    if (fd < 0) throw_io(fd, "create " + tmp);
    auto check = [&](long long r, const char* what) {
      if (r < 0) {
        fs_.close(fd);
        throw_io(static_cast<int>(r), std::string(what) + " " + tmp);
      }
    };
    check(fs_.allocate(fd, cap), "preallocate");
    check(fs_.pwrite(fd, h, sizeof h, 0), "write");
    check(fs_.fsync(fd), "fsync");
    check(fs_.rename(tmp, dst), "rename");
    check(fs_.sync_dir(dir_), "fsync directory of");
    segs_.push_back(segment{id, first, 0});
    {
      std::lock_guard lk(mu_);
      created_.push_back(segment_event{id, first, (flags & segment_flag_reset) != 0});
    }
    cur_fd_ = fd;
    cur_off_ = segment_header_size;
    cur_cap_ = cap;
  }

  /// Removes a segment file, durably: removals are synced one by one so that a crash
  /// never leaves a later segment without an earlier one (a gap recovery would refuse).
  void remove_segment(std::uint64_t id) {
    const std::string p = join_path(dir_, segment_name(id));
    if (int r = fs_.unlink(p); r < 0) throw_io(r, "unlink " + p);
    if (int r = fs_.sync_dir(dir_); r < 0) throw_io(r, "fsync " + dir_);
  }

  void do_truncate(index_t t, term_t term) {
    if (t >= buf_last_) return truncation_done();
    if (t >= written_last_) {  // only buffered records go: cut the buffer at the first > t
      std::size_t off = 0, last = 0;
      while (off < buf_len_) {
        const auto h = record_header::decode(buf_.data() + off);
        if (h.index > t) break;
        last = off;
        off += record_size(h.len);
      }
      // A partly written group needs a buffered record to end it; without one, the
      // general path below ends it with a seal.
      if (off > 0 || !group_partial_) {
        buf_len_ = off;
        last_rec_ = last;
        buf_last_ = t;
        last_term_ = term;
        return truncation_done();
      }
    }
    buf_len_ = 0;
    buf_last_ = written_last_;
    wait_sync();
    // delete whole segments past t, newest first, so a crash leaves a consistent prefix
    while (!segs_.empty() && segs_.back().first > t) {
      if (cur_fd_ >= 0) {
        fs_.close(cur_fd_);
        cur_fd_ = -1;
      }
      remove_segment(segs_.back().id);
      segs_.pop_back();
      group_bytes_ = 0;  // a partly written group went with its segment
      group_partial_ = false;
    }
    if (cur_fd_ >= 0) {  // the newest segment holds t: seal it, entries past t stay behind
      encode_seal(written_last_);
      flush_group();
      wait_sync();
      fs_.close(cur_fd_);
      cur_fd_ = -1;
    }
    // a segment starting at t + 1 voids everything after t in the segments before it
    open_segment(t + 1, 0, term);
    written_last_ = buf_last_ = t;
    last_term_ = term;
    truncation_done();
  }

  /// The log restarts after (i, t): unwritten records are dropped, a reset segment starting
  /// at i + 1 is made durable (from then on recovery ignores every older segment), then the
  /// older segments are deleted.
  void do_reset(index_t i, term_t t) {
    buf_len_ = 0;
    last_rec_ = 0;
    wait_sync();
    if (cur_fd_ >= 0) {
      fs_.close(cur_fd_);
      cur_fd_ = -1;
    }
    group_bytes_ = 0;  // a partly written group is void with its segment
    group_partial_ = false;
    std::vector<segment> old;
    old.swap(segs_);
    open_segment(i + 1, 0, t, segment_flag_reset);
    for (const segment& sg : old) remove_segment(sg.id);
    written_last_ = buf_last_ = i;
    last_term_ = t;
    truncation_done();
  }

  /// Once every truncation issued has reached the disk, durability needs no cap.
  void truncation_done() {
    std::lock_guard lk(mu_);
    if (++trunc_done_ == trunc_issued_) floor_ = std::numeric_limits<index_t>::max();
  }

  /// Deletes the segments holding only entries below `i`, oldest first, so a crash at any
  /// moment leaves a contiguous suffix of segments whose oldest header names the term
  /// before it.
  void do_compact(index_t i) {
    while (segs_.size() >= 2 && segs_[1].first <= i) {
      remove_segment(segs_.front().id);
      segs_.erase(segs_.begin());
    }
  }

  /// Reports entries up to `last` durable, capped by truncations not yet on disk.
  void publish(index_t last, std::uint64_t taken) {
    index_t before, now;
    {
      std::lock_guard lk(mu_);
      if (failed_) return;
      before = durable_.load(std::memory_order_relaxed);
      now = std::min(last, floor_);
      durable_.store(now, std::memory_order_release);
      if (taken) completed_ = std::max(completed_, taken);
    }
    if (now > before) {  // the handler runs before waiters are woken
      std::lock_guard lk(handler_mu_);
      if (handler_) handler_(now);
    }
    done_cv_.notify_all();
  }

  FS& fs_;
  std::string dir_;
  options opts_;

  // shared, under mu_
  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_, sync_cv_;  // writer, waiters, sync thread
  std::vector<op> ops_;
  std::size_t ops_bytes_ = 0;  // record bytes in ops_
  bool writer_idle_ = false;   // the writer waits in run() for writer_has_work()
  std::vector<retirement> retired_;
  std::uint64_t submitted_ = 0, completed_ = 0;
  index_t floor_ = std::numeric_limits<index_t>::max();  // min truncation not yet on disk
  std::uint64_t trunc_issued_ = 0, trunc_done_ = 0;
  bool stop_ = false, failed_ = false;
  std::error_code error_;
  std::string error_what_;
  std::vector<segment_event> created_;  // segments created, not yet taken by the owner
  std::atomic<index_t> durable_{0};
  std::atomic<std::uint64_t> syncs_{0};
  std::atomic<std::uint64_t> sync_calls_{0};     // fdatasync calls, failed ones included
  std::atomic<std::uint64_t> sync_total_ns_{0};
  std::atomic<std::uint64_t> sync_max_ns_{0};
  std::array<std::atomic<std::uint64_t>, sync_stats::bucket_bounds_ns.size() + 1> sync_buckets_{};
  std::mutex handler_mu_;
  std::function<void(index_t)> handler_;

  // writer thread
  std::vector<segment> segs_;
  int cur_fd_ = -1;
  std::uint64_t cur_off_ = 0, cur_cap_ = 0;
  std::vector<std::byte> buf_;  // records of the group being gathered: the first buf_len_ bytes
  std::size_t buf_len_ = 0;
  std::size_t last_rec_ = 0;    // offset of the last record in buf_
  std::size_t group_bytes_ = 0;  // bytes of the open group already written (write_partial)
  bool group_partial_ = false;   // the open group has been partly written
  std::uint64_t buf_taken_ = 0;  // ops up to this number are encoded (or written)
  index_t written_last_ = 0, buf_last_ = 0;
  term_t last_term_ = 0;  // term of entry buf_last_
  std::uint64_t next_seq_ = 1, next_id_ = 1;

  // hand-over between writer and sync thread, under mu_
  struct sync_request {
    int fd;
    std::uint64_t segment;
    index_t last;
    std::uint64_t taken;
  };
  sync_request sync_req_{};
  bool sync_pending_ = false, sync_failed_ = false, sync_stop_ = false;

  std::thread syncer_, writer_;
};

}  // namespace raftkit::file::detail
