#include <doctest/doctest.h>

#include <string>
#include <system_error>
#include <type_traits>

#include "raftkit/config.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/message.hpp"
#include "raftkit/types.hpp"

TEST_SUITE("types") {
TEST_CASE("shared_bytes shares one buffer between copies and frees it with the last") {
  auto a = raftkit::shared_bytes::copy_of(std::string_view("hello"));
  CHECK(a.size() == 5);
  CHECK(a.view() == "hello");
  CHECK(a.use_count() == 1);
  {
    raftkit::shared_bytes b = a;
    CHECK(b.data() == a.data());
    CHECK(a.use_count() == 2);
  }
  CHECK(a.use_count() == 1);
  raftkit::shared_bytes moved = std::move(a);
  CHECK(moved.view() == "hello");
  CHECK(a.empty());
  CHECK(raftkit::shared_bytes::copy_of(std::string_view("")).data() == nullptr);
}

TEST_CASE("errc values make error_codes in the raftkit category with readable messages") {
  std::error_code ec = raftkit::errc::not_leader;
  CHECK(ec.category().name() == std::string("raftkit"));
  CHECK(ec == raftkit::errc::not_leader);
  CHECK(ec != raftkit::errc::busy);
  CHECK(ec.message() == "not the leader");
  CHECK(std::error_code(raftkit::errc::leadership_lost).message().find("unknown") != std::string::npos);
}

TEST_CASE("entry_batch reuses pooled storage after it is returned") {
  const void* storage = nullptr;
  {
    raftkit::entry_batch b;
    b.push_back(raftkit::entry{1, 1, raftkit::entry_type::normal, {}});
    storage = b.items().data();
  }
  raftkit::entry_batch again;
  again.push_back(raftkit::entry{1, 1, raftkit::entry_type::normal, {}});
  CHECK(again.items().data() == storage);
}

TEST_CASE("node_config rejects set-ups that cannot work") {
  raftkit::node_config c;
  c.id = 1;
  c.members = {1, 2, 3};
  CHECK_NOTHROW(c.validate());
  c.members = {2, 3};
  CHECK_THROWS_AS(c.validate(), std::invalid_argument);
  c.members = {1, 2, 3};
  c.heartbeat_interval = c.election_timeout;
  CHECK_THROWS_AS(c.validate(), std::invalid_argument);
}

// Finding 10.8 of the hardening review: durations were declared as time points. The two
// are distinct types now, so a deadline cannot be passed where a timeout is meant.
static_assert(!std::is_same_v<raftkit::duration, raftkit::time_point>);
static_assert(!std::is_convertible_v<raftkit::duration, raftkit::time_point>);
static_assert(!std::is_convertible_v<raftkit::time_point, raftkit::duration>);
static_assert(std::is_same_v<decltype(raftkit::time_point{} - raftkit::time_point{}), raftkit::duration>);
static_assert(std::is_same_v<decltype(raftkit::time_point{} + raftkit::duration{}), raftkit::time_point>);
}
