// snapshot_store/write_commit/mib:N — file::snapshot_store taking an N MiB snapshot: create,
// N writes of 1 MiB, commit (one fsync, rename, directory fsync, deletion of the snapshot two
// back). bytes_per_second is the content rate.
//
// snapshot_store/read/mib:N — reading that snapshot with read_at in 1 MiB chunks from a cold
// page cache (its pages dropped with posix_fadvise while the clock is paused), as a restore or
// an InstallSnapshot transfer reads it.
//
// Each iteration also runs the plain-file equivalent, with the clock paused and timed on its
// own: for write, the same bytes written with pwrite in 1 MiB chunks into a new file and one
// fsync; for read, a pread loop over a cold plain file of the same size. The disk of a shared
// machine changes speed from one second to the next, so the two alternate, and `vs_raw` is the
// store's rate over the raw rate measured alongside. Files live in a temporary directory under
// /tmp (RAFTKIT_BENCH_DIR overrides the parent).

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "raftkit/file/snapshot_store.hpp"

namespace {

constexpr std::size_t chunk = 1u << 20;

struct bench_dir {
  std::string path;
  bench_dir() {
    const char* parent = std::getenv("RAFTKIT_BENCH_DIR");
    std::string tmpl = std::string(parent ? parent : "/tmp") + "/raftkit-bench-snapshot-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  bench_dir(const bench_dir&) = delete;
  bench_dir& operator=(const bench_dir&) = delete;
  ~bench_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Content that does not compress or dedupe: a xorshift stream.
std::vector<std::byte> content(std::size_t n) {
  std::vector<std::byte> b(n);
  std::uint64_t x = 88172645463325252ull;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(b.data() + i, &x, 8);
  }
  return b;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Drops a file's pages from the page cache (it must be clean: written back by fsync).
bool drop_cache(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  ::close(fd);
  return ok;
}

/// The raw write: a new file, the bytes in 1 MiB pwrites, one fsync. Seconds, or < 0.
double raw_write(const std::string& file, const std::vector<std::byte>& data) {
  ::unlink(file.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0;
  for (std::size_t off = 0; ok && off < data.size(); off += chunk)
    ok = ::pwrite(fd, data.data() + off, chunk, static_cast<off_t>(off)) == static_cast<ssize_t>(chunk);
  ok = ok && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  return ok ? seconds_since(t0) : -1;
}

/// The raw read: a pread loop over a cold file. Seconds, or < 0.
double raw_read(const std::string& file, std::vector<std::byte>& buf, std::size_t size) {
  if (!drop_cache(file)) return -1;
  const auto t0 = std::chrono::steady_clock::now();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0;
  for (std::size_t off = 0; ok && off < size; off += chunk)
    ok = ::pread(fd, buf.data(), chunk, static_cast<off_t>(off)) == static_cast<ssize_t>(chunk);
  if (fd >= 0) ::close(fd);
  benchmark::DoNotOptimize(buf.data());
  return ok ? seconds_since(t0) : -1;
}

void report(benchmark::State& st, std::size_t size, double raw_seconds) {
  const auto bytes = static_cast<double>(st.iterations()) * static_cast<double>(size);
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  if (raw_seconds > 0) {
    st.counters["raw_bytes_per_second"] = benchmark::Counter(bytes / raw_seconds);
    // the seconds the raw loop needed over the seconds the store took (kIsRate divides by them)
    st.counters["vs_raw"] = benchmark::Counter(raw_seconds, benchmark::Counter::kIsRate);
  }
}

void snapshot_write_commit(benchmark::State& st) {
  const auto size = static_cast<std::size_t>(st.range(0)) << 20;
  bench_dir dir;
  raftkit::file::snapshot_store store(dir.path + "/snapshots");
  const auto data = content(size);
  double raw_seconds = 0;
  raftkit::index_t index = 0;
  auto raw_pass = [&] {  // with the clock paused
    const double raw = raw_write(dir.path + "/raw", data);
    raw_seconds += raw;
    return raw >= 0;
  };
  for (auto _ : st) {
    const bool raw_first = index % 2 == 0;  // alternate, so neither always meets the other's writeback
    st.PauseTiming();
    if (raw_first && !raw_pass()) {
      st.SkipWithError("raw write failed");
      break;
    }
    st.ResumeTiming();
    auto w = store.create(++index, 1, {});
    std::error_code ec;
    for (std::size_t off = 0; !ec && off < size; off += chunk) ec = w.write(std::span(data.data() + off, chunk));
    if (!ec) ec = w.commit();
    if (ec) {
      st.SkipWithError(ec.message().c_str());
      break;
    }
    st.PauseTiming();
    if (!raw_first && !raw_pass()) {
      st.SkipWithError("raw write failed");
      break;
    }
    st.ResumeTiming();
  }
  report(st, size, raw_seconds);
}

void snapshot_read(benchmark::State& st) {
  const auto size = static_cast<std::size_t>(st.range(0)) << 20;
  bench_dir dir;
  raftkit::file::snapshot_store store(dir.path + "/snapshots");
  {
    const auto data = content(size);
    auto w = store.create(1, 1, {});
    if (w.write(data) || w.commit() || raw_write(dir.path + "/raw", data) < 0) {
      st.SkipWithError("cannot write the snapshot");
      return;
    }
  }
  const auto meta = *store.latest();
  const std::string file = dir.path + "/snapshots/" + raftkit::file::detail::snapshot_file_name(1, 1);
  std::vector<std::byte> buf(chunk);
  double raw_seconds = 0;
  for (auto _ : st) {
    st.PauseTiming();
    const double raw = raw_read(dir.path + "/raw", buf, size);
    if (raw < 0 || !drop_cache(file)) {
      st.SkipWithError("raw read failed");
      break;
    }
    raw_seconds += raw;
    st.ResumeTiming();
    auto src = store.open(meta);
    std::uint64_t off = 0;
    while (std::size_t n = src.read_at(off, buf)) off += n;
    benchmark::DoNotOptimize(buf.data());
    if (src.error() || off != size) {
      st.SkipWithError("read failed");
      break;
    }
  }
  report(st, size, raw_seconds);
}

}  // namespace

BENCHMARK(snapshot_write_commit)->Name("snapshot_store/write_commit")->ArgName("mib")->Arg(64)->Arg(256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(snapshot_read)->Name("snapshot_store/read")->ArgName("mib")->Arg(64)->Arg(256)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
