// A program outside raftkit that uses the installed (or subproject) headers; built by
// tests/packaging/check.sh through meson, pkg-config and CMake. Exits 0 only if every
// check holds, so a package that compiles but ships broken headers still fails.
#include <raftkit/errc.hpp>
#include <raftkit/types.hpp>

#include <cstdio>
#include <string_view>
#include <system_error>

int main(int argc, char** argv) {
  const char* how = argc > 1 ? argv[1] : "?";
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "consumer (%s): check failed: %s\n", how, what);
      ++failures;
    }
  };

  const auto a = raftkit::shared_bytes::copy_of(std::string_view("hello raft"));
  const raftkit::shared_bytes b = a;  // shares the buffer, copies no bytes
  check(a.view() == "hello raft", "shared_bytes holds its bytes");
  check(a.data() == b.data() && a.use_count() == 2, "copies share one buffer");
  check(raftkit::shared_bytes{}.empty(), "default shared_bytes is empty");

  const std::error_code ec = raftkit::errc::not_leader;  // via is_error_code_enum + ADL
  check(ec.category().name() == std::string_view("raftkit"), "errc has the raftkit category");
  check(ec.message() == "not the leader", "errc message");

  if (failures != 0) return 1;
  std::printf("raftkit consumer (%s): ok, %zu bytes shared by %ld, \"%s\"\n", how, a.size(),
              a.use_count(), ec.message().c_str());
  return 0;
}
