// file_log/append/payload:B — entries per second made durable by raftkit::file::log_store:
// the owner appends batches of 64 entries continuously (no waiting: everything is in
// flight) and each iteration waits for durability of 64 MiB of records at its end. The
// writer thread groups up to options::max_batch_bytes per write + fdatasync. Every entry
// has its own payload buffer, allocated and filled while the clock is paused.
//
// file_log/raw/payload:B — the same disk's limit for the same work: a loop of one write
// of max_batch_bytes + one fdatasync into a preallocated plain file, 64 MiB per iteration,
// with `items` counted as the entries of that payload size those bytes would hold.
//
// Counters: items_per_second (entries), bytes_per_second (payload bytes), fsyncs (per s).
// Files live in a temporary directory under /tmp (RAFTKIT_BENCH_DIR overrides the parent).

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <span>
#include <filesystem>
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

void file_log_append(benchmark::State& st) {
  const auto payload = static_cast<std::size_t>(st.range(0));
  bench_dir dir;
  raftkit::file::options opts;
  raftkit::file::log_store log(dir.path + "/log", opts);
  const std::size_t per_iter = entries_per_iteration(payload) / batch_entries * batch_entries;
  std::vector<raftkit::entry> es(per_iter);
  const auto syncs_before = log.sync_count();
  for (auto _ : st) {
    // Each entry gets its own payload, made before the clock runs: a proposer makes its
    // payloads, the store's work is to append and persist them.
    st.PauseTiming();
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
  st.counters["fsyncs"] = benchmark::Counter(static_cast<double>(log.sync_count() - syncs_before),
                                             benchmark::Counter::kIsRate);
  st.counters["bytes_per_fsync"] = benchmark::Counter(
      static_cast<double>(st.iterations() * per_iter * raftkit::file::detail::record_size(payload)) /
      static_cast<double>(std::max<std::uint64_t>(1, log.sync_count() - syncs_before)));
}

void file_log_raw(benchmark::State& st) {
  const auto payload = static_cast<std::size_t>(st.range(0));
  const std::size_t chunk = raftkit::file::options{}.max_batch_bytes;
  bench_dir dir;
  std::vector<char> buf(chunk, 'x');
  std::uint64_t syncs = 0;
  const std::string file = dir.path + "/raw";
  for (auto _ : st) {
    st.PauseTiming();
    ::unlink(file.c_str());
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::posix_fallocate(fd, 0, iteration_bytes) != 0 || ::fsync(fd) != 0) {
      st.SkipWithError("cannot create the raw file");
      break;
    }
    st.ResumeTiming();
    for (std::size_t off = 0; off < iteration_bytes; off += chunk) {
      if (::pwrite(fd, buf.data(), chunk, static_cast<off_t>(off)) != static_cast<ssize_t>(chunk) ||
          ::fdatasync(fd) != 0) {
        st.SkipWithError("write or fdatasync failed");
        break;
      }
      ++syncs;
    }
    st.PauseTiming();
    ::close(fd);
    st.ResumeTiming();
  }
  const auto items = static_cast<std::int64_t>(st.iterations() * entries_per_iteration(payload));
  st.SetItemsProcessed(items);
  st.SetBytesProcessed(items * static_cast<std::int64_t>(payload));
  st.counters["fsyncs"] = benchmark::Counter(static_cast<double>(syncs), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(file_log_append)->Name("file_log/append")->ArgName("payload")->Arg(16)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(file_log_raw)->Name("file_log/raw")->ArgName("payload")->Arg(16)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
