#pragma once
/// \file The file-system policy of the file log store, and its POSIX implementation.
///
/// The store does every file operation through this policy so that tests can substitute
/// a fault-injecting double (lost unsynced writes, torn writes, ENOSPC). Every call
/// returns a non-negative value on success and `-errno` on failure.

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

namespace raftkit::file {

/// What the store needs from a file system. Paths are plain strings.
template <class F>
concept file_system = requires(F& f, const std::string& p, int fd, void* out, const void* in,
                               std::size_t n, std::uint64_t off, std::vector<std::string>& names) {
  /// Opens `p` read-write; with `create`, creates it or empties an existing one.
  { f.open(p, bool{}) } -> std::same_as<int>;
  { f.close(fd) } -> std::same_as<int>;
  /// Writes all `n` bytes at `off`; returns n or -errno (a partial write may have landed).
  { f.pwrite(fd, in, n, off) } -> std::same_as<long long>;
  /// Reads up to `n` bytes at `off`; fewer only at end of file.
  { f.pread(fd, out, n, off) } -> std::same_as<long long>;
  { f.fdatasync(fd) } -> std::same_as<int>;
  { f.fsync(fd) } -> std::same_as<int>;
  /// Reserves space so the file is at least `off` bytes long; new bytes read as zeros.
  { f.allocate(fd, off) } -> std::same_as<int>;
  { f.size(fd) } -> std::same_as<long long>;
  { f.rename(p, p) } -> std::same_as<int>;
  { f.unlink(p) } -> std::same_as<int>;
  /// Creates directory `p` if it does not exist: 1 if it created it (the store then syncs
  /// its parent), 0 if it existed (a policy that cannot tell may always return 0).
  { f.make_dir(p) } -> std::same_as<int>;
  /// Makes creations, renames and removals of entries of directory `p` durable.
  { f.sync_dir(p) } -> std::same_as<int>;
  { f.list_dir(p, names) } -> std::same_as<int>;
  /// Takes an exclusive lock on file `p` (created if needed): a descriptor, or -EWOULDBLOCK
  /// when another holder has it.
  { f.lock(p) } -> std::same_as<int>;
  { f.unlock(fd) } -> std::same_as<void>;
};

/// The real thing: POSIX calls, retried on EINTR.
struct posix_fs {
  int open(const std::string& p, bool create) {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
    for (;;) {
      int fd = ::open(p.c_str(), flags, 0644);
      if (fd >= 0) return fd;
      if (errno != EINTR) return -errno;
    }
  }
  int close(int fd) { return ::close(fd) == 0 ? 0 : -errno; }
  long long pwrite(int fd, const void* in, std::size_t n, std::uint64_t off) {
    auto p = static_cast<const char*>(in);
    std::size_t done = 0;
    while (done < n) {
      ssize_t r = ::pwrite(fd, p + done, n - done, static_cast<off_t>(off + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (r == 0) return -EIO;
      done += static_cast<std::size_t>(r);
    }
    return static_cast<long long>(n);
  }
  long long pread(int fd, void* out, std::size_t n, std::uint64_t off) {
    auto p = static_cast<char*>(out);
    std::size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd, p + done, n - done, static_cast<off_t>(off + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (r == 0) break;
      done += static_cast<std::size_t>(r);
    }
    return static_cast<long long>(done);
  }
  int fdatasync(int fd) { return retry([&] { return ::fdatasync(fd); }); }
  int fsync(int fd) { return retry([&] { return ::fsync(fd); }); }
  int allocate(int fd, std::uint64_t len) {
    int r;
    do r = ::posix_fallocate(fd, 0, static_cast<off_t>(len));
    while (r == EINTR);
    return -r;
  }
  long long size(int fd) {
    struct stat st;
    if (::fstat(fd, &st) != 0) return -errno;
    return static_cast<long long>(st.st_size);
  }
  int rename(const std::string& from, const std::string& to) {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : -errno;
  }
  int unlink(const std::string& p) { return ::unlink(p.c_str()) == 0 ? 0 : -errno; }
  int make_dir(const std::string& p) {
    if (::mkdir(p.c_str(), 0755) == 0) return 1;
    return errno == EEXIST ? 0 : -errno;
  }
  int sync_dir(const std::string& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int r = fsync(fd);
    ::close(fd);
    return r;
  }
  int list_dir(const std::string& p, std::vector<std::string>& names) {
    DIR* d = ::opendir(p.c_str());
    if (!d) return -errno;
    names.clear();
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    return 0;
  }
  int lock(const std::string& p) {
    int fd = open_lock_file(p);
    if (fd < 0) return fd;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;
      ::close(fd);
      return -e;
    }
    return fd;
  }
  void unlock(int fd) { ::close(fd); }  // closing the descriptor releases the flock

 private:
  static int open_lock_file(const std::string& p) {
    for (;;) {
      int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) return fd;
      if (errno != EINTR) return -errno;
    }
  }
  template <class F>
  static int retry(F f) {
    for (;;) {
      if (f() == 0) return 0;
      if (errno != EINTR) return -errno;
    }
  }
};

static_assert(file_system<posix_fs>);

}  // namespace raftkit::file
