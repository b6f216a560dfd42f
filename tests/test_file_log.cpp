#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raftkit/detail/crc32c.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/memory/log_store.hpp"

namespace {

namespace fsys = std::filesystem;
using raftkit::entry;
using raftkit::index_t;
using raftkit::term_t;

/// A fresh directory under /tmp, removed with everything in it at scope exit.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/raftkit-file-log-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fsys::remove_all(path, ec);
  }
  std::string log() const { return path + "/log"; }
};

/// The payload of entry `i` in term `t`: derived from both, so any entry read back is checkable.
raftkit::shared_bytes payload_for(index_t i, term_t t) {
  std::size_t n = (i * 2654435761u >> 5) % 300;
  auto b = raftkit::shared_bytes::allocate(n);
  for (std::size_t k = 0; k < n; ++k) b.mutable_data()[k] = std::byte(static_cast<unsigned char>(i * 31 + t * 7 + k));
  return b;
}
entry make_entry(index_t i, term_t t) { return entry{t, i, raftkit::entry_type::normal, payload_for(i, t)}; }
bool entry_ok(const entry& e) { return e.payload == payload_for(e.index, e.term); }

template <class Store>
void append_range(Store& s, index_t from, index_t to, term_t t) {
  std::vector<entry> es;
  for (index_t i = from; i <= to; ++i) es.push_back(make_entry(i, t));
  s.append(es);
}

std::vector<std::string> segment_files(const std::string& dir) {
  std::vector<std::string> v;
  for (auto& de : fsys::directory_iterator(dir))
    if (de.path().extension() == ".seg") v.push_back(de.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

void flip_byte(const std::string& file, std::uint64_t off) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(static_cast<std::streamoff>(off));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x10);
  f.seekp(static_cast<std::streamoff>(off));
  f.write(&c, 1);
}

void write_bytes(const std::string& file, std::uint64_t off, const std::string& bytes) {
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

/// Offset just past the record of entry `upto` in a segment holding entries from `first`
/// (made with payload_for), i.e. where the next record starts.
std::uint64_t offset_after(index_t first, index_t upto, term_t t) {
  std::uint64_t off = raftkit::file::detail::segment_header_size;
  for (index_t i = first; i <= upto; ++i) off += raftkit::file::detail::record_size(payload_for(i, t).size());
  return off;
}

std::error_code open_error(const std::string& dir, std::string* what = nullptr) {
  try {
    raftkit::file::log_store s(dir);
  } catch (const std::system_error& e) {
    if (what) *what = e.what();
    return e.code();
  }
  return {};
}

// ------------------------------------------------------------------------------------
// A simulated disk: writes stay "unsynced" until fsync/fdatasync, directory changes until
// sync_dir; power_loss() drops or tears what was not synced. It can also stop the machine
// after N mutating operations (every later call fails), run out of space, or fail syncs.

struct sim_disk {
  struct pending_write {
    std::uint64_t off;
    std::vector<std::byte> data;
  };
  struct inode {
    std::vector<std::byte> durable, current;
    std::vector<pending_write> unsynced;
  };
  std::mutex mu;
  std::map<std::string, std::shared_ptr<inode>> names, durable_names;
  std::map<int, std::shared_ptr<inode>> fds;
  std::set<std::string> locks;
  std::map<int, std::string> lock_fds;
  int next_fd = 100;
  // faults
  long long ops_until_stop = -1;     // mutating calls left before the machine stops
  bool stopped = false;
  long long space_limit = -1;        // total bytes of all files
  long long writes_until_enospc = -1;
  long long syncs_until_eio = -1;
  std::function<void()> before_fdatasync;  // called outside the lock; may block
  std::uint64_t syncs = 0, writes = 0;
  std::condition_variable wrote;  // notified after every pwrite

  /// Blocks until `n` pwrite calls have been made in all.
  void wait_writes(std::uint64_t n) {
    std::unique_lock lk(mu);
    wrote.wait(lk, [&] { return writes >= n; });
  }
  /// Stops the machine now: every later mutating call fails.
  void stop_now() {
    std::lock_guard lk(mu);
    stopped = true;
  }

  // returns false when the machine has stopped (the call must fail without effect)
  bool tick() {
    if (stopped) return false;
    if (ops_until_stop == 0) {
      stopped = true;
      return false;
    }
    if (ops_until_stop > 0) --ops_until_stop;
    return true;
  }
  long long used() const {
    long long n = 0;
    std::set<const inode*> seen;
    for (auto& [_, i] : names)
      if (seen.insert(i.get()).second) n += static_cast<long long>(i->current.size());
    return n;
  }
  static void apply(std::vector<std::byte>& v, std::uint64_t off, const std::byte* d, std::size_t n) {
    if (v.size() < off + n) v.resize(off + n);
    std::memcpy(v.data() + off, d, n);
  }

  /// The process dies, the machine does not: what it wrote stays in the "page cache"
  /// (readable, still unsynced); its open files and locks go away.
  void process_crash() {
    std::lock_guard lk(mu);
    fds.clear();
    locks.clear();
    lock_fds.clear();
    stopped = false;
    ops_until_stop = -1;
  }

  enum class tear { drop, random_blocks };
  /// Power loss: unsynced data is dropped or, with random_blocks, each 512-byte block of an
  /// unsynced write independently lands, is lost, reads as zeros or as garbage.
  void power_loss(tear mode, std::mt19937_64& rng) {
    std::lock_guard lk(mu);
    std::set<inode*> seen;
    for (auto& [_, i] : durable_names) {
      if (!seen.insert(i.get()).second) continue;
      std::vector<std::byte> d = i->durable;
      if (mode == tear::random_blocks) {
        for (auto& w : i->unsynced) {
          std::uint64_t end = w.off + w.data.size();
          for (std::uint64_t b = w.off / 512 * 512; b < end; b += 512) {
            std::uint64_t lo = std::max(b, w.off), hi = std::min(b + 512, end);
            int what = static_cast<int>(rng() % 4);
            if (what == 1) continue;  // lost
            if (d.size() < hi) d.resize(hi);
            for (std::uint64_t o = lo; o < hi; ++o)
              d[o] = what == 0 ? w.data[o - w.off] : what == 2 ? std::byte{0} : std::byte(rng() & 0xFF);
          }
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
    stopped = false;
    ops_until_stop = -1;
  }
};

struct sim_fs {
  std::shared_ptr<sim_disk> d;

  int open(const std::string& p, bool create) {
    std::lock_guard lk(d->mu);
    auto it = d->names.find(p);
    if (create) {
      if (!d->tick()) return -EIO;
      auto ino = std::make_shared<sim_disk::inode>();
      d->names[p] = ino;
      d->fds[d->next_fd] = ino;
      return d->next_fd++;
    }
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
    if (!d->tick()) return -EIO;
    auto& ino = *d->fds.at(fd);
    auto p = static_cast<const std::byte*>(in);
    ++d->writes;
    if (d->writes_until_enospc >= 0 && d->writes_until_enospc-- == 0) {
      n /= 2;  // a partial write, then the disk is full
      sim_disk::apply(ino.current, off, p, n);
      ino.unsynced.push_back({off, std::vector<std::byte>(p, p + n)});
      return -ENOSPC;
    }
    long long grow = static_cast<long long>(off + n) - static_cast<long long>(ino.current.size());
    if (d->space_limit >= 0 && grow > 0 && d->used() + grow > d->space_limit) return -ENOSPC;
    sim_disk::apply(ino.current, off, p, n);
    ino.unsynced.push_back({off, std::vector<std::byte>(p, p + n)});
    d->wrote.notify_all();
    return static_cast<long long>(n);
  }
  long long pread(int fd, void* out, std::size_t n, std::uint64_t off) {
    std::lock_guard lk(d->mu);
    auto& ino = *d->fds.at(fd);
    if (off >= ino.current.size()) return 0;
    std::size_t k = std::min<std::size_t>(n, ino.current.size() - off);
    std::memcpy(out, ino.current.data() + off, k);
    return static_cast<long long>(k);
  }
  int fdatasync(int fd) {
    if (d->before_fdatasync) d->before_fdatasync();
    return fsync(fd);
  }
  int fsync(int fd) {
    std::lock_guard lk(d->mu);
    if (!d->tick()) return -EIO;
    if (d->syncs_until_eio >= 0 && d->syncs_until_eio-- == 0) return -EIO;
    ++d->syncs;
    auto& ino = *d->fds.at(fd);
    ino.durable = ino.current;
    ino.unsynced.clear();
    return 0;
  }
  int allocate(int fd, std::uint64_t len) {
    std::lock_guard lk(d->mu);
    if (!d->tick()) return -EIO;
    auto& ino = *d->fds.at(fd);
    if (len <= ino.current.size()) return 0;
    long long grow = static_cast<long long>(len - ino.current.size());
    if (d->space_limit >= 0 && d->used() + grow > d->space_limit) return -ENOSPC;
    std::uint64_t old = ino.current.size();
    ino.current.resize(len);
    ino.unsynced.push_back({old, std::vector<std::byte>(len - old)});
    return 0;
  }
  long long size(int fd) {
    std::lock_guard lk(d->mu);
    return static_cast<long long>(d->fds.at(fd)->current.size());
  }
  int rename(const std::string& from, const std::string& to) {
    std::lock_guard lk(d->mu);
    if (!d->tick()) return -EIO;
    auto it = d->names.find(from);
    if (it == d->names.end()) return -ENOENT;
    d->names[to] = it->second;
    d->names.erase(from);
    return 0;
  }
  int unlink(const std::string& p) {
    std::lock_guard lk(d->mu);
    if (!d->tick()) return -EIO;
    return d->names.erase(p) ? 0 : -ENOENT;
  }
  int make_dir(const std::string&) { return 0; }
  int sync_dir(const std::string&) {
    std::lock_guard lk(d->mu);
    if (!d->tick()) return -EIO;
    d->durable_names = d->names;
    return 0;
  }
  int list_dir(const std::string& p, std::vector<std::string>& out) {
    std::lock_guard lk(d->mu);
    out.clear();
    for (auto& [n, _] : d->names)
      if (n.size() > p.size() + 1 && n.compare(0, p.size() + 1, p + "/") == 0 &&
          n.find('/', p.size() + 1) == std::string::npos)
        out.push_back(n.substr(p.size() + 1));
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
    auto it = d->lock_fds.find(fd);
    if (it == d->lock_fds.end()) return;
    d->locks.erase(it->second);
    d->lock_fds.erase(it);
  }

  /// Flips one bit of a file's durable and current bytes.
  void flip(const std::string& p, std::uint64_t off) {
    std::lock_guard lk(d->mu);
    auto& ino = *d->names.at(p);
    ino.durable.at(off) ^= std::byte{0x10};
    ino.current.at(off) ^= std::byte{0x10};
  }
  std::vector<std::string> segments() {
    std::vector<std::string> v;
    list_dir("/d", v);
    std::erase_if(v, [](const std::string& n) { return !raftkit::file::detail::ends_with(n, ".seg"); });
    for (auto& n : v) n = "/d/" + n;
    return v;
  }
};
static_assert(raftkit::file::file_system<sim_fs>);

using sim_store = raftkit::file::basic_log_store<sim_fs>;
static_assert(raftkit::log_store<sim_store>);

/// Holds the next fdatasync of a sim_disk once armed, until release(): a test acts while a
/// group's sync is in flight.
struct sync_gate {
  sim_disk& disk;
  std::promise<void> entered_, release_;
  std::shared_future<void> released_ = release_.get_future().share();
  std::atomic<bool> armed_;
  sync_gate(sim_disk& d, bool armed) : disk(d), armed_(armed) {
    disk.before_fdatasync = [this] {
      if (armed_.exchange(false)) {
        entered_.set_value();
        released_.wait();
      }
    };
  }
  ~sync_gate() { disk.before_fdatasync = nullptr; }
  void arm() { armed_ = true; }
  void wait_entered() { entered_.get_future().wait(); }  // the held sync has begun
  void release() { release_.set_value(); }
};

raftkit::file::options small_segments(std::uint64_t size = 4096) {
  raftkit::file::options o;
  o.segment_size = size;
  return o;
}

template <class Store>
void check_log(const Store& s) {
  term_t prev = 0;
  for (index_t i = s.first_index(); i <= s.last_index(); ++i) {
    const entry& e = s.at(i);
    REQUIRE(e.index == i);
    REQUIRE(e.term >= prev);
    REQUIRE(entry_ok(e));
    prev = e.term;
  }
}

// --- the stores the shared compaction and reset rules are checked against ------------------

/// The term the shared rule tests give entry `i`: a new term every 7 entries, so a base
/// term that is off by one entry shows.
term_t term_for(index_t i) { return 1 + i / 7; }

template <class Store>
void append_terms(Store& s, index_t from, index_t to) {
  std::vector<entry> es;
  for (index_t i = from; i <= to; ++i) es.push_back(make_entry(i, term_for(i)));
  s.append(es);
}

/// Holds every fdatasync of a sim_disk while held (installed before the store exists).
struct sync_hold {
  std::mutex m;
  std::condition_variable cv;
  bool holding = false;
  explicit sync_hold(sim_disk& d) {
    d.before_fdatasync = [this] {
      std::unique_lock lk(m);
      cv.wait(lk, [&] { return !holding; });
    };
  }
  void hold() {
    std::lock_guard lk(m);
    holding = true;
  }
  void release() {
    {
      std::lock_guard lk(m);
      holding = false;
    }
    cv.notify_all();
  }
};

/// memory::log_store: durable at once unless held; reopening is a new node over the same
/// store (nothing changes), a crash loses what is not durable.
struct memory_fixture {
  raftkit::memory::log_store store;
  raftkit::memory::log_store& s() { return store; }
  void settle() { store.sync(); }
  void hold() { store.set_write_delay(std::chrono::hours(1)); }
  void release() {
    store.set_write_delay(raftkit::duration{0});
    store.sync();
  }
  void reopen() {}
  void crash() { store.crash(); }
};

/// file::log_store over the simulated disk with small segments (so compaction is
/// segment-granular on disk): reopening closes and recovers it, a crash stops the machine
/// and drops what was not synced.
struct file_fixture {
  std::shared_ptr<sim_disk> disk = std::make_shared<sim_disk>();
  sync_hold gate{*disk};
  std::unique_ptr<sim_store> store = open();
  std::unique_ptr<sim_store> open() { return std::make_unique<sim_store>("/d", small_segments(1024), sim_fs{disk}); }
  sim_store& s() { return *store; }
  void settle() { REQUIRE(!store->flush()); }
  void hold() { gate.hold(); }
  void release() { gate.release(); }
  void reopen() {
    store.reset();
    store = open();
  }
  void crash() {
    disk->stop_now();
    store.reset();
    std::mt19937_64 rng(1);
    disk->power_loss(sim_disk::tear::drop, rng);
    store = open();
  }
};

/// Every entry held has the term and payload the rule tests gave it.
template <class Store>
void check_terms(const Store& s) {
  for (index_t i = s.first_index(); i <= s.last_index(); ++i) {
    const entry& e = s.at(i);
    REQUIRE(e.index == i);
    REQUIRE(e.term == term_for(i));
    REQUIRE(entry_ok(e));
  }
}

}  // namespace

TEST_SUITE("file_log") {

// --- CRC-32C ---------------------------------------------------------------------------

TEST_CASE("crc32c matches the published check values") {
  using raftkit::detail::crc32c;
  using raftkit::detail::crc32c_portable;
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c_portable("123456789", 9) == 0xE3069283u);
  unsigned char b[32];
  std::memset(b, 0, 32);
  CHECK(crc32c(b, 32) == 0x8A9136AAu);
  CHECK(crc32c_portable(b, 32) == 0x8A9136AAu);
  std::memset(b, 0xFF, 32);
  CHECK(crc32c(b, 32) == 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<unsigned char>(i);
  CHECK(crc32c(b, 32) == 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) b[i] = static_cast<unsigned char>(31 - i);
  CHECK(crc32c(b, 32) == 0x113FDB5Cu);
  CHECK(crc32c(b, 0) == 0u);
}

TEST_CASE("crc32c hardware and table paths agree at every length and alignment, and extend") {
  std::mt19937_64 rng(7);
  std::vector<unsigned char> v(1100);
  for (auto& c : v) c = static_cast<unsigned char>(rng());
  for (std::size_t a = 0; a < 8; ++a)
    for (std::size_t n = 0; n + a < 1100; n += 1 + n / 8) {
      auto hw = raftkit::detail::crc32c(v.data() + a, n);
      REQUIRE(hw == raftkit::detail::crc32c_portable(v.data() + a, n));
      std::size_t cut = n / 3;
      REQUIRE(raftkit::detail::crc32c_extend(raftkit::detail::crc32c(v.data() + a, cut), v.data() + a + cut, n - cut) == hw);
      REQUIRE(raftkit::detail::crc32c_concat(v.data() + a, cut, v.data() + a + cut, n - cut) == hw);
    }
}

// --- records and segments --------------------------------------------------------------

TEST_CASE("a record round-trips and any flipped bit in it fails verification") {
  namespace d = raftkit::file::detail;
  auto payload = raftkit::shared_bytes::copy_of(std::string_view("hello, raft"));
  std::vector<std::byte> buf(d::record_size(payload.size()));
  d::encode_record(buf.data(), 7, 42, 1, 99, payload.bytes());
  d::record_header h;
  REQUIRE(d::record_valid(buf.data(), buf.size(), h));
  CHECK(h.flags == 0);
  d::mark_group_end(buf.data());
  REQUIRE(d::record_valid(buf.data(), buf.size(), h));
  CHECK(h.term == 7);
  CHECK(h.index == 42);
  CHECK(h.type == 1);
  CHECK(h.seq == 99);
  CHECK(h.flags == d::flag_group_end);
  CHECK(h.len == payload.size());
  CHECK(buf.size() % 8 == 0);
  // a record cut short is not valid either
  CHECK_FALSE(d::record_valid(buf.data(), buf.size() - 8, h));
  for (std::size_t byte = 0; byte < d::record_header_size + payload.size(); ++byte)
    for (int bit = 0; bit < 8; ++bit) {
      auto copy = buf;
      copy[byte] ^= std::byte(1u << bit);
      d::record_header x;
      REQUIRE_FALSE(d::record_valid(copy.data(), copy.size(), x));
    }
  std::vector<std::byte> zeros(64);
  CHECK_FALSE(d::record_valid(zeros.data(), zeros.size(), h));
}

TEST_CASE("segment names are 16 hex digits and parse back; other names do not") {
  namespace d = raftkit::file::detail;
  CHECK(d::segment_name(0x1a2b) == "0000000000001a2b.seg");
  CHECK(d::parse_segment_name(d::segment_name(0xdeadbeef12345678)) == 0xdeadbeef12345678u);
  CHECK_FALSE(d::parse_segment_name("000000000000001.seg"));
  CHECK_FALSE(d::parse_segment_name("000000000000000g.seg"));
  CHECK_FALSE(d::parse_segment_name("0000000000000001.log"));
}

// --- the store over real files -----------------------------------------------------------

TEST_CASE("appended entries are readable at once, share their payload, and become durable in order") {
  temp_dir t;
  std::vector<index_t> seen;  // outlives the store: the handler runs on the store's sync thread
  std::mutex m;
  {
    raftkit::file::log_store s(t.log());
    CHECK(s.first_index() == 1);
    CHECK(s.last_index() == 0);
    CHECK(s.term_at(0) == 0);
    s.set_durable_handler([&](index_t i) {
      std::lock_guard lk(m);
      seen.push_back(i);
    });
    std::vector<entry> es;
    for (index_t i = 1; i <= 100; ++i) es.push_back(make_entry(i, 3));
    s.append(es);
    CHECK(s.last_index() == 100);
    CHECK(s.term_at(50) == 3);
    CHECK(s.term_at(101) == 0);
    CHECK(s.at(77) == es[76]);
    // the store keeps the appended buffer: no copy on append or on read
    CHECK(s.at(77).payload.data() == es[76].payload.data());
    CHECK(s.durable_index() <= 100);
    CHECK(!s.wait_durable(100));
    CHECK(s.durable_index() == 100);
    CHECK(!s.error());
  }
  REQUIRE(!seen.empty());
  CHECK(seen.back() == 100);
  CHECK(std::is_sorted(seen.begin(), seen.end()));
}

TEST_CASE("a reopened store holds every entry, the hard state, and continues appending") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log());
    append_range(s, 1, 500, 1);
    append_range(s, 501, 700, 2);
    s.save_hard_state({2, 5});
  }
  {
    raftkit::file::log_store s(t.log());
    CHECK_FALSE(s.recovery().tail_cut);
    CHECK(s.last_index() == 700);
    CHECK(s.durable_index() == 700);
    CHECK(s.load_hard_state() == raftkit::hard_state{2, 5});
    check_log(s);
    append_range(s, 701, 710, 2);
  }
  raftkit::file::log_store s(t.log());
  CHECK(s.last_index() == 710);
  check_log(s);
}

TEST_CASE("segments roll at the configured size and all of them are read back") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log(), small_segments(4096));
    append_range(s, 1, 300, 1);
    // an entry larger than a segment gets a segment of its own size
    entry big{1, 301, raftkit::entry_type::normal, raftkit::shared_bytes::allocate(10000)};
    s.append(std::span<const entry>(&big, 1));
    append_range(s, 302, 310, 1);
    CHECK(!s.flush());
  }
  auto segs = segment_files(t.log());
  CHECK(segs.size() > 5);
  for (auto& f : segs) CHECK(fsys::file_size(f) >= 4096);
  raftkit::file::log_store s(t.log(), small_segments(4096));
  CHECK(s.recovery().segments == segs.size());
  CHECK(s.last_index() == 310);
  CHECK(s.at(301).payload.size() == 10000);
  for (index_t i = 1; i <= 310; ++i)
    if (i != 301) REQUIRE(entry_ok(s.at(i)));
}

TEST_CASE("a torn record at the tail of the newest segment is cut off, reported and zeroed") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log());
    append_range(s, 1, 10, 1);
  }
  auto seg = segment_files(t.log()).at(0);
  const auto off = offset_after(1, 10, 1);
  // the first 20 bytes of a record: a write torn inside the header
  write_bytes(seg, off, std::string("\x30\x00\x00\x00\x11\x22\x33\x44\x01\x00\x00\x00\x00\x00\x00\x00\x0b\x00\x00\x00", 20));
  {
    raftkit::file::log_store s(t.log());
    CHECK(s.last_index() == 10);
    check_log(s);
    CHECK(s.recovery().tail_cut);
    CHECK(s.recovery().tail_offset == off);
    CHECK(s.recovery().tail_file == fsys::path(seg).filename().string());
    append_range(s, 11, 12, 1);
  }
  raftkit::file::log_store s(t.log());
  CHECK_FALSE(s.recovery().tail_cut);  // the cut was zeroed; new records followed
  CHECK(s.last_index() == 12);
  check_log(s);
}

TEST_CASE("a zero-filled record followed by garbage at the tail is cut; a plain zero tail is not reported") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log());
    append_range(s, 1, 20, 1);
  }
  {
    raftkit::file::log_store s(t.log());
    CHECK_FALSE(s.recovery().tail_cut);
  }
  auto seg = segment_files(t.log()).at(0);
  // the sector holding entry 16's header was lost (zeros) but later bytes landed
  const auto off = offset_after(1, 15, 1);
  write_bytes(seg, off, std::string(32, '\0'));
  raftkit::file::log_store s(t.log());
  CHECK(s.last_index() == 15);
  CHECK(s.recovery().tail_cut);
  CHECK(s.recovery().tail_offset == off);
  check_log(s);
}

TEST_CASE("a flipped bit in an older segment refuses to open, naming the file and offset") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log(), small_segments(4096));
    append_range(s, 1, 200, 1);
  }
  auto segs = segment_files(t.log());
  REQUIRE(segs.size() >= 3);
  const auto off = offset_after(1, 3, 1);  // inside entry 4's record in the first segment
  flip_byte(segs[0], off + 20);
  std::string what;
  CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
  CHECK(what.find(fsys::path(segs[0]).filename().string()) != std::string::npos);
  CHECK(what.find("offset " + std::to_string(off)) != std::string::npos);
  flip_byte(segs[0], off + 20);  // repaired by hand: opens again, nothing was cut
  raftkit::file::log_store s(t.log(), small_segments(4096));
  CHECK(s.last_index() == 200);
}

TEST_CASE("a flipped bit in the newest segment followed by later synced groups is refused, not cut") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log());
    for (index_t i = 1; i <= 30; i += 10) {  // three separate sync groups
      append_range(s, i, i + 9, 1);
      CHECK(!s.wait_durable(i + 9));
    }
  }
  auto seg = segment_files(t.log()).at(0);
  const auto off = offset_after(1, 4, 1);
  flip_byte(seg, off + 20);
  std::string what;
  CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
  CHECK(what.find("offset " + std::to_string(off)) != std::string::npos);
}

TEST_CASE("foreign or unreadable files in the directory are refused with a clear error") {
  temp_dir t;
  { raftkit::file::log_store s(t.log()); append_range(s, 1, 3, 1); }
  auto seg = segment_files(t.log()).at(0);
  std::string what;
  SUBCASE("bad magic") {
    write_bytes(seg, 0, "NOTALOG!");
    CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
    CHECK(what.find("bad magic") != std::string::npos);
  }
  SUBCASE("unknown format version") {
    write_bytes(seg, 8, std::string("\x09\x00\x00\x00", 4));
    CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
    CHECK(what.find("unsupported format version 9") != std::string::npos);
  }
  SUBCASE("a segment-like name that is not one") {
    write_bytes(t.log() + "/notes.seg", 0, "hello");
    CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
    CHECK(what.find("notes.seg") != std::string::npos);
  }
  SUBCASE("a file too short to hold a header") {
    write_bytes(t.log() + "/00000000000000ff.seg", 0, "RKF");
    CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
  }
  SUBCASE("a damaged hard state file") {
    { raftkit::file::log_store s(t.log()); s.save_hard_state({4, 2}); }
    flip_byte(t.log() + "/hard_state", 17);
    CHECK(open_error(t.log(), &what) == raftkit::errc::corrupt_log);
    CHECK(what.find("hard_state") != std::string::npos);
  }
}

TEST_CASE("a directory held by another store is refused with locked, and free after it closes") {
  temp_dir t;
  {
    raftkit::file::log_store a(t.log());
    CHECK(open_error(t.log()) == raftkit::errc::locked);
  }
  CHECK(!open_error(t.log()));
}

TEST_CASE("a directory held by another process is refused with locked") {
  temp_dir t;
  { raftkit::file::log_store s(t.log()); }
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int fd = ::open((t.log() + "/LOCK").c_str(), O_RDWR);
    ::flock(fd, LOCK_EX);
    char c = 1;
    if (::write(ready[1], &c, 1) != 1) ::_exit(2);
    ::pause();
    ::_exit(0);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  CHECK(open_error(t.log()) == raftkit::errc::locked);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(!open_error(t.log()));
}

TEST_CASE("truncate_after lowers durable_index at once and the removal survives reopening") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log(), small_segments(4096));
    append_range(s, 1, 100, 1);
    CHECK(!s.wait_durable(100));
    s.truncate_after(60);
    CHECK(s.last_index() == 60);
    CHECK(s.durable_index() <= 60);
    append_range(s, 61, 80, 2);
    CHECK(!s.wait_durable(80));
    s.truncate_after(70);  // inside what was just written
    CHECK(!s.flush());
  }
  {
    raftkit::file::log_store s(t.log(), small_segments(4096));
    CHECK(s.last_index() == 70);
    CHECK(s.term_at(60) == 1);
    CHECK(s.term_at(61) == 2);
    check_log(s);
    s.truncate_after(5);  // into the first segment, across many
    CHECK(!s.flush());
  }
  raftkit::file::log_store s(t.log(), small_segments(4096));
  CHECK(s.last_index() == 5);
  check_log(s);
}

TEST_CASE("a truncation while a group's fdatasync is in flight caps the durability that sync reports") {
  auto disk = std::make_shared<sim_disk>();
  sync_gate gate(*disk, true);
  std::vector<index_t> seen;
  std::mutex m;
  {
    sim_store s("/d", {}, sim_fs{disk});
    s.set_durable_handler([&](index_t i) {
      std::lock_guard lk(m);
      seen.push_back(i);
    });
    append_range(s, 1, 100, 1);
    gate.wait_entered();  // 1..100 are written; their fdatasync is held
    s.truncate_after(50);
    CHECK(s.durable_index() == 0);
    gate.release();
    CHECK(!s.flush());
    CHECK(s.durable_index() == 50);
    append_range(s, 51, 60, 2);
    CHECK(!s.wait_durable(60));
  }
  REQUIRE(seen.size() >= 2);
  CHECK(seen.front() == 50);  // never 100: entries 51..100 were gone before their sync ended
  CHECK(seen.back() == 60);
}

TEST_CASE("truncations and compactions racing the writer: the log reopens exactly as the owner left it") {
  // The writer reads payloads the owner may have dropped meanwhile (they are parked until
  // the writer is past them); the sanitizer build turns a mistake there into a failure.
  temp_dir t;
  std::mt19937_64 rng(11);
  std::vector<entry> model;  // entries first..last as the owner last saw them
  index_t first = 1;
  for (int life = 0; life < 4; ++life) {
    auto opts = small_segments(16 << 10);
    if (life % 2) opts.max_batch_bytes = 2048;  // groups written in parts
    raftkit::file::log_store s(t.log(), opts);
    REQUIRE(s.last_index() == first + model.size() - 1);
    for (index_t i = std::max(first, s.first_index()); i <= s.last_index(); ++i)
      REQUIRE(s.at(i) == model[i - first]);
    term_t term = s.term_at(s.last_index()) + 1;
    for (int step = 0; step < 1500; ++step) {
      auto r = rng() % 20;
      if (r < 14) {
        append_range(s, s.last_index() + 1, s.last_index() + 1 + rng() % 30, term);
      } else if (r < 17 && s.last_index() > s.first_index() + 5) {
        ++term;
        s.truncate_after(s.last_index() - rng() % 5);
      } else if (r < 18 && s.last_index() > s.first_index() + 100) {
        s.compact_before(s.last_index() - 50);
      } else if (r < 19) {
        REQUIRE(!s.wait_durable(s.last_index()));
      }
    }
    REQUIRE(!s.flush());
    REQUIRE(s.durable_index() == s.last_index());
    check_log(s);
    first = s.first_index();
    model.clear();
    for (index_t i = first; i <= s.last_index(); ++i) model.push_back(s.at(i));
  }
}

TEST_CASE("truncating entries not yet written and appending again keeps only the new ones") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log());
    for (int round = 0; round < 50; ++round) {
      append_range(s, s.last_index() + 1, s.last_index() + 10, static_cast<term_t>(round + 1));
      s.truncate_after(s.last_index() - 5);
    }
    CHECK(s.last_index() == 250);
    CHECK(!s.wait_durable(250));
  }
  raftkit::file::log_store s(t.log());
  CHECK(s.last_index() == 250);
  check_log(s);
  CHECK(s.term_at(250) == 50);
}

TEST_CASE("compact_before drops whole segments below the index and keeps the rest") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log(), small_segments(4096));
    append_range(s, 1, 400, 1);
    CHECK(!s.flush());
    auto before = segment_files(t.log()).size();
    s.compact_before(300);
    CHECK(s.first_index() == 300);
    CHECK(s.term_at(299) == 1);
    CHECK(s.at(300).index == 300);
    CHECK(!s.flush());
    auto after = segment_files(t.log()).size();
    CHECK(after < before);
    CHECK(after >= 2);
  }
  raftkit::file::log_store s(t.log(), small_segments(4096));
  CHECK(s.first_index() <= 300);
  CHECK(s.first_index() > 200);
  CHECK(s.last_index() == 400);
  check_log(s);
}

// --- compaction and reset: the rules of raftkit::log_store, checked on both stores ---------

TEST_CASE_TEMPLATE("term_at(first_index() - 1) is 0 on a log never compacted", F, memory_fixture, file_fixture) {
  F f;
  CHECK(f.s().first_index() == 1);
  CHECK(f.s().term_at(0) == 0);
  append_terms(f.s(), 1, 40);
  f.settle();
  f.reopen();
  CHECK(f.s().first_index() == 1);
  CHECK(f.s().term_at(0) == 0);
  CHECK(f.s().term_at(40) == term_for(40));
}

TEST_CASE_TEMPLATE("after compact_before, term_at(first_index() - 1) is the last dropped entry's term, also after a reopen", F, memory_fixture, file_fixture) {
  F f;
  append_terms(f.s(), 1, 300);
  f.settle();
  f.s().compact_before(200);
  CHECK(f.s().first_index() == 200);
  CHECK(f.s().term_at(199) == term_for(199));
  CHECK(f.s().term_at(198) == 0);
  CHECK(f.s().last_index() == 300);
  check_terms(f.s());
  f.reopen();
  // a store may keep more than asked (the file store deletes whole segments only)
  CHECK(f.s().first_index() <= 200);
  CHECK(f.s().first_index() > 1);
  CHECK(f.s().term_at(f.s().first_index() - 1) == term_for(f.s().first_index() - 1));
  CHECK(f.s().last_index() == 300);
  check_terms(f.s());
  append_terms(f.s(), 301, 310);
  f.settle();
  CHECK(f.s().durable_index() == 310);
}

TEST_CASE_TEMPLATE("compact_before never drops an entry that is not yet durable", F, memory_fixture, file_fixture) {
  F f;
  append_terms(f.s(), 1, 50);
  f.settle();
  f.hold();
  append_terms(f.s(), 51, 100);
  REQUIRE(f.s().durable_index() == 50);
  f.s().compact_before(90);
  CHECK(f.s().first_index() == 51);
  CHECK(f.s().term_at(50) == term_for(50));
  check_terms(f.s());
  f.release();
  f.settle();
  f.s().compact_before(90);
  CHECK(f.s().first_index() == 90);
  f.crash();
  CHECK(f.s().last_index() == 100);
  CHECK(f.s().first_index() <= 90);
  CHECK(f.s().term_at(f.s().first_index() - 1) == term_for(f.s().first_index() - 1));
  check_terms(f.s());
}

TEST_CASE_TEMPLATE("compact_before accepts any index: below the first is a no-op, past the end drops what is durable", F, memory_fixture, file_fixture) {
  F f;
  f.s().compact_before(0);
  f.s().compact_before(5);
  CHECK(f.s().first_index() == 1);
  CHECK(f.s().last_index() == 0);
  append_terms(f.s(), 1, 60);
  f.settle();
  f.s().compact_before(30);
  f.s().compact_before(0);
  f.s().compact_before(30);
  f.s().compact_before(10);
  CHECK(f.s().first_index() == 30);
  f.s().compact_before(1000);
  CHECK(f.s().first_index() == 61);
  CHECK(f.s().last_index() == 60);
  CHECK(f.s().term_at(60) == term_for(60));
  append_terms(f.s(), 61, 70);
  f.settle();
  CHECK(f.s().at(61).term == term_for(61));
  f.reopen();
  CHECK(f.s().last_index() == 70);
  CHECK(f.s().first_index() <= 61);
  CHECK(f.s().term_at(f.s().first_index() - 1) == term_for(f.s().first_index() - 1));
  check_terms(f.s());
}

TEST_CASE_TEMPLATE("reset empties the log, which continues after (i, t), also after a reopen", F, memory_fixture, file_fixture) {
  for (index_t i : {index_t{0}, index_t{20}, index_t{80}, index_t{500}}) {  // before, inside, at the end of, past the log
    CAPTURE(i);
    F f;
    append_terms(f.s(), 1, 80);
    f.settle();
    f.s().compact_before(10);
    f.s().reset(i, term_for(i));
    CHECK(f.s().first_index() == i + 1);
    CHECK(f.s().last_index() == i);
    CHECK(f.s().term_at(i) == term_for(i));
    CHECK(f.s().durable_index() <= i);
    f.settle();
    CHECK(f.s().durable_index() == i);
    append_terms(f.s(), i + 1, i + 30);
    f.settle();
    CHECK(f.s().durable_index() == i + 30);
    f.reopen();
    CHECK(f.s().first_index() == i + 1);
    CHECK(f.s().term_at(i) == term_for(i));
    CHECK(f.s().last_index() == i + 30);
    check_terms(f.s());
  }
}

TEST_CASE_TEMPLATE("a reset that is durable survives a crash, with the entries appended after it", F, memory_fixture, file_fixture) {
  F f;
  append_terms(f.s(), 1, 100);
  f.settle();
  f.s().reset(150, term_for(150));
  f.settle();
  f.crash();
  CHECK(f.s().first_index() == 151);
  CHECK(f.s().last_index() == 150);
  CHECK(f.s().term_at(150) == term_for(150));
  append_terms(f.s(), 151, 160);
  f.settle();
  f.crash();
  CHECK(f.s().last_index() == 160);
  check_terms(f.s());
}

TEST_CASE_TEMPLATE("durable_index() drops on truncation at once and rises again for what is appended after it", F, memory_fixture, file_fixture) {
  F f;
  append_terms(f.s(), 1, 100);
  f.settle();
  REQUIRE(f.s().durable_index() == 100);
  f.s().truncate_after(60);
  CHECK(f.s().durable_index() <= 60);
  CHECK(f.s().last_index() == 60);
  append_terms(f.s(), 61, 70);
  f.settle();
  CHECK(f.s().durable_index() == 70);
}

TEST_CASE_TEMPLATE("term_at is 0 outside first_index() - 1 .. last_index()", F, memory_fixture, file_fixture) {
  F f;
  append_terms(f.s(), 1, 50);
  f.settle();
  f.s().compact_before(20);
  CHECK(f.s().term_at(18) == 0);
  CHECK(f.s().term_at(19) == term_for(19));
  CHECK(f.s().term_at(50) == term_for(50));
  CHECK(f.s().term_at(51) == 0);
  f.s().reset(70, 9);
  CHECK(f.s().term_at(69) == 0);
  CHECK(f.s().term_at(70) == 9);
  CHECK(f.s().term_at(71) == 0);
}

// --- compaction and reset on the file store: a crash at any moment ---------------------

namespace {
int env_or(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}
}  // namespace

TEST_CASE("a crash at any moment of a compaction reopens a contiguous log with the right base term") {
  // The machine stops after `stop` more file operations (during the compaction's removals
  // or the appends behind it), unsynced writes are dropped or torn, and the log reopens.
  const int seeds = env_or("RAFTKIT_COMPACT_SEEDS", 3);
  for (int seed = 1; seed <= seeds; ++seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    bool completed = false;
    for (long long stop = 0; !completed; ++stop) {
      CAPTURE(seed);
      CAPTURE(stop);
      auto disk = std::make_shared<sim_disk>();
      const index_t upto = 80 + rng() % 110;
      {
        sim_store s("/d", small_segments(1024), sim_fs{disk});
        append_terms(s, 1, 200);
        REQUIRE(!s.flush());
        s.compact_before(50);  // the oldest segment's header is then not index 1's
        REQUIRE(!s.flush());
        disk->ops_until_stop = stop;
        s.compact_before(upto);
        append_terms(s, 201, 220);
        completed = !s.flush();
      }
      disk->power_loss(seed % 2 ? sim_disk::tear::random_blocks : sim_disk::tear::drop, rng);
      sim_store s("/d", small_segments(1024), sim_fs{disk});
      REQUIRE(s.first_index() <= upto);
      REQUIRE(s.first_index() > 1);
      REQUIRE(s.term_at(s.first_index() - 1) == term_for(s.first_index() - 1));
      REQUIRE(s.last_index() >= 200);
      if (completed) CHECK(s.last_index() == 220);
      check_terms(s);
    }
  }
}

TEST_CASE("a crash at any moment of a reset reopens the old log or the reset one, never a mix") {
  constexpr term_t reset_term = 1000;  // entries of the reset log have it, the old log's never
  const int seeds = env_or("RAFTKIT_COMPACT_SEEDS", 3);
  for (int seed = 1; seed <= seeds; ++seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    for (index_t i : {index_t{30}, index_t{120}, index_t{200}, index_t{260}}) {  // below first, inside, at the end, past
      bool completed = false;
      for (long long stop = 0; !completed; ++stop) {
        CAPTURE(seed);
        CAPTURE(i);
        CAPTURE(stop);
        auto disk = std::make_shared<sim_disk>();
        index_t reported = 0;
        {
          sim_store s("/d", small_segments(1024), sim_fs{disk});
          append_terms(s, 1, 200);
          REQUIRE(!s.flush());
          s.compact_before(50);
          REQUIRE(!s.flush());
          disk->ops_until_stop = stop;
          s.reset(i, reset_term);
          std::vector<entry> es;
          for (index_t k = i + 1; k <= i + 20; ++k) es.push_back(make_entry(k, reset_term));
          s.append(es);
          completed = !s.flush();
          reported = s.durable_index();
        }
        disk->power_loss(seed % 2 ? sim_disk::tear::random_blocks : sim_disk::tear::drop, rng);
        sim_store s("/d", small_segments(1024), sim_fs{disk});
        if (s.first_index() == i + 1 && s.term_at(i) == reset_term) {  // the reset log
          for (index_t k = s.first_index(); k <= s.last_index(); ++k) {
            REQUIRE(s.at(k).term == reset_term);
            REQUIRE(entry_ok(s.at(k)));
          }
          if (completed) CHECK(s.last_index() == i + 20);
        } else {  // the old log, whole
          REQUIRE(!completed);
          REQUIRE(s.first_index() <= 50);
          REQUIRE(s.term_at(s.first_index() - 1) == term_for(s.first_index() - 1));
          REQUIRE(s.last_index() == 200);
          check_terms(s);
        }
        if (reported > i) CHECK(s.last_index() >= reported);  // entries after the reset were durable
      }
    }
  }
}

// --- bounded memory: a tail of payloads in memory, older entries read back ---------------

namespace {
std::size_t cost_of(const entry& e) { return raftkit::file::detail::entry_index::cost(e); }
}  // namespace

TEST_CASE("the store keeps a bounded tail of payloads while far more is appended, and every entry reads back as written") {
  temp_dir t;
  auto o = small_segments(16 << 10);
  o.max_cached_bytes = 32 << 10;
  o.read_ahead_bytes = 4096;
  std::vector<entry> model;  // entry i at model[i - 1]
  std::size_t appended = 0, peak = 0;
  std::mt19937_64 rng(3);
  term_t term = 1;
  {
    raftkit::file::log_store s(t.log(), o);
    for (int round = 1; round <= 500; ++round) {
      const index_t from = s.last_index() + 1;
      std::vector<entry> batch;
      std::size_t batch_cost = 0;
      for (index_t i = from; i < from + 10; ++i) {
        batch.push_back(make_entry(i, term));
        batch_cost += cost_of(batch.back());
        appended += batch.back().payload.size();
      }
      s.append(batch);
      model.resize(from - 1);
      model.insert(model.end(), batch.begin(), batch.end());
      // everything before this batch was durable, so only the batch may be held beyond the bound
      REQUIRE(s.memory().cached_bytes <= o.max_cached_bytes + batch_cost);
      peak = std::max(peak, s.memory().cached_bytes);
      REQUIRE(!s.wait_durable(s.last_index()));
      if (round % 37 == 0) {  // a conflicting suffix, partly read back from disk already
        ++term;
        s.truncate_after(s.last_index() - rng() % 25);
        model.resize(s.last_index());
      }
      if (round % 50 == 0)
        for (int k = 0; k < 30; ++k) {
          const index_t i = s.first_index() + rng() % (s.last_index() - s.first_index() + 1);
          REQUIRE(s.at(i) == model[i - 1]);
        }
    }
    REQUIRE(!s.error());
    CHECK(appended > 20 * o.max_cached_bytes);
    CHECK(segment_files(t.log()).size() > 20);
    for (index_t i = s.first_index(); i <= s.last_index(); ++i) REQUIRE(s.at(i) == model[i - 1]);
    const auto m = s.memory();
    const std::size_t n = s.last_index();
    MESSAGE("appended " << appended << " payload bytes; cache peak " << peak << " bytes (bound " << o.max_cached_bytes
                        << "); index " << m.index_bytes << " bytes for " << n << " entries; read buffers "
                        << m.read_buffer_bytes << " bytes");
    CHECK(m.index_bytes <= 16 * n + 1024);  // 8 bytes an entry, plus partly filled deque blocks
    CHECK(m.read_buffer_bytes <= 4 * 2 * o.read_ahead_bytes);
  }
  raftkit::file::log_store s(t.log(), o);
  CHECK(s.memory().cached_bytes == 0);  // a reopened store holds no payload
  REQUIRE(s.last_index() == model.size());
  for (index_t i = s.first_index(); i <= s.last_index(); ++i) REQUIRE(s.at(i) == model[i - 1]);
  CHECK(s.memory().cached_bytes == 0);  // reading back does not fill the cache
  CHECK(!s.error());
}

TEST_CASE("entries not yet durable stay in memory whatever the bound, and read back once evicted") {
  // Their records may not be written yet, and the writer reads their payloads in place.
  auto disk = std::make_shared<sim_disk>();
  sync_hold gate(*disk);
  auto o = small_segments(4096);
  o.max_cached_bytes = 0;
  sim_store s("/d", o, sim_fs{disk});
  append_range(s, 1, 10, 1);
  REQUIRE(!s.wait_durable(10));
  gate.hold();
  for (index_t from = 11; from <= 201; from += 10) append_range(s, from, from + 9, 1);  // the store holds the only reference
  REQUIRE(s.durable_index() == 10);
  CHECK(s.memory().cached_entries == 200);
  for (index_t i = 1; i <= 210; ++i) REQUIRE(s.at(i) == make_entry(i, 1));
  gate.release();
  REQUIRE(!s.flush());
  append_range(s, 211, 211, 1);  // trims what is now durable
  CHECK(s.memory().cached_entries <= 1);
  for (index_t i = 1; i <= 211; ++i) REQUIRE(s.at(i) == make_entry(i, 1));
  CHECK(!s.error());
}

TEST_CASE("entries read back from the segment being written verify, though a read-ahead window saw it unwritten") {
  temp_dir t;
  auto o = small_segments(1 << 20);  // one segment, appended to while it is read
  o.max_cached_bytes = 0;             // every durable entry is read back
  o.read_ahead_bytes = 64 << 10;
  raftkit::file::log_store s(t.log(), o);
  append_range(s, 1, 1, 1);
  REQUIRE(!s.wait_durable(1));
  for (index_t i = 2; i <= 300; ++i) {
    append_range(s, i, i, 1);  // evicts entry i - 1, durable
    REQUIRE(s.at(i - 1) == make_entry(i - 1, 1));  // its window holds what follows: unwritten then
    REQUIRE(!s.wait_durable(i));
  }
  CHECK(!s.error());
}

TEST_CASE("a record that no longer verifies when read back fails the store with corrupt_log, naming file and offset") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log());
    append_range(s, 1, 100, 1);
  }
  raftkit::file::log_store s(t.log());  // reopened: every entry is read back from the file
  REQUIRE(s.memory().cached_bytes == 0);
  index_t bad = 50;
  while (payload_for(bad, 1).empty()) ++bad;
  const auto off = offset_after(1, bad - 1, 1);
  const auto seg = segment_files(t.log()).at(0);
  flip_byte(seg, off + raftkit::file::detail::record_header_size);  // the payload's first byte
  CHECK(s.at(bad - 1) == make_entry(bad - 1, 1));
  const entry e = s.at(bad);
  CHECK(e.index == bad);
  CHECK(e.term == 1);
  CHECK(e.type == raftkit::entry_type::noop);
  CHECK(e.payload.empty());
  CHECK(s.error() == raftkit::errc::corrupt_log);
  CHECK(s.error_message().find(fsys::path(seg).filename().string()) != std::string::npos);
  CHECK(s.error_message().find("offset " + std::to_string(off)) != std::string::npos);
  MESSAGE(s.error_message());
}

TEST_CASE("a segment that cannot be read back fails the store with io_error, naming the file") {
  temp_dir t;
  {
    raftkit::file::log_store s(t.log(), small_segments(4096));
    append_range(s, 1, 100, 1);
  }
  raftkit::file::log_store s(t.log(), small_segments(4096));
  const auto seg = segment_files(t.log()).at(0);
  fsys::remove(seg);  // under the store's feet
  const entry e = s.at(1);
  CHECK(e.payload.empty());
  CHECK(s.error() == raftkit::errc::io_error);
  CHECK(s.error_message().find(fsys::path(seg).filename().string()) != std::string::npos);
  MESSAGE(s.error_message());
}

// --- the data directory and its parents ----------------------------------------------------

namespace {
/// posix_fs that records the directories it syncs.
struct recording_fs : raftkit::file::posix_fs {
  std::shared_ptr<std::vector<std::string>> synced = std::make_shared<std::vector<std::string>>();
  int sync_dir(const std::string& p) {
    synced->push_back(p);
    return posix_fs::sync_dir(p);
  }
};
static_assert(raftkit::file::file_system<recording_fs>);
bool contains(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }
}  // namespace

TEST_CASE("missing parents of the data directory are created, each synced into its parent") {
  temp_dir t;
  const std::string dir = t.path + "/a/b/log";
  recording_fs fs;
  auto synced = fs.synced;
  {
    raftkit::file::basic_log_store<recording_fs> s(dir, {}, fs);
    append_range(s, 1, 5, 1);
    CHECK(!s.flush());
  }
  CHECK(fsys::is_directory(dir));
  CHECK(contains(*synced, t.path));         // holds a
  CHECK(contains(*synced, t.path + "/a"));  // holds b
  CHECK(contains(*synced, t.path + "/a/b"));  // holds log
  synced->clear();
  raftkit::file::basic_log_store<recording_fs> s(dir, {}, fs);  // nothing to create now
  CHECK(s.last_index() == 5);
  CHECK(!contains(*synced, t.path));
  CHECK(!contains(*synced, t.path + "/a"));
}

TEST_CASE("with create_parents off, a missing parent is refused with an error naming it; the directory itself is still created") {
  temp_dir t;
  raftkit::file::options o;
  o.create_parents = false;
  try {
    raftkit::file::log_store s(t.path + "/missing/log", o);
    FAIL("opened under a missing parent");
  } catch (const std::system_error& e) {
    MESSAGE(std::string(e.what()));
    CHECK(e.code() == raftkit::errc::io_error);
    CHECK(std::string(e.what()).find(t.path + "/missing does not exist") != std::string::npos);
  }
  CHECK(!fsys::exists(t.path + "/missing"));
  raftkit::file::log_store s(t.path + "/log", o);
  CHECK(fsys::is_directory(t.path + "/log"));
}

TEST_CASE("hard state round-trips and a replacement is atomic at every crash point") {
  auto disk = std::make_shared<sim_disk>();
  {
    sim_store s("/d", {}, sim_fs{disk});
    CHECK(s.load_hard_state() == raftkit::hard_state{});
    s.save_hard_state({3, 1});
    CHECK(s.load_hard_state() == raftkit::hard_state{3, 1});
  }
  std::mt19937_64 rng(1);
  for (long long stop = 0; stop < 8; ++stop) {
    bool completed;
    {
      sim_store s("/d", {}, sim_fs{disk});
      REQUIRE(s.load_hard_state().term >= 3);
      auto old = s.load_hard_state();
      disk->ops_until_stop = stop;
      s.save_hard_state({old.term + 1, 2});
      completed = !s.error();
      CHECK(completed == (s.load_hard_state().term == old.term + 1));
    }
    disk->power_loss(sim_disk::tear::random_blocks, rng);
    sim_store s("/d", {}, sim_fs{disk});
    auto hs = s.load_hard_state();
    if (completed) CHECK(hs.vote == 2);
    CHECK((hs.vote == 1 || hs.vote == 2));
  }
}

TEST_CASE("entries a reopened store reads from the page cache are synced before it reports them durable") {
  // Hardening finding 3: a process crash leaves written but unsynced records in the page
  // cache; a store that reopens and counts them durable lets its node acknowledge them,
  // and a power loss afterwards takes them away.
  auto disk = std::make_shared<sim_disk>();
  sync_gate gate(*disk, false);
  {
    sim_store s("/d", {}, sim_fs{disk});
    append_range(s, 1, 10, 1);
    REQUIRE(!s.wait_durable(10));
    gate.arm();
    append_range(s, 11, 50, 1);
    gate.wait_entered();  // 11..50 are written, their fdatasync is held
    disk->stop_now();     // the process dies now: no later call of it has an effect
    gate.release();
  }
  disk->process_crash();
  index_t reported;
  {
    sim_store s("/d", {}, sim_fs{disk});
    REQUIRE(s.last_index() == 50);
    reported = s.durable_index();
    disk->stop_now();
  }
  std::mt19937_64 rng(1);
  disk->power_loss(sim_disk::tear::drop, rng);
  sim_store s("/d", {}, sim_fs{disk});
  MESSAGE("reported durable after the process crash: " << reported << ", held after the power loss: " << s.last_index());
  CHECK(s.last_index() >= reported);
  check_log(s);
}

TEST_CASE("a hard state a reopened store reads from the page cache is synced before it is used") {
  // The replacement's rename reached the page cache, the directory sync did not: the
  // reopened store must not act on (and a node must not vote by) a term it can lose.
  auto disk = std::make_shared<sim_disk>();
  {
    sim_store s("/d", {}, sim_fs{disk});
    s.save_hard_state({3, 1});
    disk->ops_until_stop = 4;  // create, write, fsync, rename; the directory sync fails
    s.save_hard_state({4, 2});
    CHECK(s.error());
  }
  disk->process_crash();
  raftkit::hard_state seen;
  {
    sim_store s("/d", {}, sim_fs{disk});
    seen = s.load_hard_state();
    disk->stop_now();
  }
  std::mt19937_64 rng(1);
  disk->power_loss(sim_disk::tear::drop, rng);
  sim_store s("/d", {}, sim_fs{disk});
  MESSAGE("hard state read after the process crash: term " << seen.term << ", after the power loss: term " << s.load_hard_state().term);
  CHECK(s.load_hard_state() == seen);
}

TEST_CASE("a power loss at any moment keeps every entry that was reported durable") {
  // Random appends, truncations, compactions and resets; the machine stops after a random
  // number of file operations and unsynced writes are dropped or torn in 512-byte blocks.
  const int seeds = std::getenv("RAFTKIT_POWER_SEEDS") ? std::atoi(std::getenv("RAFTKIT_POWER_SEEDS")) : 300;
  for (int seed = 1; seed <= seeds; ++seed) {
    CAPTURE(seed);
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    auto disk = std::make_shared<sim_disk>();
    index_t durable = 0;
    std::vector<entry> model;  // the owner's log at the moment of the crash (from index 1)
    index_t model_first = 1;
    term_t model_base = 0;  // term_at(model_first - 1)
    bool settled = true;    // everything the owner did is on disk (flush succeeded)
    term_t term = 1;
    // Even seeds: tiny groups and slow syncs, so the writer writes groups in parts while
    // the previous group's fdatasync runs (two groups unsynced at the power loss).
    auto opts = small_segments(2048);
    if (seed % 2 == 0) {
      opts.max_batch_bytes = 600;
      disk->before_fdatasync = [] {
        for (int k = 0; k < 200; ++k) std::this_thread::yield();
      };
    }
    for (int life = 0; life < 4; ++life) {
      bool process_crash = false;
      {
        sim_store s("/d", opts, sim_fs{disk});
        REQUIRE(s.last_index() >= durable);
        check_log(s);
        if (s.first_index() > 1) {  // the base term survived (every entry has a term >= 1)
          REQUIRE(s.term_at(s.first_index() - 1) >= 1);
          if (s.last_index() >= s.first_index()) REQUIRE(s.term_at(s.first_index() - 1) <= s.at(s.first_index()).term);
        }
        if (settled && s.first_index() == model_first) REQUIRE(s.term_at(model_first - 1) == model_base);
        for (index_t i = s.first_index(); i <= std::min(durable, s.last_index()); ++i)
          if (i >= model_first) REQUIRE(s.at(i) == model[i - 1]);
        model.resize(s.last_index());
        for (index_t i = s.first_index(); i <= s.last_index(); ++i) model[i - 1] = s.at(i);
        model_first = s.first_index();
        model_base = s.term_at(model_first - 1);
        term = std::max(term, s.term_at(s.last_index()));
        disk->ops_until_stop = static_cast<long long>(rng() % 120);
        for (int step = 0; step < 40 && !s.error(); ++step) {
          auto r = rng() % 11;
          if (r == 10) {  // a snapshot replaces the log, a little before or after its end
            term += 1;
            s.reset(s.last_index() + rng() % 20 - std::min<index_t>(s.last_index(), 10), term);
          } else if (r < 6) {
            append_range(s, s.last_index() + 1, s.last_index() + 1 + rng() % 12, term);
          } else if (r < 8 && s.last_index() > s.first_index()) {
            term += 1;
            s.truncate_after(s.last_index() - rng() % std::min<index_t>(s.last_index() - s.first_index(), 15));
          } else if (r < 9) {
            s.wait_durable(s.last_index());
          } else if (s.last_index() > s.first_index() + 20) {
            s.compact_before(s.last_index() - 20);
          }
          if (rng() % 5 == 0) s.flush();
        }
        // a third of the lives end in a process crash only: the next life reopens with
        // unsynced writes still readable, and a power loss may come a life later
        process_crash = rng() % 3 == 0;
        if (process_crash) disk->stop_now();
        settled = !s.flush();
        durable = s.durable_index();
        model.resize(s.last_index());
        for (index_t i = s.first_index(); i <= s.last_index(); ++i) model[i - 1] = s.at(i);
        model_first = s.first_index();
        model_base = s.term_at(model_first - 1);
      }
      if (process_crash) disk->process_crash();
      else disk->power_loss(rng() % 2 ? sim_disk::tear::random_blocks : sim_disk::tear::drop, rng);
    }
  }
}

namespace {
/// A store with groups of at most 8 KiB, written in parts of 1 KiB: entries 1..10 durable,
/// then 11..20 appended and the fdatasync of the first group of them held, then 21..300
/// appended: the writer writes parts of the next group meanwhile, until that group is full.
/// Returns the number of pwrite calls made while that fdatasync was held.
std::uint64_t write_parts_during_a_sync(std::shared_ptr<sim_disk> disk, bool crash) {
  sync_gate gate(*disk, false);
  auto opts = small_segments(1 << 20);
  opts.max_batch_bytes = 8192;  // parts of 1 KiB
  std::uint64_t parts;
  {
    sim_store s("/d", opts, sim_fs{disk});
    append_range(s, 1, 10, 1);
    REQUIRE(!s.wait_durable(10));
    gate.arm();
    append_range(s, 11, 20, 1);
    gate.wait_entered();  // (some of) 11..20 are written, their fdatasync is held
    std::uint64_t before;
    {
      std::lock_guard lk(disk->mu);
      before = disk->writes;
    }
    append_range(s, 21, 300, 1);
    disk->wait_writes(before + 3);  // parts of the next group are written meanwhile
    {
      std::lock_guard lk(disk->mu);
      parts = disk->writes - before;
    }
    CHECK(s.durable_index() == 10);
    if (crash) disk->stop_now();  // the power fails now: the held sync will not complete
    gate.release();
    if (!crash) {
      CHECK(!s.flush());
      CHECK(s.durable_index() == 300);
      append_range(s, 301, 310, 1);  // groups written once all before them were durable
      REQUIRE(!s.wait_durable(310));
      append_range(s, 311, 320, 1);
      REQUIRE(!s.wait_durable(320));
    }
  }
  return parts;
}
}  // namespace

TEST_CASE("a group written in parts while the previous one syncs: a power loss then keeps what was durable") {
  for (int seed = 1; seed <= 40; ++seed) {
    CAPTURE(seed);
    auto disk = std::make_shared<sim_disk>();
    CHECK(write_parts_during_a_sync(disk, true) >= 3);
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    disk->power_loss(seed % 4 == 0 ? sim_disk::tear::drop : sim_disk::tear::random_blocks, rng);
    // two groups were unsynced (11..20 and the part-written 21..): tearing any of their
    // blocks is a torn tail, never corruption
    sim_store s("/d", {}, sim_fs{disk});
    REQUIRE(s.last_index() >= 10);
    check_log(s);
  }
}

TEST_CASE("a bit flip in a group that later groups prove durable is refused, also after parts were written") {
  auto disk = std::make_shared<sim_disk>();
  REQUIRE(write_parts_during_a_sync(disk, false) >= 3);
  std::mt19937_64 rng(7);
  disk->power_loss(sim_disk::tear::random_blocks, rng);  // nothing unsynced: changes nothing
  {
    sim_store s("/d", {}, sim_fs{disk});
    REQUIRE(s.last_index() == 320);
    check_log(s);
  }
  sim_fs fs{disk};
  auto seg = fs.segments().at(0);
  const auto off = offset_after(1, 14, 1);  // the record of entry 15
  fs.flip(seg, off + 20);
  try {
    sim_store s("/d", {}, sim_fs{disk});
    FAIL("opened a corrupt log");
  } catch (const std::system_error& e) {
    CHECK(e.code() == raftkit::errc::corrupt_log);
    CHECK(std::string(e.what()).find("offset " + std::to_string(off)) != std::string::npos);
  }
}

TEST_CASE("running out of space fails the store with no_space and loses nothing acknowledged") {
  for (int mode = 0; mode < 2; ++mode) {
    CAPTURE(mode);
    auto disk = std::make_shared<sim_disk>();
    index_t durable = 0;
    {
      sim_store s("/d", small_segments(4096), sim_fs{disk});
      append_range(s, 1, 50, 1);
      REQUIRE(!s.wait_durable(50));
      if (mode == 0) disk->space_limit = disk->used() + 3 * 4096;  // a few more segments fit
      else disk->writes_until_enospc = 3;                         // a write fails half done
      for (int k = 0; k < 100 && !s.error(); ++k) {
        append_range(s, s.last_index() + 1, s.last_index() + 10, 1);
        s.wait_durable(s.last_index());
      }
      CHECK(s.error() == raftkit::errc::no_space);
      CHECK(s.error_message().find("No space") != std::string::npos);
      durable = s.durable_index();
      CHECK(durable >= 50);
      // once failed, durability never advances again
      append_range(s, s.last_index() + 1, s.last_index() + 5, 1);
      CHECK(s.wait_durable(s.last_index()) == raftkit::errc::no_space);
      CHECK(s.durable_index() == durable);
    }
    std::mt19937_64 rng(3);
    disk->power_loss(sim_disk::tear::random_blocks, rng);
    disk->space_limit = -1;
    disk->writes_until_enospc = -1;
    sim_store s("/d", small_segments(4096), sim_fs{disk});
    CHECK(s.last_index() >= durable);
    check_log(s);
  }
}

TEST_CASE("a failed fdatasync is fatal: io_error, no durability reported, never retried") {
  auto disk = std::make_shared<sim_disk>();
  sim_store s("/d", {}, sim_fs{disk});
  append_range(s, 1, 10, 1);
  REQUIRE(!s.wait_durable(10));
  disk->syncs_until_eio = 0;
  append_range(s, 11, 20, 1);
  CHECK(s.wait_durable(20) == raftkit::errc::io_error);
  CHECK(s.durable_index() == 10);
  const auto syncs = disk->syncs;
  const auto writes = disk->writes;
  append_range(s, 21, 30, 1);
  CHECK(s.flush() == raftkit::errc::io_error);
  CHECK(s.durable_index() == 10);
  CHECK(disk->syncs == syncs);
  CHECK(disk->writes == writes);
  s.save_hard_state({9, 9});
  CHECK(s.load_hard_state() == raftkit::hard_state{});
}

TEST_CASE("a bit flip in a synced record found after a power loss is refused, not repaired") {
  auto disk = std::make_shared<sim_disk>();
  {
    sim_store s("/d", {}, sim_fs{disk});
    for (index_t i = 1; i <= 40; i += 10) {
      append_range(s, i, i + 9, 1);
      REQUIRE(!s.wait_durable(i + 9));
    }
    append_range(s, 41, 50, 1);  // may be torn
  }
  std::mt19937_64 rng(5);
  disk->power_loss(sim_disk::tear::random_blocks, rng);
  sim_fs fs{disk};
  auto seg = fs.segments().at(0);
  fs.flip(seg, offset_after(1, 12, 1) + 20);
  try {
    sim_store s("/d", {}, sim_fs{disk});
    FAIL("opened a corrupt log");
  } catch (const std::system_error& e) {
    CHECK(e.code() == raftkit::errc::corrupt_log);
    CHECK(std::string(e.what()).find("offset " + std::to_string(offset_after(1, 12, 1))) != std::string::npos);
  }
}

}  // TEST_SUITE("file_log")

// ----------------------------------------------------------------------------------------
// A real crash test: a child process appends and reports each durable index on a pipe; the
// parent SIGKILLs it at a random moment and checks every reported entry survived.

namespace {
/// Reads from `fd` until a full line arrives or EOF; appends it to `line`.
bool read_line(int fd, std::string& buf, std::string& line, std::size_t& bytes) {
  for (;;) {
    auto nl = buf.find('\n');
    if (nl != std::string::npos) {
      line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      return true;
    }
    char tmp[512];
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes += static_cast<std::size_t>(n);
    buf.append(tmp, static_cast<std::size_t>(n));
  }
}
/// What a child process printed and how it ended.
struct child_run {
  int status = 0;
  std::string output;
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  bool killed() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  /// The first line starting with `tag` (e.g. "R "), without it; empty if none.
  std::string line(const std::string& tag) const {
    for (std::size_t at = 0; at < output.size();) {
      const std::size_t nl = std::min(output.find('\n', at), output.size());
      if (output.compare(at, tag.size(), tag) == 0) return output.substr(at + tag.size(), nl - at - tag.size());
      at = nl + 1;
    }
    return {};
  }
};

/// Starts `program args...` with its standard output on a pipe: its pid and the pipe's
/// reading end (the caller's to close).
std::pair<pid_t, int> spawn(const char* program, const std::vector<std::string>& args) {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  std::vector<char*> argv{const_cast<char*>(program)};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::close(p[0]);
    ::close(p[1]);
    ::execv(program, argv.data());
    ::_exit(127);
  }
  ::close(p[1]);
  return {pid, p[0]};
}

/// Runs `program args...` to its end, collecting what it prints.
child_run run_child(const char* program, const std::vector<std::string>& args) {
  const auto [pid, fd] = spawn(program, args);
  child_run r;
  std::string buf, line;
  std::size_t bytes = 0;
  while (read_line(fd, buf, line, bytes)) r.output += line + "\n";
  r.output += buf;
  ::close(fd);
  ::waitpid(pid, &r.status, 0);
  return r;
}
}  // namespace

TEST_SUITE("file_log_crash") {
TEST_CASE("every entry reported durable survives SIGKILL of the writing process") {
  const char* child = std::getenv("RAFTKIT_CRASH_CHILD");
  if (!child) {
    MESSAGE("RAFTKIT_CRASH_CHILD not set: run through `meson test file_log_crash`");
    return;
  }
  const int cycles = std::getenv("RAFTKIT_CRASH_CYCLES") ? std::atoi(std::getenv("RAFTKIT_CRASH_CYCLES")) : 200;
  const std::uint64_t seed = std::getenv("RAFTKIT_CRASH_SEED") ? std::strtoull(std::getenv("RAFTKIT_CRASH_SEED"), nullptr, 10) : 12345;
  std::mt19937_64 rng(seed);
  temp_dir t;
  const std::string dir = t.log();
  index_t reported = 0, first_seen = 1;
  std::uint64_t tails_cut = 0, firsts_rose = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    CAPTURE(cycle);
    const auto [pid, out] = spawn(child, {dir, std::to_string(rng()), std::to_string(reported)});
    // kill after the k-th durable report, or after a random number of bytes
    const bool by_bytes = rng() % 2;
    const std::size_t k = rng() % 8, byte_limit = 10 + rng() % 120;
    std::string buf, line;
    std::size_t bytes = 0, durable_reports = 0;
    bool opened = false;
    std::string child_error;
    while (read_line(out, buf, line, bytes)) {
      if (line.rfind("D ", 0) == 0) {
        reported = std::max<index_t>(reported, std::stoull(line.substr(2)));
        ++durable_reports;
      } else if (line.rfind("R ", 0) == 0) {  // "R <first> <last> <tail cut>": verified
        opened = true;
        tails_cut += line.back() == '1';
        const index_t first = std::stoull(line.substr(2));
        firsts_rose += first > first_seen;  // a compaction or a reset reached the disk
        first_seen = std::max(first_seen, first);
      } else {
        child_error = line;
        break;
      }
      if (opened && (by_bytes ? bytes >= byte_limit : durable_reports >= k)) break;
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(out);
    if (!child_error.empty()) FAIL("child: " << child_error);
    if (!opened)
      FAIL("the child ended before opening the log: "
           << (WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                 : "signal " + std::to_string(WTERMSIG(status))));
    REQUIRE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
  }

  // verify the last crash too
  const child_run v = run_child(child, {dir, "0", std::to_string(reported), "verify"});
  CHECK_MESSAGE(v.exited_ok(), v.output);
  MESSAGE(cycles << " crash cycles, highest durable index reported " << reported << ", torn tails cut " << tails_cut
                 << ", reopened with a higher first index (compaction or reset) " << firsts_rose << " times");
}
TEST_CASE("a process killed at any moment of a compaction reopens to a contiguous log with the right base term") {
  // Real files: the child compacts a log of many small segments (and appends behind the
  // compaction) and SIGKILLs itself just before its k-th file operation, for every k until
  // one run gets through. Each time the log must reopen (the child's `verify` checks every
  // entry, contiguity, term_at(first_index() - 1) and that no entry is lost) with its first
  // index between where it was and the compaction point.
  const char* child = std::getenv("RAFTKIT_CRASH_CHILD");
  if (!child) {
    MESSAGE("RAFTKIT_CRASH_CHILD not set: run through `meson test file_log_crash`");
    return;
  }
  temp_dir t;
  const std::string prepared = t.path + "/prepared";
  const child_run prep = run_child(child, {prepared, "0", "0", "compact-prepare"});
  REQUIRE_MESSAGE(prep.exited_ok(), prep.output);
  index_t compacted = 0, last0 = 0, upto = 0, final_last = 0;
  std::istringstream prep_line(prep.line("P "));
  REQUIRE((prep_line >> compacted >> last0 >> upto >> final_last));
  // reopened, the log starts where its oldest segment does (at or below where it was compacted)
  const child_run before = run_child(child, {prepared, "0", std::to_string(last0), "verify"});
  REQUIRE_MESSAGE(before.exited_ok(), before.output);
  index_t first0 = 0;
  std::istringstream before_line(before.line("R "));
  REQUIRE((before_line >> first0));
  REQUIRE(first0 > 1);
  REQUIRE(first0 <= compacted);
  std::set<index_t> firsts;
  bool completed = false;
  long k = 0;
  for (; !completed; ++k) {
    CAPTURE(k);
    REQUIRE(k < 5000);
    const std::string dir = t.path + "/run";
    fsys::remove_all(dir);
    fsys::copy(prepared, dir, fsys::copy_options::recursive);
    const child_run c = run_child(child, {dir, "0", "0", "compact", std::to_string(k)});
    completed = c.exited_ok() && c.output.find("DONE\n") != std::string::npos;
    REQUIRE_MESSAGE((completed || c.killed()), c.output);
    const child_run v = run_child(child, {dir, "0", std::to_string(last0), "verify"});
    REQUIRE_MESSAGE(v.exited_ok(), v.output);
    index_t first = 0, last = 0;
    std::istringstream r_line(v.line("R "));
    REQUIRE((r_line >> first >> last));
    CHECK(first >= first0);
    CHECK(first <= upto);
    CHECK(last >= last0);
    if (completed) CHECK(last == final_last);
    firsts.insert(first);
  }
  // the kills landed between the removals, not only before or after the whole compaction
  CHECK(firsts.size() >= 3);
  MESSAGE(k << " runs killed at each file operation of a compaction; " << firsts.size()
            << " different first indexes reopened");
}
}  // TEST_SUITE("file_log_crash")
