#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "raftkit/detail/crc32c.hpp"
#include "raftkit/file/snapshot_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"
#include "raftkit/snapshot_store.hpp"
#include "snapshot_archetypes.hpp"

namespace {

namespace fsys = std::filesystem;
using raftkit::index_t;
using raftkit::snapshot_meta;
using raftkit::term_t;
using bytes = std::vector<std::byte>;

const std::error_code stale = raftkit::errc::stale_snapshot;

/// `n` bytes that depend on `seed` and on their position, so a misplaced chunk shows.
bytes content_of(std::size_t n, std::uint64_t seed) {
  bytes b(n);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& c : b) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    c = std::byte(static_cast<unsigned char>(x));
  }
  return b;
}
bytes config_of(std::string_view s) {
  auto p = reinterpret_cast<const std::byte*>(s.data());
  return bytes(p, p + s.size());
}

/// Writes `data` as snapshot (i, t) in chunks of `chunk` bytes and commits it.
template <class Store>
std::error_code put(Store& s, index_t i, term_t t, const bytes& data, std::size_t chunk = 1000,
                    bytes cfg = config_of("voters=1,2,3")) {
  auto w = s.create(i, t, std::move(cfg));
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    const std::size_t n = std::min(chunk, data.size() - off);
    if (auto ec = w.write(std::span<const std::byte>(data.data() + off, n))) return ec;
  }
  return w.commit();
}

/// Reads a source from 0 to its end in chunks of `chunk` bytes.
template <class Source>
bytes read_all(Source& src, std::size_t chunk = 4093) {
  bytes out, buf(chunk);
  for (;;) {
    const std::size_t n = src.read_at(out.size(), buf);
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (n < chunk) break;
  }
  return out;
}

/// Opens `m` in `s` and checks its content is `expect` (and matches its meta).
template <class Store>
void check_content(Store& s, const snapshot_meta& m, const bytes& expect) {
  auto src = s.open(m);
  REQUIRE_FALSE(src.error());
  CHECK(src.meta() == m);
  const bytes got = read_all(src);
  REQUIRE_FALSE(src.error());
  CHECK(got.size() == m.size);
  CHECK(raftkit::detail::crc32c(got.data(), got.size()) == m.crc);
  CHECK(got == expect);
}

/// A fresh directory under /tmp, removed with everything in it at scope exit.
struct scratch_dir {
  std::string path = [] {
    char tmpl[] = "/tmp/raftkit-snapshots-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    return std::string(tmpl);
  }();
  scratch_dir() = default;
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  ~scratch_dir() {
    std::error_code ec;
    fsys::remove_all(path, ec);
  }
};

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& de : fsys::directory_iterator(dir)) v.push_back(de.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}
std::size_t count_suffix(const std::vector<std::string>& names, std::string_view suffix) {
  return static_cast<std::size_t>(std::count_if(names.begin(), names.end(), [&](const std::string& n) {
    return std::string_view(n).ends_with(suffix);
  }));
}

/// Small buffers, so tests cross the buffered and the direct write paths with little data.
raftkit::file::snapshot_options small_buffer() {
  raftkit::file::snapshot_options o;
  o.buffer_bytes = 4096;
  return o;
}

// The two stores behind one face, for the rules they share.
struct memory_env {
  raftkit::memory::snapshot_store s;
  raftkit::memory::snapshot_store& store() { return s; }
};
struct file_env {
  scratch_dir dir;
  std::optional<raftkit::file::snapshot_store> s{std::in_place, dir.path + "/snap", small_buffer()};
  raftkit::file::snapshot_store& store() { return *s; }
};

// ---------------------------------------------------------------------------------------
// A simulated disk for power-loss and error injection. File data stays "unsynced" until
// fsync and directory entries until sync_dir; power_loss() keeps only what was synced and
// tears unsynced writes. Mutating calls are counted; one of them can be made to fail, or the
// machine can stop at one (it and every later mutating call fail, as if power went then).

struct fault_disk {
  struct inode {
    bytes durable, current;
    std::vector<std::pair<std::uint64_t, bytes>> unsynced;
  };
  std::mutex mu;
  std::map<std::string, std::shared_ptr<inode>> names, durable_names;
  std::map<int, std::shared_ptr<inode>> fds;
  std::set<std::string> locks;
  std::map<int, std::string> lock_fds;
  int next_fd = 3;
  long long ops = 0;       // mutating calls so far
  long long fail_at = -1;  // the mutating call (by count) that fails with fail_errno
  int fail_errno = EIO;
  bool stop = false;  // ...and every one after it fails too
  bool stopped = false;

  /// Whether the mutating call being made fails (and with what, as -errno).
  int tick() {
    const long long n = ops++;
    if (stopped) return -EIO;
    if (n != fail_at) return 0;
    stopped = stop;
    return -fail_errno;
  }
  void fail_op(long long k, int err, bool stop_machine) {
    std::lock_guard lk(mu);
    fail_at = ops + k;
    fail_errno = err;
    stop = stop_machine;
  }

  /// Power loss: each 512-byte block of an unsynced write independently lands, is lost,
  /// reads as zeros or as garbage (with `tear`), or every unsynced write is lost.
  void power_loss(bool tear, std::mt19937_64& rng) {
    std::lock_guard lk(mu);
    std::set<inode*> seen;
    for (auto& [_, i] : durable_names) {
      if (!seen.insert(i.get()).second) continue;
      bytes d = i->durable;
      for (auto& [off, data] : tear ? i->unsynced : decltype(i->unsynced){}) {
        const std::uint64_t end = off + data.size();
        for (std::uint64_t b = off / 512 * 512; b < end; b += 512) {
          const std::uint64_t lo = std::max(b, off), hi = std::min(b + 512, end);
          const auto what = rng() % 4;
          if (what == 1) continue;
          if (d.size() < hi) d.resize(hi);
          for (std::uint64_t o = lo; o < hi; ++o)
            d[o] = what == 0 ? data[o - off] : what == 2 ? std::byte{0} : std::byte(rng() & 0xFF);
        }
      }
      i->durable = d;
      i->current = std::move(d);
      i->unsynced.clear();
    }
    names = durable_names;
    fds.clear();
    locks.clear();
    lock_fds.clear();
    fail_at = -1;
    stopped = false;
  }
  std::vector<std::string> files(std::string_view suffix) {
    std::lock_guard lk(mu);
    std::vector<std::string> v;
    for (auto& [n, _] : names)
      if (std::string_view(n).ends_with(suffix)) v.push_back(n);
    return v;
  }
};

struct fault_fs {
  std::shared_ptr<fault_disk> d = std::make_shared<fault_disk>();

  int open(const std::string& p, bool create) {
    std::lock_guard lk(d->mu);
    if (create) {
      if (int e = d->tick()) return e;
      auto ino = std::make_shared<fault_disk::inode>();
      d->names[p] = ino;
      d->fds[d->next_fd] = ino;
      return d->next_fd++;
    }
    auto it = d->names.find(p);
    if (it == d->names.end()) return -ENOENT;
    d->fds[d->next_fd] = it->second;
    return d->next_fd++;
  }
  int close(int fd) {
    std::lock_guard lk(d->mu);
    d->fds.erase(fd);
    return 0;
  }
  long long pwrite(int fd, const void* in, std::size_t n, std::uint64_t off) {
    std::lock_guard lk(d->mu);
    const int e = d->tick();
    if (e) n /= 2;  // a failing write may land in part
    auto& ino = *d->fds.at(fd);
    auto p = static_cast<const std::byte*>(in);
    if (ino.current.size() < off + n) ino.current.resize(off + n);
    if (n) std::memcpy(ino.current.data() + off, p, n);
    ino.unsynced.emplace_back(off, bytes(p, p + n));
    return e ? e : static_cast<long long>(n);
  }
  long long pread(int fd, void* out, std::size_t n, std::uint64_t off) {
    std::lock_guard lk(d->mu);
    auto& ino = *d->fds.at(fd);
    if (off >= ino.current.size()) return 0;
    const std::size_t k = std::min<std::size_t>(n, ino.current.size() - off);
    std::memcpy(out, ino.current.data() + off, k);
    return static_cast<long long>(k);
  }
  int fsync(int fd) {
    std::lock_guard lk(d->mu);
    if (int e = d->tick()) return e;
    auto& ino = *d->fds.at(fd);
    ino.durable = ino.current;
    ino.unsynced.clear();
    return 0;
  }
  long long size(int fd) {
    std::lock_guard lk(d->mu);
    return static_cast<long long>(d->fds.at(fd)->current.size());
  }
  int rename(const std::string& from, const std::string& to) {
    std::lock_guard lk(d->mu);
    if (int e = d->tick()) return e;
    auto it = d->names.find(from);
    if (it == d->names.end()) return -ENOENT;
    auto ino = it->second;
    d->names.erase(it);
    d->names[to] = std::move(ino);
    return 0;
  }
  int unlink(const std::string& p) {
    std::lock_guard lk(d->mu);
    if (int e = d->tick()) return e;
    return d->names.erase(p) ? 0 : -ENOENT;
  }
  int make_dir(const std::string&) { return 0; }
  int sync_dir(const std::string&) {
    std::lock_guard lk(d->mu);
    if (int e = d->tick()) return e;
    d->durable_names = d->names;
    return 0;
  }
  int list_dir(const std::string& p, std::vector<std::string>& out) {
    std::lock_guard lk(d->mu);
    out.clear();
    const std::string pre = p + "/";
    for (auto& [n, _] : d->names)
      if (n.starts_with(pre) && n.find('/', pre.size()) == std::string::npos) out.push_back(n.substr(pre.size()));
    return 0;
  }
  int lock(const std::string& p) {
    std::lock_guard lk(d->mu);
    if (!d->locks.insert(p).second) return -EWOULDBLOCK;
    d->lock_fds[d->next_fd] = p;
    return d->next_fd++;
  }
  void unlock(int fd) {
    std::lock_guard lk(d->mu);
    if (auto it = d->lock_fds.find(fd); it != d->lock_fds.end()) {
      d->locks.erase(it->second);
      d->lock_fds.erase(it);
    }
  }
};
static_assert(raftkit::file::snapshot_file_system<fault_fs>);

using fault_store = raftkit::file::basic_snapshot_store<fault_fs>;
static_assert(raftkit::snapshot_store<fault_store>);

fault_store open_fault_store(const fault_fs& fs) { return fault_store("/d", small_buffer(), fs); }

/// The snapshots a commit sweep starts from (two, so the commit also deletes one) and the one
/// it commits.
const bytes sweep_old = content_of(9000, 5), sweep_new = content_of(20000, 9);
void prepare_sweep(const fault_fs& fs) {
  auto s = open_fault_store(fs);
  REQUIRE_FALSE(put(s, 3, 1, content_of(5000, 3)));
  REQUIRE_FALSE(put(s, 5, 1, sweep_old));
}
/// Mutating calls a clean commit of sweep_new makes (create, writes, fsync, renames, syncs,
/// the deletion of the oldest snapshot).
long long sweep_ops() {
  fault_fs fs;
  prepare_sweep(fs);
  auto s = open_fault_store(fs);
  const long long before = fs.d->ops;
  REQUIRE_FALSE(put(s, 9, 2, sweep_new));
  return fs.d->ops - before;
}

}  // namespace

TEST_SUITE("snapshot_store") {

// --- rules both stores follow ------------------------------------------------------------

TEST_CASE_TEMPLATE("a committed snapshot round-trips: latest() gives its meta, open() reads its content at any offset",
                   Env, memory_env, file_env) {
  Env env;
  auto& s = env.store();
  CHECK_FALSE(s.latest());
  const bytes data = content_of(50000, 1);
  auto w = s.create(7, 3, config_of("voters=1,2,3"));
  // chunks below, at and above the file store's 4096-byte buffer, in an irregular order
  const std::size_t sizes[] = {1, 4095, 4096, 100, 10000, 3, 4097, 7000};
  std::size_t off = 0;
  for (std::size_t k = 0; off < data.size(); ++k) {
    const std::size_t n = std::min(sizes[k % std::size(sizes)], data.size() - off);
    REQUIRE_FALSE(w.write(std::span<const std::byte>(data.data() + off, n)));
    off += n;
  }
  REQUIRE_FALSE(w.commit());
  auto l = s.latest();
  REQUIRE(l);
  CHECK(l->index == 7);
  CHECK(l->term == 3);
  CHECK(l->config == config_of("voters=1,2,3"));
  CHECK(l->size == data.size());
  CHECK(l->crc == raftkit::detail::crc32c(data.data(), data.size()));
  check_content(s, *l, data);

  auto src = s.open(*l);
  bytes part(1000);
  CHECK(src.read_at(12345, part) == 1000);
  CHECK(std::equal(part.begin(), part.end(), data.begin() + 12345));
  CHECK(src.read_at(data.size() - 10, part) == 10);  // short only at the end
  CHECK(std::equal(part.begin(), part.begin() + 10, data.end() - 10));
  CHECK(src.read_at(data.size(), part) == 0);
  CHECK(src.read_at(data.size() + 5000, part) == 0);
  CHECK_FALSE(src.error());
}

TEST_CASE_TEMPLATE("an empty snapshot with an empty configuration round-trips", Env, memory_env, file_env) {
  Env env;
  auto& s = env.store();
  auto w = s.create(1, 1, {});
  CHECK(w.written() == 0);
  CHECK(w.crc() == 0);
  REQUIRE_FALSE(w.commit());
  auto l = s.latest();
  REQUIRE(l);
  CHECK(l->size == 0);
  CHECK(l->config.empty());
  check_content(s, *l, {});
}

TEST_CASE_TEMPLATE("a sink's written() and crc() are the size and CRC-32C of the bytes written so far", Env,
                   memory_env, file_env) {
  Env env;
  auto& s = env.store();
  const bytes data = content_of(30000, 2);
  auto w = s.create(4, 1, {});
  for (std::size_t off = 0, n = 1; off < data.size(); off += n, n = n * 3 + 1) {
    n = std::min(n, data.size() - off);
    REQUIRE_FALSE(w.write(std::span<const std::byte>(data.data() + off, n)));
    CHECK(w.written() == off + n);
    CHECK(w.crc() == raftkit::detail::crc32c(data.data(), off + n));
  }
  const auto crc = w.crc();
  REQUIRE_FALSE(w.commit());
  CHECK(s.latest()->crc == crc);
  CHECK(s.latest()->size == data.size());
}

TEST_CASE_TEMPLATE("abort() and destroying an uncommitted sink discard the snapshot", Env, memory_env, file_env) {
  Env env;
  auto& s = env.store();
  const bytes old = content_of(3000, 1);
  REQUIRE_FALSE(put(s, 2, 1, old));
  {
    auto w = s.create(5, 1, {});
    REQUIRE_FALSE(w.write(content_of(10000, 5)));
    w.abort();
    w.abort();  // idempotent
  }
  {
    auto w = s.create(6, 1, {});
    REQUIRE_FALSE(w.write(content_of(10000, 6)));
    auto moved = std::move(w);  // the moved-from sink discards nothing, the destination does
  }
  auto l = s.latest();
  REQUIRE(l);
  CHECK(l->index == 2);
  check_content(s, *l, old);
  if constexpr (std::is_same_v<Env, file_env>) {
    const auto names = names_in(env.dir.path + "/snap");
    CHECK(count_suffix(names, ".tmp") == 0);
    CHECK(count_suffix(names, ".snap") == 1);
  }
  // neither took the index: a later snapshot at 5 commits
  REQUIRE_FALSE(put(s, 5, 1, content_of(100, 7)));
  CHECK(s.latest()->index == 5);
}

TEST_CASE_TEMPLATE("a commit not newer than latest() fails with stale_snapshot and changes nothing", Env,
                   memory_env, file_env) {
  Env env;
  auto& s = env.store();
  const bytes data = content_of(2000, 10);
  REQUIRE_FALSE(put(s, 10, 2, data));
  const auto before = *s.latest();

  CHECK(put(s, 10, 2, content_of(100, 1)) == stale);  // the same index
  CHECK(put(s, 9, 2, content_of(100, 1)) == stale);   // an older one
  // two sinks racing: the newer commits first, the older one then fails
  auto older = s.create(15, 2, {});
  auto newer = s.create(20, 3, {});
  REQUIRE_FALSE(older.write(content_of(100, 15)));
  REQUIRE_FALSE(newer.write(content_of(100, 20)));
  REQUIRE_FALSE(newer.commit());
  CHECK(older.commit() == stale);
  CHECK(s.latest()->index == 20);
  // a sink created when latest() is already at or past its index fails from its first write
  auto late = s.create(18, 3, {});
  CHECK(late.write(content_of(10, 1)) == stale);
  CHECK(late.commit() == stale);
  CHECK(s.latest()->index == 20);
  check_content(s, before, data);  // the earlier one is still the second kept
  if constexpr (std::is_same_v<Env, file_env>) CHECK(count_suffix(names_in(env.dir.path + "/snap"), ".tmp") == 0);
}

TEST_CASE_TEMPLATE("the store keeps the last 2 snapshots", Env, memory_env, file_env) {
  Env env;
  auto& s = env.store();
  std::vector<snapshot_meta> metas;
  for (index_t i = 1; i <= 4; ++i) {
    REQUIRE_FALSE(put(s, i * 10, 1, content_of(3000 + i, i)));
    metas.push_back(*s.latest());
  }
  CHECK(s.open(metas[0]).error() == stale);
  CHECK(s.open(metas[1]).error() == stale);
  check_content(s, metas[2], content_of(3003, 3));
  check_content(s, metas[3], content_of(3004, 4));
  if constexpr (std::is_same_v<Env, memory_env>) {
    CHECK(s.kept() == std::vector<snapshot_meta>{metas[2], metas[3]});
  } else {
    CHECK(names_in(env.dir.path + "/snap") ==
          std::vector<std::string>{raftkit::file::detail::snapshot_file_name(30, 1),
                                   raftkit::file::detail::snapshot_file_name(40, 1), "snapshot.lock"});
  }
}

TEST_CASE_TEMPLATE("a source stays readable after its snapshot is replaced and deleted", Env, memory_env,
                   file_env) {
  Env env;
  auto& s = env.store();
  const bytes first = content_of(40000, 1);
  REQUIRE_FALSE(put(s, 1, 1, first));
  auto src = s.open(*s.latest());
  bytes head(100);
  REQUIRE(src.read_at(0, head) == 100);  // a transfer under way...
  REQUIRE_FALSE(put(s, 2, 1, content_of(10, 2)));
  REQUIRE_FALSE(put(s, 3, 1, content_of(10, 3)));  // ...while its snapshot is deleted
  CHECK(s.open(src.meta()).error() == stale);
  if constexpr (std::is_same_v<Env, file_env>)
    CHECK_FALSE(fsys::exists(env.dir.path + "/snap/" + raftkit::file::detail::snapshot_file_name(1, 1)));
  const bytes got = read_all(src);
  CHECK_FALSE(src.error());
  CHECK(got == first);
  auto copy = src;  // copies read independently
  CHECK(read_all(copy) == first);
}

TEST_CASE_TEMPLATE("sinks write and commit on a worker thread while latest() and open() run on another", Env,
                   memory_env, file_env) {
  Env env;
  auto& s = env.store();
  constexpr index_t snapshots = 40;
  // The worker writes snapshot i + 1 only once this thread has seen snapshot i, so every
  // read below overlaps the writing of the next snapshot (and, at most one commit coming
  // between latest() and open(), the snapshot read is always still kept).
  std::atomic<index_t> seen{0};
  std::atomic<bool> stop{false}, worker_failed{false};
  // made on this thread, written on the worker (as the engine hands a sink to a writer)
  auto first = s.create(1, 1, config_of("cfg1"));
  std::thread worker([&, w = std::move(first)]() mutable {
    for (index_t i = 1; i <= snapshots && !stop; ++i) {
      if (i > 1) w = s.create(i, 1, config_of("cfg" + std::to_string(i)));
      const bytes data = content_of(20000 + i * 100, i);
      for (std::size_t off = 0; off < data.size(); off += 3000)
        if (w.write(std::span<const std::byte>(data.data() + off, std::min<std::size_t>(3000, data.size() - off))))
          worker_failed = true;
      if (w.commit()) worker_failed = true;
      while (seen.load() < i && !stop) std::this_thread::yield();
    }
  });
  index_t reads = 0;
  bool ok = true;  // no REQUIRE while the worker runs: a throw here would skip the join
  while (ok && seen.load() < snapshots && !worker_failed) {
    auto l = s.latest();
    if (!l || l->index == seen.load()) continue;
    ok = l->index > seen.load() && l->config == config_of("cfg" + std::to_string(l->index));  // never backwards
    seen = l->index;
    auto src = s.open(*l);
    ok = ok && !src.error() && read_all(src) == content_of(20000 + l->index * 100, l->index);
    ++reads;
  }
  stop = true;
  worker.join();
  CHECK(ok);
  CHECK_FALSE(worker_failed);
  CHECK(reads == snapshots);
  CHECK(s.latest()->index == snapshots);
}

// --- memory::snapshot_store ----------------------------------------------------------------

TEST_CASE("memory: copies of a snapshot store are handles to one store") {
  raftkit::memory::snapshot_store a;
  auto b = a;
  REQUIRE_FALSE(put(b, 3, 1, content_of(500, 3)));
  REQUIRE(a.latest());
  CHECK(a.latest() == b.latest());
  check_content(a, *a.latest(), content_of(500, 3));
}

TEST_CASE("memory: crash() loses every sink not yet committed and keeps the committed snapshots") {
  raftkit::memory::snapshot_store s;
  REQUIRE_FALSE(put(s, 3, 1, content_of(500, 3)));
  auto w = s.create(8, 2, {});
  REQUIRE_FALSE(w.write(content_of(500, 8)));
  s.crash();
  CHECK(w.commit() == raftkit::errc::io_error);
  CHECK(s.latest()->index == 3);
  check_content(s, *s.latest(), content_of(500, 3));
  REQUIRE_FALSE(put(s, 8, 2, content_of(500, 8)));  // a sink made after the crash commits
  CHECK(s.latest()->index == 8);
}

TEST_CASE("memory: an injected error fails writes and commits until it is cleared") {
  raftkit::memory::snapshot_store s;
  REQUIRE_FALSE(put(s, 3, 1, content_of(500, 3)));
  auto w = s.create(5, 1, {});
  REQUIRE_FALSE(w.write(content_of(100, 1)));
  s.inject_error(raftkit::errc::no_space);
  CHECK(w.write(content_of(100, 2)) == raftkit::errc::no_space);
  CHECK(w.commit() == raftkit::errc::no_space);
  CHECK(put(s, 6, 1, {}) == raftkit::errc::no_space);  // a commit with no write fails too
  CHECK(s.latest()->index == 3);
  s.inject_error({});
  REQUIRE_FALSE(put(s, 6, 1, content_of(100, 6)));
  CHECK(s.latest()->index == 6);
}

// --- file::snapshot_store on real files ----------------------------------------------------

TEST_CASE("file: the directory is created if missing and a committed snapshot is found after a reopen") {
  scratch_dir d;
  const std::string dir = d.path + "/a/b";
  REQUIRE(fsys::create_directory(d.path + "/a"));
  const bytes data = content_of(70000, 4);
  snapshot_meta m;
  {
    raftkit::file::snapshot_store s(dir, small_buffer());
    REQUIRE_FALSE(put(s, 42, 7, data, 5000, config_of("voters=1,2,3;learners=4")));
    m = *s.latest();
  }
  raftkit::file::snapshot_store s(dir);
  REQUIRE(s.latest());
  CHECK(*s.latest() == m);
  CHECK(s.latest()->config == config_of("voters=1,2,3;learners=4"));
  CHECK(s.recovery().used == dir + "/" + raftkit::file::detail::snapshot_file_name(42, 7));
  CHECK(s.recovery().refused.empty());
  check_content(s, m, data);
}

TEST_CASE("file: a second store on the same directory is refused as locked") {
  scratch_dir d;
  raftkit::file::snapshot_store s(d.path);
  std::error_code ec;
  try {
    raftkit::file::snapshot_store again(d.path);
  } catch (const std::system_error& e) {
    ec = e.code();
  }
  CHECK(ec == raftkit::errc::locked);
}

TEST_CASE("file: leftover temporary snapshot files are removed on open; other files are left alone") {
  scratch_dir d;
  {
    raftkit::file::snapshot_store s(d.path);
    REQUIRE_FALSE(put(s, 5, 1, content_of(100, 5)));
  }
  const std::string leftover = d.path + "/snapshot-0000000000000009-0000000000000002-0.tmp";
  { std::ofstream(leftover) << "half a snapshot"; }
  { std::ofstream(d.path + "/hard_state.tmp") << "not ours"; }
  { std::ofstream(d.path + "/notes.txt") << "not ours either"; }
  raftkit::file::snapshot_store s(d.path);
  CHECK(s.recovery().removed_temporaries == std::vector<std::string>{leftover});
  CHECK(names_in(d.path) == std::vector<std::string>{"hard_state.tmp", "notes.txt",
                                                     raftkit::file::detail::snapshot_file_name(5, 1),
                                                     "snapshot.lock"});
  REQUIRE(s.latest());
  CHECK(s.latest()->index == 5);
}

namespace {
void flip_bit(const std::string& file, std::uint64_t off) {
  int fd = ::open(file.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  unsigned char c = 0;
  REQUIRE(::pread(fd, &c, 1, static_cast<off_t>(off)) == 1);
  c ^= 0x10;
  REQUIRE(::pwrite(fd, &c, 1, static_cast<off_t>(off)) == 1);
  ::close(fd);
}
/// A directory holding good snapshots at (5, 1) and (9, 2), the store closed.
struct two_snapshots {
  scratch_dir d;
  const bytes old_data = content_of(30000, 5), new_data = content_of(40000, 9);
  snapshot_meta old_meta;
  std::string newest = d.path + "/" + raftkit::file::detail::snapshot_file_name(9, 2);
  two_snapshots() {
    raftkit::file::snapshot_store s(d.path, small_buffer());
    REQUIRE_FALSE(put(s, 5, 1, old_data));
    old_meta = *s.latest();
    REQUIRE_FALSE(put(s, 9, 2, new_data, 1000, config_of("voters=1,2,3,4,5")));
  }
};
}  // namespace

TEST_CASE("file: a corrupt newest snapshot is refused with its name and the reason, and the previous one is used") {
  two_snapshots t;
  const std::uint64_t config_at = raftkit::file::detail::snapshot_header_size;
  const std::uint64_t content_at = config_at + config_of("voters=1,2,3,4,5").size();
  std::string reason;
  SUBCASE("a bit flipped in the content") {
    flip_bit(t.newest, content_at + 23456);
    reason = "content checksum mismatch";
  }
  SUBCASE("a bit flipped in the last content byte") {
    flip_bit(t.newest, content_at + t.new_data.size() - 1);
    reason = "content checksum mismatch";
  }
  SUBCASE("a bit flipped in the header's index") {
    flip_bit(t.newest, 16);
    reason = "header checksum mismatch";
  }
  SUBCASE("a bit flipped in the header's content CRC") {
    flip_bit(t.newest, 41);
    reason = "header checksum mismatch";
  }
  SUBCASE("a bit flipped in the configuration") {
    flip_bit(t.newest, config_at + 3);
    reason = "configuration checksum mismatch";
  }
  SUBCASE("truncated by one byte") {
    fsys::resize_file(t.newest, fsys::file_size(t.newest) - 1);
    reason = "truncated or extended";
  }
  SUBCASE("truncated inside the header") {
    fsys::resize_file(t.newest, 40);
    reason = "too short for a snapshot header";
  }
  SUBCASE("a byte appended") {
    fsys::resize_file(t.newest, fsys::file_size(t.newest) + 1);
    reason = "truncated or extended";
  }
  SUBCASE("bad magic") {
    flip_bit(t.newest, 0);
    reason = "bad magic";
  }
  raftkit::file::snapshot_store s(t.d.path);
  REQUIRE(s.recovery().refused.size() == 1);
  const auto& r = s.recovery().refused[0];
  CHECK(r.file == t.newest);
  CHECK(r.reason.find(reason) != std::string::npos);
  CHECK(r.message().find(t.newest) != std::string::npos);
  REQUIRE(s.latest());
  CHECK(*s.latest() == t.old_meta);
  CHECK(s.recovery().used == t.d.path + "/" + raftkit::file::detail::snapshot_file_name(5, 1));
  check_content(s, t.old_meta, t.old_data);
}

TEST_CASE("file: a refused snapshot is set aside as .corrupt, kept for inspection and not read again") {
  two_snapshots t;
  flip_bit(t.newest, 100);
  {
    raftkit::file::snapshot_store s(t.d.path);
    REQUIRE(s.recovery().refused.size() == 1);
    CHECK(s.recovery().refused[0].moved_to == t.newest + ".corrupt");
  }
  CHECK(fsys::exists(t.newest + ".corrupt"));
  CHECK_FALSE(fsys::exists(t.newest));
  raftkit::file::snapshot_store s(t.d.path);
  CHECK(s.recovery().refused.empty());
  REQUIRE(s.latest());
  CHECK(*s.latest() == t.old_meta);
  REQUIRE_FALSE(put(s, 9, 2, content_of(10, 1)));  // the index is free for a new snapshot
  CHECK(s.latest()->index == 9);
}

TEST_CASE("file: when every snapshot is corrupt, latest() is empty and each one is reported") {
  two_snapshots t;
  flip_bit(t.newest, 1000);
  flip_bit(t.d.path + "/" + raftkit::file::detail::snapshot_file_name(5, 1), 1000);
  raftkit::file::snapshot_store s(t.d.path);
  CHECK_FALSE(s.latest());
  REQUIRE(s.recovery().refused.size() == 2);
  CHECK(s.recovery().refused[0].file == t.newest);  // newest first
  CHECK(s.recovery().refused[1].file == t.d.path + "/" + raftkit::file::detail::snapshot_file_name(5, 1));
  CHECK(s.recovery().used.empty());
}

TEST_CASE("file: a source whose file is cut short under it reports corrupt_snapshot instead of short data") {
  scratch_dir d;
  raftkit::file::snapshot_store s(d.path);
  REQUIRE_FALSE(put(s, 5, 1, content_of(20000, 5)));
  auto src = s.open(*s.latest());
  REQUIRE_FALSE(src.error());
  fsys::resize_file(d.path + "/" + raftkit::file::detail::snapshot_file_name(5, 1), 10000);  // by someone else
  bytes buf(4096);
  CHECK(src.read_at(0, buf) == 4096);  // still inside what is left
  CHECK(src.read_at(12000, buf) == 0);
  CHECK(src.error() == raftkit::errc::corrupt_snapshot);
  CHECK(src.read_at(0, buf) == 0);  // the error is sticky
}

TEST_CASE("file: a snapshot whose header disagrees with its file name is refused") {
  two_snapshots t;
  // a good snapshot file put under a newer name: its header still says (9, 2)
  const std::string wrong = t.d.path + "/" + raftkit::file::detail::snapshot_file_name(12, 2);
  fsys::copy_file(t.newest, wrong);
  raftkit::file::snapshot_store s(t.d.path);
  REQUIRE(s.recovery().refused.size() == 1);
  CHECK(s.recovery().refused[0].file == wrong);
  CHECK(s.recovery().refused[0].reason.find("the name says index 12") != std::string::npos);
  REQUIRE(s.latest());
  CHECK(s.latest()->index == 9);
}

// --- file::snapshot_store on a simulated disk: power loss and I/O errors --------------------

TEST_CASE("file: power loss at every step of a commit reopens to the previous snapshot or the new one, never a corrupt one") {
  const long long steps = sweep_ops();
  REQUIRE(steps > 8);
  int saw_old = 0, saw_new = 0;
  for (long long k = 0; k <= steps; ++k) {
    for (bool tear : {false, true}) {
      CAPTURE(k);
      CAPTURE(tear);
      fault_fs fs;
      prepare_sweep(fs);
      std::error_code ec;
      {
        auto s = open_fault_store(fs);
        fs.d->fail_op(k, EIO, true);  // power goes at the k-th mutating call of the commit
        ec = put(s, 9, 2, sweep_new);
      }
      std::mt19937_64 rng(static_cast<std::uint64_t>(k) * 2 + tear);
      fs.d->power_loss(tear, rng);
      auto s = open_fault_store(fs);
      CHECK(s.recovery().refused.empty());
      auto l = s.latest();
      REQUIRE(l);
      if (!ec) CHECK(l->index == 9);  // a commit that returned success is durable
      if (l->index == 9) {
        check_content(s, *l, sweep_new);
        ++saw_new;
      } else {
        REQUIRE(l->index == 5);
        check_content(s, *l, sweep_old);
        ++saw_old;
      }
      CHECK(fs.d->files(".tmp").empty());
    }
  }
  CHECK(saw_old > 0);
  CHECK(saw_new > 0);
}

TEST_CASE("file: the deletion of older snapshots after a commit is durable") {
  fault_fs fs;
  prepare_sweep(fs);
  {
    auto s = open_fault_store(fs);
    REQUIRE_FALSE(put(s, 9, 2, sweep_new));
  }
  std::mt19937_64 rng(1);
  fs.d->power_loss(true, rng);
  CHECK(fs.d->files(".snap") == std::vector<std::string>{"/d/" + raftkit::file::detail::snapshot_file_name(5, 1),
                                                          "/d/" + raftkit::file::detail::snapshot_file_name(9, 2)});
}

TEST_CASE("file: ENOSPC or EIO at any step of a commit is returned as no_space or io_error and leaves the previous snapshot usable") {
  const long long steps = sweep_ops();
  for (int err : {ENOSPC, EIO}) {
    for (long long k = 0; k < steps; ++k) {
      CAPTURE(err);
      CAPTURE(k);
      fault_fs fs;
      prepare_sweep(fs);
      std::optional<fault_store> s(open_fault_store(fs));
      REQUIRE(s->latest());
      const auto before = *s->latest();
      fs.d->fail_op(k, err, false);
      const std::error_code ec = put(*s, 9, 2, sweep_new);
      if (ec) {
        CHECK(ec == (err == ENOSPC ? raftkit::errc::no_space : raftkit::errc::io_error));
        CHECK(*s->latest() == before);
        check_content(*s, before, sweep_old);
        CHECK(fs.d->files(".tmp").empty());  // the space is given back at once
      } else {
        CHECK(s->latest()->index == 9);  // only a failed deletion of an old one comes after success
      }
      // a reopen finds what latest() said, and the store goes on: the next commit succeeds
      REQUIRE(s->latest());
      const auto now = *s->latest();
      s.reset();  // closed first: it holds the directory's lock
      s.emplace(open_fault_store(fs));
      CHECK(s->recovery().refused.empty());
      REQUIRE(s->latest());
      CHECK(*s->latest() == now);
      REQUIRE_FALSE(put(*s, 12, 2, content_of(100, 12)));
      CHECK(s->latest()->index == 12);
    }
  }
}

TEST_CASE("file: a sink's write error is sticky and its temporary file is deleted at once") {
  fault_fs fs;
  prepare_sweep(fs);
  auto s = open_fault_store(fs);
  auto w = s.create(9, 2, {});
  const bytes big = content_of(10000, 1);  // above the 4096-byte buffer: written at once
  fs.d->fail_op(0, ENOSPC, false);
  CHECK(w.write(big) == raftkit::errc::no_space);
  CHECK(fs.d->files(".tmp").empty());
  CHECK(w.write(content_of(10, 2)) == raftkit::errc::no_space);
  CHECK(w.commit() == raftkit::errc::no_space);
  CHECK(s.latest()->index == 5);
}

TEST_CASE("file: an old snapshot whose deletion failed is deleted after the next commit") {
  fault_fs fs;
  prepare_sweep(fs);  // snapshots 3 and 5
  auto s = open_fault_store(fs);
  // the mutating calls of a commit of sweep_new: create, writes, header, fsync, rename,
  // sync_dir, then the deletion of snapshot 3: fail exactly that one
  const long long unlink_at = sweep_ops() - 2;
  fs.d->fail_op(unlink_at, EIO, false);
  REQUIRE_FALSE(put(s, 9, 2, sweep_new));
  CHECK(fs.d->files(".snap").size() == 3);
  REQUIRE_FALSE(put(s, 12, 2, content_of(10, 12)));
  CHECK(fs.d->files(".snap") == std::vector<std::string>{"/d/" + raftkit::file::detail::snapshot_file_name(9, 2),
                                                          "/d/" + raftkit::file::detail::snapshot_file_name(12, 2)});
}

}  // TEST_SUITE
