// file_log/append/payload:B — entries per second made durable by raftkit::file::log_store:
// the owner appends batches of 64 entries continuously (no waiting: everything is in
// flight) and each iteration waits for durability of 64 MiB of records at its end. The
// writer thread groups up to options::max_batch_bytes per fdatasync. Every entry has its
// own payload buffer, allocated and filled while the clock is paused (so they are not in
// the cache: the store's worst case).
//
// file_log/raw/payload:B — the same disk's limit for the same work: a loop of one write
// of max_batch_bytes + one fdatasync into a preallocated plain file, 64 MiB per iteration,
// with `items` counted as the entries of that payload size those bytes would hold (a record
// is 32 bytes of header plus the payload padded to 8).
//
// The disk of a shared machine changes speed from one second to the next, so the append
// benchmark also runs one raw pass before every iteration (clock paused) and reports
// `raw_items_per_second` and `vs_raw` (its items_per_second over the raw rate measured
// alongside): the ratio to the raw limit from passes that saw the same disk.
//
// file_log/read_back/payload:B — entries per second read back from the segment files by
// `at(i)`, in order, as a lagging follower's catch-up (or a restart's replay) reads them:
// 64 MiB of records appended and made durable once, the store reopened (so no payload is
// in memory), then each iteration reads every entry (verifying each record's CRC). The
// files are in the page cache, as for a follower that fell behind recently; from a cold
// disk the disk's read rate is the limit.
//
// Counters: items_per_second (entries), bytes_per_second (payload bytes), fsyncs (per s),
// bytes_per_fsync. Files live in a temporary directory under /tmp (RAFTKIT_BENCH_DIR
// overrides the parent).

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "raftkit/file/log_store.hpp"

namespace {

constexpr std::size_t iteration_bytes = 64u << 20;
constexpr std::size_t batch_entries = 64;

struct bench_dir {
  std::string path;
  bench_dir() {
    const char* parent = std::getenv("RAFTKIT_BENCH_DIR");
    std::string tmpl = std::string(parent ? parent : "/tmp") + "/raftkit-bench-file-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~bench_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::size_t entries_per_iteration(std::size_t payload) {
  return iteration_bytes / raftkit::file::detail::record_size(payload);
}

/// The raw limit: a new preallocated file (made with the clock paused), then iteration_bytes
/// written as one write of `chunk` + one fdatasync after another. Returns the seconds the
/// writes and syncs took and counts the syncs; false on an error (reported to `st`).
bool raw_pass(benchmark::State& st, const std::string& file, const std::vector<char>& buf,
              double& seconds, std::uint64_t& syncs, bool pause) {
  if (pause) st.PauseTiming();
  ::unlink(file.c_str());
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ::posix_fallocate(fd, 0, iteration_bytes) != 0 || ::fsync(fd) != 0) {
    st.SkipWithError("cannot create the raw file");
    if (fd >= 0) ::close(fd);
    return false;
  }
  if (pause) st.ResumeTiming();
  const auto t0 = std::chrono::steady_clock::now();
  bool ok = true;
  for (std::size_t off = 0; ok && off < iteration_bytes; off += buf.size()) {
    ok = ::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(buf.size()) &&
         ::fdatasync(fd) == 0;
    syncs += ok;
  }
  seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (pause) st.PauseTiming();
  ::close(fd);
  if (pause) st.ResumeTiming();
  if (!ok) st.SkipWithError("write or fdatasync failed");
  return ok;
}

void file_log_append(benchmark::State& st) {
  const auto payload = static_cast<std::size_t>(st.range(0));
  bench_dir dir;
  raftkit::file::options opts;
  raftkit::file::log_store log(dir.path + "/log", opts);
  const std::size_t per_iter = entries_per_iteration(payload) / batch_entries * batch_entries;
  std::vector<raftkit::entry> es(per_iter);
  std::vector<char> raw_buf(opts.max_batch_bytes, 'x');
  double raw_seconds = 0;
  std::uint64_t raw_syncs = 0;
  const auto syncs_before = log.sync_count();
  for (auto _ : st) {
    st.PauseTiming();
    if (!raw_pass(st, dir.path + "/raw", raw_buf, raw_seconds, raw_syncs, false)) break;
    // Each entry gets its own payload, made before the clock runs: a proposer makes its
    // payloads, the store's work is to append and persist them.
    raftkit::index_t next = log.last_index() + 1;
    for (auto& e : es) {
      e.term = 1;
      e.index = next++;
      e.payload = raftkit::shared_bytes::allocate(payload);
      std::memset(e.payload.mutable_data(), static_cast<int>(e.index & 0x7F), payload);
    }
    st.ResumeTiming();
    for (std::size_t n = 0; n < per_iter; n += batch_entries)
      log.append(std::span<const raftkit::entry>(es.data() + n, batch_entries));
    if (log.wait_durable(log.last_index())) {
      st.SkipWithError(log.error_message().c_str());
      break;
    }
    st.PauseTiming();
    log.compact_before(log.last_index() + 1);  // keeps memory and disk bounded
    (void)log.flush();
    st.ResumeTiming();
  }
  const auto items = static_cast<std::int64_t>(st.iterations() * per_iter);
  st.SetItemsProcessed(items);
  st.SetBytesProcessed(items * static_cast<std::int64_t>(payload));
  const auto syncs = log.sync_count() - syncs_before;
  st.counters["fsyncs"] = benchmark::Counter(static_cast<double>(syncs), benchmark::Counter::kIsRate);
  st.counters["bytes_per_fsync"] = benchmark::Counter(
      static_cast<double>(st.iterations() * per_iter * raftkit::file::detail::record_size(payload)) /
      static_cast<double>(std::max<std::uint64_t>(1, syncs)));
  if (raw_seconds > 0) {
    const double raw_rate = static_cast<double>(st.iterations() * entries_per_iteration(payload)) / raw_seconds;
    st.counters["raw_items_per_second"] = benchmark::Counter(raw_rate);
    // the seconds the raw loop would need for these items, over the seconds the store
    // took (kIsRate divides by the timed seconds): store rate / raw rate
    st.counters["vs_raw"] = benchmark::Counter(static_cast<double>(items) / raw_rate, benchmark::Counter::kIsRate);
  }
}

void file_log_raw(benchmark::State& st) {
  const auto payload = static_cast<std::size_t>(st.range(0));
  bench_dir dir;
  std::vector<char> buf(raftkit::file::options{}.max_batch_bytes, 'x');
  double seconds = 0;
  std::uint64_t syncs = 0;
  for (auto _ : st)
    if (!raw_pass(st, dir.path + "/raw", buf, seconds, syncs, true)) break;
  const auto items = static_cast<std::int64_t>(st.iterations() * entries_per_iteration(payload));
  st.SetItemsProcessed(items);
  st.SetBytesProcessed(items * static_cast<std::int64_t>(payload));
  st.counters["fsyncs"] = benchmark::Counter(static_cast<double>(syncs), benchmark::Counter::kIsRate);
}

void file_log_read_back(benchmark::State& st) {
  const auto payload = static_cast<std::size_t>(st.range(0));
  bench_dir dir;
  const std::size_t n = entries_per_iteration(payload);
  {
    raftkit::file::log_store log(dir.path + "/log");
    std::vector<raftkit::entry> es;
    for (std::size_t i = 1; i <= n; ++i) {
      auto b = raftkit::shared_bytes::allocate(payload);
      std::memset(b.mutable_data(), static_cast<int>(i & 0x7F), payload);
      es.push_back(raftkit::entry{1, i, raftkit::entry_type::normal, std::move(b)});
      if (es.size() == batch_entries || i == n) {
        log.append(es);
        es.clear();
      }
    }
    if (log.wait_durable(log.last_index())) {
      st.SkipWithError(log.error_message().c_str());
      return;
    }
  }
  raftkit::file::log_store log(dir.path + "/log");
  std::size_t bytes = 0;
  for (auto _ : st) {
    for (raftkit::index_t i = log.first_index(); i <= log.last_index(); ++i) {
      const raftkit::entry e = log.at(i);
      bytes += e.payload.size();
      benchmark::DoNotOptimize(e.payload.data());
    }
    if (log.error()) {
      st.SkipWithError(log.error_message().c_str());
      break;
    }
  }
  const auto items = static_cast<std::int64_t>(st.iterations() * n);
  st.SetItemsProcessed(items);
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

}  // namespace

BENCHMARK(file_log_append)->Name("file_log/append")->ArgName("payload")->Arg(16)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(file_log_raw)->Name("file_log/raw")->ArgName("payload")->Arg(16)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(file_log_read_back)->Name("file_log/read_back")->ArgName("payload")->Arg(16)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
