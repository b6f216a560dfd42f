// Snapshots and log compaction (issue 12, Raft §7): taking snapshots and compacting
// behind them, InstallSnapshot for a follower that needs compacted entries (through loss,
// duplication, reordering, a change of leader and crashes), restarts from a snapshot, and
// the rule that a snapshot never moves a state machine backwards.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine_harness.hpp"
#include "raftkit/file/snapshot_store.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"
#include "raftkit/sim/invariants.hpp"

using namespace engine_test;
using raftkit::duration;

namespace {

/// A snapshottable state machine: the commands applied, in order, and how many applies it
/// ran in this incarnation (a restart from a snapshot replays only the tail).
struct journal {
  std::vector<std::string> cmds;
  std::size_t applies = 0;

  index_t apply(index_t i, std::span<const std::byte> cmd) {
    cmds.emplace_back(reinterpret_cast<const char*>(cmd.data()), cmd.size());
    ++applies;
    return i;
  }
  struct view {
    std::shared_ptr<const std::vector<std::string>> cmds;
    std::error_code write(raftkit::snapshot_writer& w) const {
      for (const auto& c : *cmds) {
        const auto n = static_cast<std::uint32_t>(c.size());
        if (auto ec = w.write_value(n)) return ec;
        if (auto ec = w.write(c)) return ec;
      }
      return {};
    }
  };
  view snapshot() const { return {std::make_shared<const std::vector<std::string>>(cmds)}; }
  std::error_code restore(raftkit::snapshot_reader& r) {
    std::vector<std::string> next;
    while (r.remaining()) {
      std::uint32_t n = 0;
      if (!r.read_value(n) || n > r.remaining()) return raftkit::errc::corrupt_snapshot;
      std::string c(n, '\0');
      if (!r.read_exact(std::as_writable_bytes(std::span(c.data(), c.size())))) return raftkit::errc::corrupt_snapshot;
      next.push_back(std::move(c));
    }
    cmds = std::move(next);
    return {};
  }
};
static_assert(raftkit::snapshottable<journal>);
static_assert(!raftkit::snapshottable<recorder>);

using snap_cluster = raftkit::sim::cluster<journal>;
static_assert(snap_cluster::node_type::snapshots_enabled);
static_assert(!cluster::node_type::snapshots_enabled);  // recorder cannot: compaction off

raftkit::sim::cluster_options snap_options(std::size_t n, std::uint64_t interval = 20, std::uint64_t trailing = 5) {
  auto o = options(n);
  o.node.snapshot_interval = interval;
  o.node.snapshot_trailing_entries = trailing;
  o.node.max_snapshot_chunk_bytes = 64;  // many chunks even for a small state
  o.node.max_inflight_bytes = 256;       // a window of four chunks
  return o;
}

void write(snap_cluster& c, node_id on, const std::string& cmd, outcome* out = nullptr) {
  c.node(on).propose(std::as_bytes(std::span(cmd.data(), cmd.size())), [out](std::error_code ec, index_t at, index_t) {
    if (out) *out = outcome{true, ec, at};
  });
}

/// Writes `n` commands through the leader and waits until they are applied there.
void write_many(snap_cluster& c, node_id l, int n, const std::string& prefix) {
  std::vector<outcome> outs(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) write(c, l, prefix + std::to_string(i), &outs[static_cast<std::size_t>(i)]);
  REQUIRE(c.run_until([&] { return std::all_of(outs.begin(), outs.end(), [](const outcome& o) { return o.done; }); }, 5s));
  for (const auto& o : outs) REQUIRE_FALSE(o.ec);
}

node_id other(snap_cluster& c, std::initializer_list<node_id> not_these) {
  for (node_id id : c.ids())
    if (std::find(not_these.begin(), not_these.end(), id) == not_these.end()) return id;
  return raftkit::no_node;
}

bool same_state(snap_cluster& c, node_id a, node_id b) {
  return c.node(a).state_machine().cmds == c.node(b).state_machine().cmds;
}

/// `lag` has applied all that `l` has, and holds the same state.
bool caught_up(snap_cluster& c, node_id lag, node_id l) {
  return c.node(lag).applied_index() >= c.node(l).applied_index() && same_state(c, l, lag);
}

struct leader_and_lagging {
  node_id leader = raftkit::no_node;
  node_id lag = raftkit::no_node;
};

/// Elects a leader, isolates one follower and writes 120 commands, so that the leader
/// snapshots and compacts past what the isolated follower holds.
leader_and_lagging elect_and_leave_one_behind(snap_cluster& c) {
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  const node_id lag = other(c, {l});
  c.isolate(lag);
  write_many(c, l, 120, "w");
  return {l, lag};
}

using file_snap_node = raftkit::basic_node<recording_transport, raftkit::memory::log_store, journal,
                                           raftkit::manual_clock, raftkit::file::snapshot_store>;

raftkit::node_config file_snap_config(std::uint64_t trailing) {
  raftkit::node_config cfg;
  cfg.id = 1;
  cfg.members = {1};
  cfg.snapshot_interval = 10;
  cfg.snapshot_trailing_entries = trailing;
  return cfg;
}

}  // namespace

TEST_SUITE("engine") {

TEST_CASE("§7 a leader snapshots every snapshot_interval entries and compacts its log behind the snapshot") {
  snap_cluster c(snap_options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  for (int round = 0; round < 5; ++round) write_many(c, l, 20, "w" + std::to_string(round) + "-");
  const auto st = c.node(l).status();
  REQUIRE(st.snapshot_index >= 80);
  CHECK(c.node(l).counters().snapshots_taken >= 4);
  CHECK(st.first_log_index == st.snapshot_index + 1 - 5);  // the trailing entries stay
  CHECK(c.store(l).first_index() == st.first_log_index);
  CHECK(c.snapshots(l).latest()->index == st.snapshot_index);
}

TEST_CASE("§7 a leader whose own disk lags compacts once its log is durable, not only at the next snapshot") {
  // The leader commits on two followers' durable copies while its own writes are still
  // pending; a store compacts only what it holds durably. Found by asio_snapshots: a file
  // log leader kept its whole log until a next snapshot that never came.
  snap_cluster c(snap_options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  c.store(l).set_write_delay(std::chrono::milliseconds(500));
  write_many(c, l, 25, "w");
  const auto st = c.node(l).status();
  REQUIRE(st.snapshot_index >= 20);
  REQUIRE(c.store(l).durable_index() < st.snapshot_index);  // the case: applied ahead of its own disk
  CHECK(st.first_log_index < st.snapshot_index + 1 - 5);    // not yet: what is not durable stays
  c.run_for(std::chrono::seconds(1));                       // its writes complete; nothing else is written
  CHECK(c.node(l).counters().snapshots_taken == 1);
  CHECK(c.node(l).status().first_log_index == st.snapshot_index + 1 - 5);
  CHECK(c.store(l).first_index() == st.snapshot_index + 1 - 5);
}

TEST_CASE("§7 an isolated follower catches up through InstallSnapshot after the leader compacted 100 entries") {
  snap_cluster c(snap_options(3));
  const leader_and_lagging setup = elect_and_leave_one_behind(c);
  const node_id l = setup.leader, lag = setup.lag;
  REQUIRE(c.store(l).first_index() > c.store(lag).last_index() + 1);  // it needs compacted entries
  c.heal();
  REQUIRE(c.run_until([&] { return c.node(l).counters().snapshots_sent >= 1; }, 5s));
  REQUIRE(c.run_until([&] { return caught_up(c, lag, l); }, 5s));
  CHECK(c.node(lag).counters().snapshots_installed >= 1);
  CHECK(c.node(lag).counters().snapshot_bytes_received > 64 * 4);  // many chunks
  // Replication goes on from the log after the snapshot.
  write_many(c, l, 10, "after");
  REQUIRE(c.run_until([&] { return same_state(c, l, lag); }, 2s));
}

TEST_CASE("§7 InstallSnapshot survives lost, duplicated and reordered chunks") {
  snap_cluster c(snap_options(3));
  const leader_and_lagging setup = elect_and_leave_one_behind(c);
  const node_id l = setup.leader, lag = setup.lag;
  std::uint64_t n = 0;
  std::size_t lost = 0, doubled = 0;
  c.set_fault_model([&](const message& m) {
    raftkit::memory::delivery d;
    if (m.type != message_type::install_snapshot && m.type != message_type::install_snapshot_reply) return d;
    ++n;
    if (n % 5 == 0) {
      d.drop = true;  // every fifth chunk or reply is lost
      ++lost;
    } else if (n % 7 == 0) {
      d.copies = 2;  // some arrive twice, the copy late
      d.dup_delay = std::chrono::milliseconds(3);
      ++doubled;
    } else if (n % 3 == 0) {
      d.delay = std::chrono::milliseconds(2);  // and some overtake others
    }
    return d;
  });
  c.heal();
  REQUIRE(c.run_until([&] { return caught_up(c, lag, l); }, 10s));
  CHECK(lost > 0);
  CHECK(doubled > 0);
  CHECK(c.node(lag).counters().snapshots_installed >= 1);
}

TEST_CASE("§7 a chunk still held elsewhere keeps its bytes: the leader reuses a chunk buffer only once it is released") {
  snap_cluster c(snap_options(3));
  const leader_and_lagging setup = elect_and_leave_one_behind(c);
  const node_id l = setup.leader, lag = setup.lag;
  // Hold on to every chunk as it leaves (as a transport with messages in flight does),
  // with a copy of the bytes it carried then.
  std::vector<std::pair<raftkit::shared_bytes, std::vector<std::byte>>> held;
  c.set_fault_model([&](const message& m) {
    if (m.type == message_type::install_snapshot && !m.data.empty())
      held.emplace_back(m.data, std::vector<std::byte>(m.data.data(), m.data.data() + m.data.size()));
    return raftkit::memory::delivery{};
  });
  c.heal();
  REQUIRE(c.run_until([&] { return caught_up(c, lag, l); }, 5s));
  REQUIRE(held.size() > 4);  // more chunks than the sender keeps buffers for
  for (const auto& [chunk, bytes] : held) CHECK(std::equal(bytes.begin(), bytes.end(), chunk.data(), chunk.data() + chunk.size()));
}

TEST_CASE("§7 a change of leader in the middle of a transfer: the follower still ends up with the new leader's state") {
  snap_cluster c(snap_options(5));
  const leader_and_lagging setup = elect_and_leave_one_behind(c);
  const node_id l = setup.leader, lag = setup.lag;
  c.heal();
  // Let a few chunks through, then the leader dies.
  REQUIRE(c.run_until([&] { return c.node(lag).counters().snapshot_bytes_received > 0; }, 2s));
  c.crash(l);
  REQUIRE(c.run_until([&] { const node_id x = c.leader(); return x != raftkit::no_node && x != l; }, 5s));
  const node_id nl = c.leader();
  write_many(c, nl, 40, "new");
  REQUIRE(c.run_until([&] { return caught_up(c, lag, nl); }, 10s));
}

TEST_CASE("§7 a crash in the middle of an install leaves the previous snapshot and the log usable") {
  snap_cluster c(snap_options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  write_many(c, l, 30, "a");
  const node_id lag = other(c, {l});
  REQUIRE(c.run_until([&] { return c.snapshots(lag).latest().has_value(); }, 2s));
  const auto before = *c.snapshots(lag).latest();
  c.isolate(lag);
  write_many(c, l, 120, "b");
  c.heal();
  REQUIRE(c.run_until([&] { return c.node(lag).counters().snapshot_bytes_received > 0; }, 2s));
  REQUIRE(c.node(lag).counters().snapshots_installed == 0);
  c.crash(lag);
  CHECK(c.snapshots(lag).latest() == before);  // the unfinished one is gone, the old one kept
  c.restart(lag);
  CHECK(c.node(lag).applied_index() == before.index);  // restored from it at start
  REQUIRE(c.run_until([&] { return caught_up(c, lag, l); }, 10s));
}

TEST_CASE("§7 a crash while a snapshot is being written keeps the previous snapshot and the log it needs") {
  auto o = snap_options(3);
  o.snapshot_write_delay = std::chrono::milliseconds(50);
  snap_cluster c(o);
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  write_many(c, l, 25, "a");
  REQUIRE(c.run_until([&] { return c.node(l).status().snapshot_index > 0; }, 1s));
  const auto first = c.node(l).status().snapshot_index;
  write_many(c, l, 20, "b");  // the next snapshot is taken and is being written...
  c.crash(l);                 // ...when the process dies
  CHECK(c.snapshots(l).latest()->index == first);
  c.restart(l);
  CHECK(c.node(l).applied_index() == first);
  REQUIRE(c.run_until([&] {
    const node_id x = c.leader();
    return x != raftkit::no_node && c.node(l).applied_index() >= c.node(x).applied_index() && same_state(c, l, x);
  }, 5s));
}

TEST_CASE("§7 a restart restores from the snapshot and replays only the log after it") {
  snap_cluster c(snap_options(3, 50, 5));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  write_many(c, l, 120, "w");
  c.run_for(100ms);
  const node_id f = other(c, {l});
  const auto snap = c.snapshots(f).latest();
  REQUIRE(snap);
  const auto cmds = c.node(f).state_machine().cmds;
  c.crash(f);
  c.restart(f);
  CHECK(c.node(f).applied_index() == snap->index);
  REQUIRE(c.run_until([&] { return c.node(f).state_machine().cmds == cmds; }, 2s));
  // It applied only what followed the snapshot, not all 120 entries again.
  CHECK(c.node(f).state_machine().applies < 120 - 40);
}

TEST_CASE("§7 a snapshot at or below the follower's commit index is acknowledged and ignored: a state machine never moves backwards") {
  snap_cluster c(snap_options(3));
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  write_many(c, l, 30, "w");
  c.run_for(100ms);
  const node_id f = other(c, {l});
  const auto applied = c.node(f).applied_index();
  const auto cmds = c.node(f).state_machine().cmds;
  bool acked = false;
  c.set_observer([&](const message& m) {
    if (m.type == message_type::install_snapshot_reply && m.from == f && (m.flags & raftkit::message_flags::last_chunk)) acked = true;
    return true;
  });
  message old;  // an old snapshot from the leader: an empty state at index 3
  old.type = message_type::install_snapshot;
  old.from = l;
  old.to = f;
  old.term = c.node(l).term();
  old.log_index = 3;
  old.log_term = c.store(l).term_at(c.store(l).first_index());
  old.snapshot_size = 0;
  old.flags = raftkit::message_flags::last_chunk;
  c.inject(std::move(old));
  CHECK(acked);
  CHECK(c.node(f).applied_index() >= applied);
  CHECK(c.node(f).state_machine().cmds.size() >= cmds.size());
  CHECK(c.node(f).counters().snapshots_installed == 0);
}

TEST_CASE("§7 a state machine without the snapshot capability keeps working, with compaction off") {
  auto o = snap_options(3);
  cluster c(o);  // recorder: no snapshot(); the cluster still gives nodes snapshot stores
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  for (int i = 0; i < 100; ++i) propose(c, l, "w");
  c.run_for(500ms);
  CHECK(c.node(l).applied_index() >= 100);
  CHECK(c.store(l).first_index() == 1);
  CHECK(c.node(l).status().snapshot_index == 0);
  outcome o2;
  c.node(l).snapshot_now([&](std::error_code ec, index_t) { o2 = outcome{true, ec, 0}; });
  CHECK(o2.ec == errc::not_supported);
}

TEST_CASE("§7 snapshot_now takes a snapshot on request and compacts") {
  snap_cluster c(snap_options(3, 0, 2));  // no automatic snapshots
  const node_id l = c.elect();
  REQUIRE(l != raftkit::no_node);
  write_many(c, l, 30, "w");
  CHECK(c.node(l).status().snapshot_index == 0);
  std::error_code ec = errc::timeout;
  index_t at = 0;
  c.node(l).snapshot_now([&](std::error_code e, index_t i) {
    ec = e;
    at = i;
  });
  CHECK_FALSE(ec);
  CHECK(at == c.node(l).applied_index());
  CHECK(c.store(l).first_index() == at + 1 - 2);
}

/// A one-node cluster over a file snapshot store in `dir`: 25 commands (snapshots at 10
/// and 20), then the newest snapshot file corrupted on disk. Returns the log it ran on.
static raftkit::memory::log_store run_then_corrupt_newest(const std::filesystem::path& dir, std::uint64_t trailing,
                                                   std::vector<std::string>& applied) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  raftkit::memory::log_store log;
  raftkit::manual_clock clock;
  {
    file_snap_node n(file_snap_config(trailing), recording_transport{}, log, journal{}, clock,
                     raftkit::file::snapshot_store(dir.string()));
    clock.advance(1h);
    n.tick();
    REQUIRE(n.is_leader());
    for (int i = 0; i < 25; ++i) {
      const std::string s = "c" + std::to_string(i);
      n.propose(std::as_bytes(std::span(s.data(), s.size())), [](std::error_code, index_t) {});
    }
    REQUIRE(n.status().snapshot_index >= 20);
    applied = n.state_machine().cmds;
  }
  std::vector<fs::path> snaps;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".snap") snaps.push_back(e.path());
  REQUIRE(snaps.size() == 2);
  std::sort(snaps.begin(), snaps.end(), [](const fs::path& x, const fs::path& y) {
    return fs::file_size(x) < fs::file_size(y);  // the newer snapshot holds more commands
  });
  std::FILE* f = std::fopen(snaps.back().c_str(), "r+b");
  REQUIRE(f);
  std::fseek(f, -1, SEEK_END);
  const int last = std::fgetc(f);
  std::fseek(f, -1, SEEK_END);
  std::fputc(last ^ 0x5A, f);
  std::fclose(f);
  return log;
}

TEST_CASE("§7 a node whose newest snapshot is corrupt restarts from the previous one and replays the log after it") {
  const auto dir = std::filesystem::temp_directory_path() / ("raftkit-engine-snap-a-" + std::to_string(::getpid()));
  std::vector<std::string> before;
  auto log = run_then_corrupt_newest(dir, 20, before);  // the log still reaches back past snapshot 10
  raftkit::manual_clock clock;
  file_snap_node n(file_snap_config(20), recording_transport{}, log, journal{}, clock,
                   raftkit::file::snapshot_store(dir.string()));
  CHECK(n.status().snapshot_index == 10);  // the corrupt one was refused
  CHECK(n.state_machine().cmds.size() == 9);  // snapshot 10: the no-op and nine commands
  clock.advance(1h);
  n.tick();  // leads again and commits the log after the snapshot
  REQUIRE(n.is_leader());
  CHECK(n.state_machine().cmds == before);
  CHECK(n.state_machine().applies == before.size() - 9);  // only the log after the snapshot
  std::filesystem::remove_all(dir);
}

TEST_CASE("§7 a corrupt newest snapshot with the log compacted past the previous one: start-up refused, nothing lost") {
  const auto dir = std::filesystem::temp_directory_path() / ("raftkit-engine-snap-b-" + std::to_string(::getpid()));
  std::vector<std::string> before;
  auto log = run_then_corrupt_newest(dir, 0, before);  // the log holds only what follows snapshot 20
  const index_t first = log.first_index(), last = log.last_index();
  REQUIRE(first > 11);
  raftkit::manual_clock clock;
  CHECK_THROWS_AS(file_snap_node(file_snap_config(0), recording_transport{}, log, journal{}, clock,
                                 raftkit::file::snapshot_store(dir.string())),
                  std::system_error);
  // Refusing to start lost nothing: the log is as it was (it is not reset to snapshot 10).
  CHECK(log.first_index() == first);
  CHECK(log.last_index() == last);
  std::filesystem::remove_all(dir);
}

TEST_CASE("membership with snapshots: a new server catches up through InstallSnapshot, and the configuration comes back from the snapshot at restart") {
  auto o = snap_options(3);
  o.spares = 1;
  snap_cluster c(o);
  const node_id l = c.elect();
  write_many(c, l, 60, "a");  // snapshots taken, the log compacted past its start
  REQUIRE(c.node(l).log().first_index() > 1);
  bool done = false;
  std::error_code ec;
  c.node(l).change_membership({raftkit::member_change::add_voter(4, "four")}, [&](std::error_code e, index_t) {
    done = true;
    ec = e;
  });
  REQUIRE(c.run_until([&] { return done; }, 10s));
  REQUIRE_FALSE(ec);
  CHECK(c.node(4).counters().snapshots_installed >= 1);
  write_many(c, c.leader(), 60, "b");  // and more snapshots, now with four voters
  REQUIRE(c.run_until([&] { return c.node(4).applied_index() == c.node(c.leader()).commit_index(); }, 5s));
  CHECK(c.node(4).state_machine().cmds == c.node(c.leader()).state_machine().cmds);
  const auto want = c.node(c.leader()).members();
  for (node_id id : c.ids()) {
    c.crash(id);
    c.restart(id);
    CHECK(c.node(id).members().same_members(want));
    CHECK(c.node(id).members().find(4)->context == "four");
  }
  // The snapshot holds the configuration: the log no longer has the config entries.
  auto snap = c.snapshots(4).latest();
  REQUIRE(snap.has_value());
  auto conf = raftkit::detail::decode_membership(std::span<const std::byte>(snap->config.data(), snap->config.size()));
  REQUIRE(conf.has_value());
  CHECK(conf->same_members(want));
  CHECK(c.elect() != raftkit::no_node);
}

TEST_CASE("InstallSnapshot: a late reply acknowledging more than was resent after a stall resumes the transfer after it") {
  // Found by raftkit-sim --seed 12845 --membership --partitions --crashes: two idle
  // heartbeats reset `sent` to what was acknowledged, then a delayed reply acknowledged
  // more; with acked above sent the window arithmetic underflowed and no chunk left again.
  struct source {
    raftkit::snapshot_meta m;
    raftkit::snapshot_meta meta() const { return m; }
  };
  source src;
  src.m.index = 10;
  src.m.size = 100;
  raftkit::detail::snapshot_send<source> send(src);
  send.sent = 60;  // three chunks of 20 out
  send.acknowledge(20);
  send.heartbeat();
  send.heartbeat();
  send.heartbeat();  // nothing acknowledged at two heartbeats: resend from 20
  REQUIRE(send.sent == 20);
  send.acknowledge(60);  // the replies were only late
  CHECK(send.sent >= send.acked);
  CHECK(send.can_send(40));
  CHECK(send.sent == 60);
}

}  // TEST_SUITE
