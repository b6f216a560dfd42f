// raftkit/fmt.hpp: what each formatter prints.
#include <doctest/doctest.h>

#include <string>
#include <system_error>

#include "raftkit/fmt.hpp"

using namespace std::chrono_literals;

TEST_SUITE("fmt") {
TEST_CASE("a role prints its name and honours string specs") {
  CHECK(fmt::format("{}", raftkit::role::leader) == "leader");
  CHECK(fmt::format("{}", raftkit::role::pre_candidate) == "pre_candidate");
  CHECK(fmt::format("[{:>9}]", raftkit::role::follower) == "[ follower]");
}

TEST_CASE("an errc prints its enumerator's name, every one of them") {
  CHECK(fmt::format("{}", raftkit::errc::not_leader) == "not_leader");
  CHECK(fmt::format("{:<6}|", raftkit::errc::busy) == "busy  |");
  for (int v = 1; v <= 20; ++v) CHECK(raftkit::errc_name(static_cast<raftkit::errc>(v)) != "unknown");
  CHECK(raftkit::errc_name(static_cast<raftkit::errc>(99)) == "unknown");
}

TEST_CASE("an error_code prints ok, a raftkit name with its message, or another category's name and value") {
  CHECK(fmt::format("{}", std::error_code{}) == "ok");
  CHECK(fmt::format("{}", std::error_code(raftkit::errc::busy)) == "busy (too many pending proposals)");
  const auto enospc = std::make_error_code(std::errc::no_space_on_device);
  CHECK(fmt::format("{}", enospc) == "generic:" + std::to_string(enospc.value()) + " (" + enospc.message() + ")");
}

TEST_CASE("an entry prints index, term, type and payload length, not its bytes") {
  raftkit::entry e{3, 8, raftkit::entry_type::normal, raftkit::shared_bytes::copy_of(std::string_view("secret-bytes"))};
  const std::string s = fmt::format("{}", e);
  CHECK(s == "entry index=8 term=3 normal payload=12B");
  CHECK(s.find("secret") == std::string::npos);
  CHECK(fmt::format("{}", raftkit::entry{2, 1, raftkit::entry_type::noop, {}}) == "entry index=1 term=2 noop payload=0B");
}

TEST_CASE("a message prints type, ends, term, the fields its type uses and the entry count, not payloads") {
  raftkit::message m;
  m.type = raftkit::message_type::append_entries;
  m.from = 1;
  m.to = 2;
  m.term = 3;
  m.log_index = 7;
  m.log_term = 3;
  m.commit = 6;
  m.entries.push_back(raftkit::entry{3, 8, raftkit::entry_type::normal, raftkit::shared_bytes::copy_of(std::string_view("payload"))});
  m.entries.push_back(raftkit::entry{3, 9, raftkit::entry_type::normal, {}});
  const std::string s = fmt::format("{}", m);
  CHECK(s == "append_entries 1->2 term=3 log_index=7 log_term=3 commit=6 entries=2");
  CHECK(s.find("payload") == std::string::npos);

  raftkit::message r;
  r.type = raftkit::message_type::append_entries_reply;
  r.from = 2;
  r.to = 1;
  r.term = 3;
  r.reject = true;
  r.log_index = 7;
  r.hint_index = 5;
  r.hint_term = 2;
  CHECK(fmt::format("{}", r) == "append_entries_reply 2->1 term=3 log_index=7 reject hint_index=5 hint_term=2");

  raftkit::message v;
  v.type = raftkit::message_type::request_vote;
  v.from = 3;
  v.to = 1;
  v.term = 5;
  v.log_index = 9;
  v.log_term = 4;
  v.flags = raftkit::message_flags::pre_vote;
  CHECK(fmt::format("{}", v) == "request_vote 3->1 term=5 log_index=9 log_term=4 pre_vote");

  raftkit::message f;
  f.type = raftkit::message_type::forward_reply;
  f.from = 1;
  f.to = 2;
  f.term = 3;
  f.reject = true;
  f.request_id = 77;
  f.code = static_cast<std::uint32_t>(raftkit::errc::busy);
  CHECK(fmt::format("{}", f) == "forward_reply 1->2 term=3 reject request_id=77 code=busy");

  raftkit::message snap;
  snap.type = raftkit::message_type::install_snapshot;
  snap.from = 1;
  snap.to = 3;
  snap.term = 4;
  snap.log_index = 100;
  snap.log_term = 4;
  snap.snapshot_offset = 0;
  snap.snapshot_size = 10;
  snap.data = raftkit::shared_bytes::copy_of(std::string_view("0123456789"));
  snap.flags = raftkit::message_flags::last_chunk;
  CHECK(fmt::format("{}", snap) == "install_snapshot 1->3 term=4 log_index=100 log_term=4 last_chunk offset=0 size=10 data=10B");
}

TEST_CASE("a node_status prints role, term, indexes, and on a leader each peer's progress") {
  raftkit::node_status s;
  s.id = 1;
  s.role = raftkit::role::leader;
  s.term = 3;
  s.leader = 1;
  s.commit_index = 8;
  s.applied_index = 8;
  s.last_log_index = 9;
  s.durable_index = 9;
  s.pending_proposals = 1;
  s.uncommitted_bytes = 40;
  s.peers.push_back({2, 9, 10, 0, false});
  s.peers.push_back({3, 4, 5, 1, true});
  CHECK(fmt::format("{}", s) ==
        "node 1 leader term=3 leader=1 commit=8 applied=8 log=1..9 durable=9 pending=1 reads=0 uncommitted=40B "
        "peers=[2 match=9 next=10 inflight=0, 3 match=4 next=5 inflight=1 probing]");
  raftkit::node_status f;
  f.id = 2;
  f.term = 3;
  f.leader = 1;
  f.snapshot_index = 5;
  f.snapshot_term = 2;
  f.snapshot_size = 64;
  f.first_log_index = 6;
  f.last_log_index = 9;
  CHECK(fmt::format("{}", f) ==
        "node 2 follower term=3 leader=1 commit=0 applied=0 log=6..9 durable=0 pending=0 reads=0 snapshot=5@2 (64B)");
}

TEST_CASE("a node_config prints every setting, durations in their largest exact unit") {
  raftkit::node_config c;
  c.id = 1;
  c.members = {1, 2, 3};
  c.election_timeout = 2s;
  c.heartbeat_interval = 1500us;
  c.forward_timeout = 7ns;
  const std::string s = fmt::format("{}", c);
  CHECK(s.starts_with("id=1 members=[1,2,3] election_timeout=2s heartbeat_interval=1500us "));
  CHECK(s.find(" forward_timeout=7ns ") != std::string::npos);
  CHECK(s.find(" pre_vote=on check_quorum=on leader_stickiness=on lease_reads=off ") != std::string::npos);
  CHECK(s.find(" max_entries_per_message=256 ") != std::string::npos);
  CHECK(s.find(" snapshot_interval=100000 ") != std::string::npos);
  CHECK(s.ends_with(" seed=0"));
  c.election_timeout = 150ms;
  CHECK(fmt::format("{}", c).find(" election_timeout=150ms ") != std::string::npos);
}

TEST_CASE("the struct formatters refuse a format spec") {
  raftkit::entry e;
  CHECK_THROWS_AS((void)fmt::format(fmt::runtime("{:x}"), e), fmt::format_error);
}
}

TEST_SUITE("fmt") {
TEST_CASE("an event prints its name and its fields as key=value") {
  raftkit::event e{1, 2, raftkit::events::term_changed{1, 2, raftkit::event_reason::higher_term}};
  CHECK(fmt::format("{}", e) == "term_changed from=1 to=2 why=higher_term");
  e.data = raftkit::events::role_changed{raftkit::role::leader, raftkit::role::follower, raftkit::event_reason::lost_quorum};
  CHECK(fmt::format("{}", e) == "role_changed from=leader to=follower why=lost_quorum");
  e.data = raftkit::events::proposal_refused{raftkit::errc::busy};
  CHECK(fmt::format("{}", e) == "proposal_refused why=busy (too many pending proposals)");
  e.data = raftkit::events::durability_stalled{4, 9, std::chrono::milliseconds(150)};
  CHECK(fmt::format("{}", e) == "durability_stalled durable=4 last=9 waited=150ms");
  e.data = raftkit::events::election_started{true, 3, raftkit::event_reason::election_timeout};
  CHECK(fmt::format("{}", e) == "election_started pre_vote=true election_term=3 why=election_timeout");
}
}
