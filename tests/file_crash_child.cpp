// The writing process of the file log crash tests (tests/test_file_log.cpp, suite
// file_log_crash). Usage: file_crash_child <dir> <seed> <reported> [verify]
//                         file_crash_child <dir> 0 0 compact-prepare
//                         file_crash_child <dir> 0 0 compact <k>
//
// It opens the log in <dir> and first verifies what the previous, killed run left: every
// entry's term and payload are derived from its index, the log is contiguous, the term
// before its first entry (term_at(first_index() - 1), kept across compactions and resets)
// is the one derived from that index, and it reaches at least <reported>, the highest
// durable index the parent saw reported. Then it prints "R <first> <last> <1 if a torn tail
// was cut>" and, unless "verify" was given, appends random batches forever, compacting
// now and then and sometimes resetting the log a little past its end (as installing a
// snapshot does), printing "D <index>" each time durability advances, until the parent
// kills it. Problems are printed as "E <message>" with exit status 1.
//
// `compact-prepare` fills <dir> with a log of compact_entries entries over small segments,
// durable, already compacted once (so its oldest header does not start at index 1), prints
// "P <first> <last> <compaction point> <last after the appends behind it>" and exits. `compact <k>` opens such a log, compacts it to compact_upto (deleting most of its
// segments) and appends more behind it, and SIGKILLs itself just before the k-th file
// operation that changes something (write, sync, allocation, rename, removal, directory
// sync), counted from the compaction on: every k is another moment of the compaction. If
// it gets through (k past the last operation) it prints "DONE" and exits 0.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "raftkit/file/log_store.hpp"

namespace {

using raftkit::entry;
using raftkit::index_t;

raftkit::term_t term_for(index_t i) { return i == 0 ? 0 : 1 + i / 1000; }

raftkit::shared_bytes payload_for(index_t i) {
  std::size_t n = (i * 2654435761u >> 7) % 300;
  auto b = raftkit::shared_bytes::allocate(n);
  for (std::size_t k = 0; k < n; ++k) b.mutable_data()[k] = std::byte(static_cast<unsigned char>(i * 31 + k));
  return b;
}

void say(const std::string& s) {
  std::string line = s + "\n";  // one write per line: lines from two threads never interleave
  if (::write(1, line.data(), line.size()) < 0) std::_Exit(3);
}

[[noreturn]] void die(const std::string& s) {
  say("E " + s);
  std::_Exit(1);
}

/// The real file system, with a process crash (SIGKILL to itself) just before the k-th
/// mutating operation once armed. Called from the store's writer and sync threads.
std::atomic<long> ops_until_kill{-1};  // < 0: not armed

struct killing_fs : raftkit::file::posix_fs {
  static void step() {
    if (ops_until_kill.load() < 0) return;
    if (ops_until_kill.fetch_sub(1) == 0) ::kill(::getpid(), SIGKILL);
  }
  int open(const std::string& p, bool create) {
    if (create) step();
    return posix_fs::open(p, create);
  }
  long long pwrite(int fd, const void* in, std::size_t n, std::uint64_t off) {
    step();
    return posix_fs::pwrite(fd, in, n, off);
  }
  int fdatasync(int fd) {
    step();
    return posix_fs::fdatasync(fd);
  }
  int fsync(int fd) {
    step();
    return posix_fs::fsync(fd);
  }
  int allocate(int fd, std::uint64_t len) {
    step();
    return posix_fs::allocate(fd, len);
  }
  int rename(const std::string& from, const std::string& to) {
    step();
    return posix_fs::rename(from, to);
  }
  int unlink(const std::string& p) {
    step();
    return posix_fs::unlink(p);
  }
  int sync_dir(const std::string& p) {
    step();
    return posix_fs::sync_dir(p);
  }
};

constexpr index_t compact_entries = 1500, compact_first = 300, compact_upto = 1300, compact_more = 50;

raftkit::file::options compact_options() {
  raftkit::file::options opts;
  opts.segment_size = 16 << 10;      // about ninety entries a segment: the compaction deletes a dozen
  opts.max_batch_bytes = 4 << 10;    // several groups in the appends behind it
  opts.max_cached_bytes = 16 << 10;  // most entries are read back from the files
  return opts;
}

void append_upto(raftkit::file::basic_log_store<killing_fs>& s, index_t last) {
  std::vector<entry> batch;
  for (index_t i = s.last_index() + 1; i <= last; ++i) {
    batch.push_back(entry{term_for(i), i, raftkit::entry_type::normal, payload_for(i)});
    if (batch.size() == 50 || i == last) {
      s.append(batch);
      batch.clear();
    }
  }
}

int compaction_mode(const std::string& dir, bool prepare, long k) {
  raftkit::file::basic_log_store<killing_fs> s(dir, compact_options());
  if (prepare) {
    append_upto(s, compact_entries);
    if (s.wait_durable(compact_entries)) die("prepare: " + s.error_message());
    s.compact_before(compact_first);
    if (s.flush()) die("prepare: " + s.error_message());
    // "P <first index> <last index> <compacted up to> <last index after the appends behind>"
    say("P " + std::to_string(s.first_index()) + " " + std::to_string(s.last_index()) + " " +
        std::to_string(compact_upto) + " " + std::to_string(compact_entries + compact_more));
    return 0;
  }
  if (s.last_index() != compact_entries || s.durable_index() != compact_entries || s.first_index() > compact_first)
    die("compact: not a prepared log");
  ops_until_kill.store(k);
  s.compact_before(compact_upto);
  append_upto(s, compact_entries + compact_more);
  if (s.flush()) die("compact: " + s.error_message());
  ops_until_kill.store(-1);
  say("DONE");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: file_crash_child <dir> <seed> <reported> [verify | compact-prepare | compact <k>]");
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const std::string dir = argv[1];
  std::mt19937_64 rng(std::strtoull(argv[2], nullptr, 10));
  const index_t reported = std::strtoull(argv[3], nullptr, 10);
  const bool verify_only = argc > 4 && std::strcmp(argv[4], "verify") == 0;
  if (argc > 4 && std::strcmp(argv[4], "compact-prepare") == 0) {
    try {
      return compaction_mode(dir, true, -1);
    } catch (const std::exception& e) {
      die(e.what());
    }
  }
  if (argc > 5 && std::strcmp(argv[4], "compact") == 0) {
    try {
      return compaction_mode(dir, false, std::strtol(argv[5], nullptr, 10));
    } catch (const std::exception& e) {
      die(e.what());
    }
  }

  raftkit::file::options opts;
  opts.segment_size = 256 << 10;  // roll every hundred batches or so
  // every other run: small groups, written in parts while the previous group syncs
  if (std::strtoull(argv[2], nullptr, 10) % 2 == 0) opts.max_batch_bytes = 16 << 10;
  // every third run: a small tail cache, so entries are dropped from memory as they become durable
  if (std::strtoull(argv[2], nullptr, 10) % 3 == 0) opts.max_cached_bytes = 64 << 10;
  try {
    raftkit::file::log_store s(dir, opts);
    if (s.last_index() < reported)
      die("lost durable entries: last index " + std::to_string(s.last_index()) + " < reported " +
          std::to_string(reported));
    for (index_t i = s.first_index(); i <= s.last_index(); ++i) {
      const entry& e = s.at(i);
      if (e.index != i || e.term != term_for(i) || !(e.payload == payload_for(i)))
        die("entry " + std::to_string(i) + " is wrong");
    }
    if (const index_t b = s.first_index() - 1; s.term_at(b) != term_for(b))
      die("term before the first entry " + std::to_string(b) + " is " + std::to_string(s.term_at(b)) +
          ", expected " + std::to_string(term_for(b)));
    say("R " + std::to_string(s.first_index()) + " " + std::to_string(s.last_index()) + " " +
        (s.recovery().tail_cut ? "1" : "0"));
    if (verify_only) return 0;

    s.set_durable_handler([](index_t i) { say("D " + std::to_string(i)); });
    std::vector<entry> batch;
    for (;;) {
      batch.clear();
      const index_t from = s.last_index() + 1, n = 1 + rng() % 64;
      for (index_t i = from; i < from + n; ++i)
        batch.push_back(entry{term_for(i), i, raftkit::entry_type::normal, payload_for(i)});
      s.append(batch);
      if (s.last_index() - s.durable_index() > 1000) s.wait_durable(s.last_index() - 500);
      if (s.last_index() + 1 - s.first_index() > 6000) s.compact_before(s.last_index() - 3000 + rng() % 2000);
      if (rng() % 300 == 0) {  // a snapshot past the log's end replaces it
        const index_t i = s.last_index() + 1 + rng() % 100;
        s.reset(i, term_for(i));
      }
      if (s.error()) die("store failed: " + s.error_message());
    }
  } catch (const std::exception& e) {
    die(e.what());
  }
}
