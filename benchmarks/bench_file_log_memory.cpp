// file-log-memory: the resident memory of a raftkit::file::log_store holding a large log.
//
//   file-log-memory [--entries N] [--payload B] [--cache BYTES|all]
//
// Appends N entries (default 1,000,000) of B bytes (default 1 KiB) in batches of 64, each
// payload its own buffer that only the store holds once appended (the producer drops its
// references after each batch, as the engine does once entries are applied). A producer
// that outruns the disk waits once 16 MiB of records are not yet durable, as a node's
// bounded proposal queue makes it; without that the backlog, not the store, would be
// measured. Then it reads every entry back once, in order (a follower catching up from
// the start), and reports the process's resident memory (VmRSS) before opening the store,
// after the appends are durable, after the read-back, and its peak (VmHWM), with the
// store's own memory() accounting. --cache sets options::max_cached_bytes (default: the
// store's default; `all`: unbounded, every payload stays in memory).
//
// The same source builds against a store without bounded memory (before options::
// max_cached_bytes and memory() existed; both are detected), so the figure can be taken
// for the old all-in-memory store too:
//   g++ -std=c++20 -O2 -I<old tree>/include benchmarks/bench_file_log_memory.cpp -pthread
//
// Files live in a temporary directory under /tmp (RAFTKIT_BENCH_DIR overrides the parent),
// removed at the end.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "raftkit/file/log_store.hpp"

namespace {

/// A field of /proc/self/status in KiB (VmRSS, VmHWM), or -1.
long status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  return -1;
}

/// Sets the tail cache bound on stores that have one.
template <class O>
bool set_cache(O& o, std::size_t bytes) {
  if constexpr (requires { o.max_cached_bytes; }) {
    o.max_cached_bytes = bytes;
    return true;
  } else {
    return false;
  }
}

template <class O>
std::string cache_of(const O& o) {
  if constexpr (requires { o.max_cached_bytes; }) {
    return o.max_cached_bytes == std::numeric_limits<std::size_t>::max() ? "all" : std::to_string(o.max_cached_bytes);
  } else {
    return "none (every entry in memory)";
  }
}

template <class S>
void print_accounting(const S& s) {
  if constexpr (requires { s.memory(); }) {
    const auto m = s.memory();
    std::printf("  store accounting: cached_entries %zu  cached_bytes %zu  index_bytes %zu  read_buffer_bytes %zu\n",
                m.cached_entries, m.cached_bytes, m.index_bytes, m.read_buffer_bytes);
  }
}

std::uintmax_t dir_bytes(const std::string& dir) {
  std::uintmax_t total = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir))
    if (f.is_regular_file()) total += f.file_size();
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t entries = 1'000'000, payload = 1024;
  raftkit::file::options opts;
  for (int k = 1; k + 1 < argc; k += 2) {
    const std::string a = argv[k], v = argv[k + 1];
    if (a == "--entries") {
      entries = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--payload") {
      payload = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--cache") {
      if (!set_cache(opts, v == "all" ? std::numeric_limits<std::size_t>::max() : std::strtoull(v.c_str(), nullptr, 10))) {
        std::fprintf(stderr, "this store has no tail cache bound\n");
        return 2;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--entries N] [--payload B] [--cache BYTES|all]\n", argv[0]);
      return 2;
    }
  }
  const char* parent = std::getenv("RAFTKIT_BENCH_DIR");
  std::string dir = std::string(parent ? parent : "/tmp") + "/raftkit-bench-memory-XXXXXX";
  if (!::mkdtemp(dir.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  int rc = 0;
  try {
    const long rss_before = status_kib("VmRSS");
    raftkit::file::log_store log(dir + "/log", opts);
    const std::size_t record = raftkit::file::detail::record_size(payload);
    const std::size_t backlog = std::max<std::size_t>(64, (16u << 20) / record);
    std::vector<raftkit::entry> batch;
    for (raftkit::index_t i = 1; i <= entries; ++i) {
      auto b = raftkit::shared_bytes::allocate(payload);
      std::memset(b.mutable_data(), static_cast<int>(i & 0x7F), payload);
      batch.push_back(raftkit::entry{1, i, raftkit::entry_type::normal, std::move(b)});
      if (batch.size() == 64 || i == entries) {
        log.append(batch);
        batch.clear();  // the store holds the only references now
        if (log.last_index() - log.durable_index() > backlog) (void)log.wait_durable(log.last_index() - backlog / 2);
      }
    }
    if (log.wait_durable(log.last_index())) throw std::runtime_error(log.error_message());
    const long rss_written = status_kib("VmRSS");
    std::printf("file log: %zu entries of %zu bytes, max_cached_bytes %s, %.1f MiB on disk\n", entries, payload,
                cache_of(opts).c_str(), static_cast<double>(dir_bytes(dir + "/log")) / (1 << 20));
    std::printf("  resident before opening   %8ld KiB\n", rss_before);
    std::printf("  after the appends         %8ld KiB  (store: %ld KiB)\n", rss_written, rss_written - rss_before);
    print_accounting(log);
    std::uint64_t sum = 0;
    for (raftkit::index_t i = log.first_index(); i <= log.last_index(); ++i) {
      const raftkit::entry e = log.at(i);
      if (e.payload.size() != payload || e.payload.data()[0] != static_cast<std::byte>(i & 0x7F))
        throw std::runtime_error("entry " + std::to_string(i) + " reads back wrong");
      sum += e.payload.size();
    }
    if (log.error()) throw std::runtime_error(log.error_message());
    const long rss_read = status_kib("VmRSS");
    std::printf("  after reading all back    %8ld KiB  (store: %ld KiB, %.1f MiB read)\n", rss_read,
                rss_read - rss_before, static_cast<double>(sum) / (1 << 20));
    print_accounting(log);
    std::printf("  peak resident (VmHWM)     %8ld KiB\n", status_kib("VmHWM"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    rc = 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
