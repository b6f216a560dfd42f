#pragma once
/// \file basic_node: the Raft engine, composed from four policies.
///
/// A node is single-threaded and never blocks. Its inputs are `receive` (a message),
/// `tick` (the clock moved), `propose` (a client command) and `notify_durable` (the log
/// store made progress). Its outputs go through the policies: messages to the transport,
/// entries to the log store, committed commands to the state machine, results to the
/// proposal's completion. Given the same inputs in the same order it does the same
/// thing: no wall clock, no unseeded randomness.
///
/// Errors: every completion error is either *definitely not applied* or *outcome
/// unknown*; `raftkit::may_have_applied(ec)` (errc.hpp) tells them apart. The node halts
/// (stops taking part, fails what is pending, and reports why in `error()`) when its log
/// store fails, when persisting its term or vote fails, and when the state machine throws.

#include <algorithm>
#include <cstdint>
#include <exception>
#include <map>
#include <stdexcept>
#include <string>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/clock.hpp"
#include "raftkit/config.hpp"
#include "raftkit/detail/forwarding.hpp"
#include "raftkit/detail/progress.hpp"
#include "raftkit/detail/quorum.hpp"
#include "raftkit/detail/read_index.hpp"
#include "raftkit/detail/snapshot_transfer.hpp"
#include "raftkit/detail/random.hpp"
#include "raftkit/detail/ring.hpp"
#include "raftkit/detail/test_breaks.hpp"
#include "raftkit/detail/unique_function.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/events.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/membership.hpp"
#include "raftkit/message.hpp"
#include "raftkit/snapshot.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/status.hpp"
#include "raftkit/transport.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

namespace detail {
/// The sink and source types of a snapshot store (none for no_snapshots).
template <class S>
struct snapshot_types {
  using sink = std::monostate;
  using source = std::monostate;
};
template <snapshot_store S>
struct snapshot_types<S> {
  using sink = decltype(std::declval<S&>().create(index_t{}, term_t{}, std::vector<std::byte>{}));
  using source = decltype(std::declval<S&>().open(std::declval<const snapshot_meta&>()));
};
}  // namespace detail

/// The Raft engine over Transport, LogStore, StateMachine and Clock policies, and
/// optionally a SnapshotStore (raftkit/snapshot_store.hpp; `no_snapshots` by default).
/// Snapshots and compaction are on when the snapshot store is given, the state machine
/// is `snapshottable` (raftkit/snapshot.hpp) and the log store can compact
/// (`detail::compactable_store`); otherwise the log is kept whole.
template <transport Transport, log_store LogStore, state_machine StateMachine, clock Clock,
          class SnapshotStore = no_snapshots>
class basic_node {
  static_assert(std::is_same_v<SnapshotStore, no_snapshots> || raftkit::snapshot_store<SnapshotStore>,
                "SnapshotStore must be no_snapshots or model raftkit::snapshot_store");

 public:
  /// Whether this composition takes, installs and restores snapshots.
  static constexpr bool snapshots_enabled = !std::is_same_v<SnapshotStore, no_snapshots> &&
                                            snapshottable<StateMachine> && detail::compactable_store<LogStore>;
  using transport_type = Transport;
  using log_store_type = LogStore;
  using state_machine_type = StateMachine;
  using clock_type = Clock;
  /// What a proposal's completion receives besides the error code and the index.
  using result_type = apply_result_t<StateMachine>;
  /// A proposal's completion: `(error_code, index, result)`. On success `index` is where
  /// the command sits in the log and `result` what the state machine returned for it. On
  /// an error the result is default; the index is the one the command was appended at
  /// when that is known (an outcome-unknown error after appending), else 0.
  using completion = detail::unique_function<void(std::error_code, index_t, result_type)>;
  /// A read's completion: `(error_code, read_index)`. On success this node has applied up
  /// to `read_index`, so its state machine answers the read linearizably (for
  /// read_consistency::linearizable and lease) right now, in the completion.
  using read_completion = detail::unique_function<void(std::error_code, index_t)>;
  /// A leadership transfer's completion: `(error_code)`, empty once the target leads.
  using transfer_completion = detail::unique_function<void(std::error_code)>;
  /// A snapshot write handed to an executor: it runs anywhere and returns its outcome,
  /// which the executor must hand back on the engine's thread with `snapshot_written`.
  using snapshot_job = detail::unique_function<std::error_code()>;
  /// A membership change's completion: `(error_code, index)`, with the index of the entry
  /// that holds C_new once it commits.
  using membership_completion = detail::unique_function<void(std::error_code, index_t)>;

  /// Builds a node and restores term and vote from the log store (a restart is a new
  /// incarnation: commit and applied start at 0 and the state machine replays the log).
  /// With snapshots, it first restores the state machine from the newest snapshot and
  /// starts with commit = applied = its index, replaying only the log after it.
  /// Throws std::invalid_argument on an invalid configuration, and std::system_error when
  /// the stored state cannot be used (a snapshot that fails to restore; a log compacted
  /// past every snapshot the store holds).
  basic_node(node_config cfg, Transport t, LogStore l, StateMachine s, Clock c, SnapshotStore snaps = {})
      : cfg_(std::move(cfg)),
        transport_(std::move(t)),
        log_(std::move(l)),
        sm_(std::move(s)),
        clock_(std::move(c)),
        snaps_(std::move(snaps)),
        rng_(cfg_.seed ^ (cfg_.id * 0x9E3779B97F4A7C15ull)) {
    cfg_.validate();
    const hard_state hs = log_.load_hard_state();
    term_ = hs.term;
    vote_ = hs.vote;
    membership initial;  // node_config's members, until the log or a snapshot says otherwise
    for (node_id m : cfg_.members) initial.voters.push_back(member_info{m, {}});
    configs_.push_back(std::move(initial));
    const auto seed_time = static_cast<std::uint64_t>(clock_.now().time_since_epoch().count());
    next_request_id_ = rng_.next() ^ seed_time;
    boot_id_ = (rng_.next() ^ seed_time) | 1;
    boot_time_ = clock_.now();
    if constexpr (snapshots_enabled) restore_at_start();
    load_configs_from_log();
    reset_election_deadline();
  }

  basic_node(const basic_node&) = delete;
  basic_node& operator=(const basic_node&) = delete;

  /// A node destroyed without `stop()` still completes every pending proposal, with
  /// shutting_down (outcome unknown), so no caller waits forever.
  ~basic_node() { halt(errc::shutting_down); }

  // ---------------------------------------------------------------- inputs

  /// Handles one message from a peer.
  void receive(message&& m) {
    RAFTKIT_ASSERT(batch_depth_ == 0, "only propose() may be called inside batch()");
    if (stopped_) return;
    ++counters_.messages_received;
    step(std::move(m));
    after_input();
  }

  /// Lets time-driven work happen: elections, heartbeats, forwarded-proposal timeouts,
  /// delayed store completions. Call it at least at `next_deadline()`.
  void tick() {
    if (stopped_) return;
    const time_point now = clock_.now();
    if constexpr (detail::pollable_store<LogStore>) log_.poll(now);
    if (role_ == role::leader) {
      if (now >= check_quorum_deadline_) check_quorum(now);
      if (role_ == role::leader && now >= heartbeat_deadline_) {
        heartbeat_deadline_ = now + cfg_.heartbeat_interval;
        begin_read_round();  // every heartbeat is a round: it keeps the lease fresh
        for (auto& p : peers_) heartbeat(p);
        confirm_read_rounds();  // a single voter is its own majority: no round stays in flight
      }
    } else if (now >= election_deadline_) {
      campaign();
    }
    if (transfer_ && now >= transfer_->deadline)
      end_transfer(role_ == role::leader ? errc::timeout : errc::leadership_lost);  // a leader leads on
    if (change_ && !change_->entry && now >= change_->deadline) finish_change(errc::catch_up_failed, 0);
    forwards_.expire(now, [&](auto& b) {
      for (auto& c : b.done) fail(c, errc::timeout);
    });
    while (!read_forwards_.empty() && read_forwards_.begin()->second.deadline <= now) {
      auto batch = std::move(read_forwards_.begin()->second.done);
      read_forwards_.erase(read_forwards_.begin());
      for (auto& c : batch) c(errc::timeout, 0);
    }
    after_input();
  }

  /// Tells the node its log store made more entries durable.
  void notify_durable() {
    if (stopped_) return;
    after_input();
  }

  /// Proposes `command`. On the leader, `done` receives the state machine's result once
  /// the entry is applied here. On a follower the proposal is forwarded to the known
  /// leader (if configured) or fails at once with not_leader (see `leader()`). Every
  /// proposal completes exactly once; `done` may run before `propose` returns. `done`
  /// takes `(error_code, index_t, result_type)` or `(error_code, result_type)`.
  ///
  /// Refused at once (definitely not applied): too_large when the entry could never fit
  /// in one AppendEntries (`max_bytes_per_message`), busy beyond `max_pending_proposals`
  /// or `max_uncommitted_bytes`, not_leader, and stopped once the node has stopped.
  template <class Handler>
  void propose(std::span<const std::byte> command, Handler&& done) {
    completion c = make_completion(std::forward<Handler>(done));
    if (stopped_) return fail(c, errc::stopped);
    ++counters_.proposals;
    if (!fits_one_message(command.size())) return refuse(c, errc::too_large);
    if (role_ != role::leader) {
      if (cfg_.forward_proposals && leader_ != no_node) return forward(command, std::move(c));
      return refuse(c, errc::not_leader);
    }
    if (transfer_) return refuse(c, errc::transferring);
    if (pending_.size() >= cfg_.max_pending_proposals) return refuse(c, errc::busy);
    if (!room_for_uncommitted(command.size())) return refuse(c, errc::busy);
    if (batch_depth_ > 0) {  // inside batch(): appended and replicated when it ends
      const index_t idx = log_.last_index() + batch_.size() + 1;
      batch_.push_back(entry{term_, idx, entry_type::normal, shared_bytes::copy_of(command)});
      note_uncommitted(batch_.back());
      pending_.push_back(pending_proposal{idx, term_, std::move(c)});
      return;
    }
    const index_t idx = append_local(entry_type::normal, shared_bytes::copy_of(command));
    pending_.push_back(pending_proposal{idx, term_, std::move(c)});
    for (auto& p : peers_) send_append(p);
    after_input();
  }

  /// Runs `f`, whose `propose` calls append to the log but send nothing; when it ends,
  /// their entries reach the log store in one write and each follower in as few
  /// AppendEntries as the batch limits allow. On a follower, the proposals `f` forwards
  /// leave in as few forward messages as the same limits allow. A driver that drains a
  /// queue of proposals does so inside one batch: under load this is what turns many
  /// small proposals into few messages and few fsyncs. Only `propose` may be called in `f`.
  template <class F>
  void batch(F&& f) {
    ++batch_depth_;
    struct end_batch {
      basic_node* n;
      ~end_batch() {
        if (--n->batch_depth_ == 0) n->flush_batch();
      }
    } guard{this};
    std::forward<F>(f)();
  }

  /// Stops the node: a leader first hands leadership to its most up-to-date follower
  /// (thesis §3.10: TimeoutNow, if that follower holds our whole log) so the cluster need
  /// not wait for an election timeout; every pending proposal completes with
  /// shutting_down (outcome unknown: it was appended and may still commit); later
  /// proposals fail with stopped; later inputs are ignored.
  void stop() {
    if (!stopped_ && role_ == role::leader) {
      const node_id best = best_follower();
      if (best != no_node && find_peer(best)->match >= log_.last_index()) {
        timeout_now_sent_ = true;
        transport_send(make(message_type::timeout_now, best));
      }
    }
    halt(errc::shutting_down);
  }

  /// A linearizable read without a log write (thesis §6.4). `done(error_code, index)`
  /// runs once this node has applied up to a read index: the commit index a leader had
  /// when it was confirmed, by a heartbeat round started after the read arrived, to still
  /// be leader (and, first, to have committed an entry of its term). A follower asks the
  /// leader for the index and waits to apply it (follower reads). Reads made inside
  /// batch(), or while a round is in flight, share one round: no message per read.
  ///  - `read_consistency::lease`: a leader whose lease holds answers with no round
  ///    (requires node_config::lease_reads, else fails with not_supported).
  ///  - `read_consistency::local`: completes at once with the applied index (no guarantee).
  /// Errors (a read changes nothing, so each may be retried): not_leader, busy, timeout,
  /// leadership_lost, stopped, not_supported, transferring.
  template <class Handler>
  void read_index(Handler&& done, read_consistency mode = read_consistency::linearizable) {
    read_completion c(std::forward<Handler>(done));
    if (stopped_) return c(errc::stopped, 0);
    ++counters_.reads;
    if (mode == read_consistency::local) return c(std::error_code{}, applied_);
    if (mode == read_consistency::lease && !cfg_.lease_reads) return c(errc::not_supported, 0);
    if (reads_.size() + read_batch_.size() >= cfg_.max_pending_reads) return c(errc::busy, 0);
    const bool lease = mode == read_consistency::lease;
    if (role_ == role::leader) {
      leader_read(pending_read{std::move(c), no_node, 0}, lease);
    } else if (leader_ != no_node && cfg_.forward_proposals) {
      read_batch_.push_back(std::move(c));
      read_batch_lease_ = read_batch_lease_ || lease;
      if (batch_depth_ == 0) send_read_batch();
    } else {
      return c(errc::not_leader, 0);
    }
    after_input();
  }

  /// Hands leadership to `to` (or, with `to = any_node`, the most up-to-date follower;
  /// thesis §3.10). The leader stops accepting proposals (they fail with transferring,
  /// not applied), brings the target's log up to date, then sends it TimeoutNow, on which
  /// it campaigns at once (voters set aside leader stickiness for it). `done(error_code)`
  /// runs with success once this node sees the target lead; with timeout if that has not
  /// happened within an election timeout (this node then leads on and accepts proposals
  /// again); with not_leader, unknown_member or transferring (one transfer at a time) at
  /// once; with leadership_lost if another node took over instead.
  template <class Handler>
  void transfer_leadership(node_id to, Handler&& done) {
    transfer_completion c(std::forward<Handler>(done));
    if (stopped_) return c(errc::stopped);
    if (role_ != role::leader) return c(errc::not_leader);
    if (transfer_) return c(errc::transferring);
    if (to == cfg_.id) return c(std::error_code{});
    if (to == any_node) to = best_follower();
    if (to == no_node || !find_peer(to) || !config_now().is_voter(to)) return c(errc::unknown_member);
    ++counters_.transfers;
    transfer_.emplace(transfer_state{to, clock_.now() + cfg_.election_timeout, std::move(c), false});
    events_.emit(events::transfer_started{to});
    // A new leader elected by TimeoutNow does not wait for our lease to run out (its
    // voters ignore stickiness), so this leader answers no more reads from it.
    reads_.drop_lease();
    continue_transfer();
    after_input();
  }

  /// Changes the cluster's membership (thesis chapter 4) by any set of `changes`, on the
  /// leader. A new voter first joins as a learner and is caught up in rounds (thesis
  /// §4.2.1: a round replicates what the leader held when it began; one that takes less
  /// than an election timeout ends the catch-up), as is a learner being promoted. Then a
  /// change of the voters goes through C_old,new, where elections and commitment need a
  /// majority of each set, and on to C_new as soon as C_old,new commits (Raft paper §6);
  /// a change of learners only goes to C_new at once. A leader that is not in C_new
  /// manages the cluster until C_new commits, then hands over and steps down (§4.2.2).
  /// `done(error_code, index)` runs once C_new commits, with its index. Refused at once
  /// (not applied): not_leader; transferring; membership_change_in_progress while another
  /// change is not finished (one at a time, including one a previous leader began); busy
  /// while a new leader has not committed an entry of its term; invalid_membership_change
  /// for a change that does not fit the configuration (adding a member twice, promoting a
  /// voter, removing a non-member, leaving no voter); too_large when the configuration
  /// would not fit one AppendEntries. Later: catch_up_failed when a server did not catch
  /// up within `catch_up_rounds` rounds or `catch_up_timeout` (a server added as a voter
  /// stays a learner); leadership_lost or shutting_down (outcome unknown: a new leader
  /// may complete the change, or it is rolled back, never half done).
  template <class Handler>
  void change_membership(std::vector<member_change> changes, Handler&& done) {
    membership_completion c(std::forward<Handler>(done));
    if (stopped_) return c(errc::stopped, 0);
    if (role_ != role::leader) return c(errc::not_leader, 0);
    if (transfer_) return c(errc::transferring, 0);
    if (RAFTKIT_BROKEN(one_change_at_a_time)) {
      // Test-only broken variant: a change starts while another is in flight.
      if (change_) finish_change(errc::leadership_lost, 0);
    } else if (change_ || change_in_log()) {
      return c(errc::membership_change_in_progress, 0);
    }
    if (commit_ < term_start_) return c(errc::busy, 0);
    auto plan = plan_change(changes);
    if (!plan) return c(errc::invalid_membership_change, 0);
    membership widest = plan->target;  // the largest entry this change appends: C_old,new
    widest.outgoing = config_now().voters;
    for (const auto& m : config_now().learners)
      if (!widest.contains(m.id)) widest.learners.push_back(m);
    if (!fits_one_message(detail::encode_membership(widest).size())) return c(errc::too_large, 0);
    if (plan->catch_up.empty() && plan->target.same_members(config_now())) return c(std::error_code{}, config_now().index);
    ++counters_.membership_changes;
    change_ = std::move(*plan);
    change_->done = std::move(c);
    change_->deadline = clock_.now() + cfg_.catch_up_timeout;
    // New servers join as learners first: they receive the log while they catch up.
    membership with_learners{config_now().voters, config_now().learners, {}, 0};
    for (const auto& m : change_->target.voters)
      if (!config_now().contains(m.id)) with_learners.learners.push_back(m);
    for (const auto& m : change_->target.learners)
      if (!config_now().contains(m.id)) with_learners.learners.push_back(m);
    if (!with_learners.same_members(config_now()) && !change_->catch_up.empty()) {
      change_->learners_entry = append_config(std::move(with_learners));
      change_->appended = true;
      for (auto& p : peers_) send_append(p);
    }
    continue_change();
    after_input();
  }

  /// Takes a snapshot of the state applied so far now (snapshots_enabled only, else
  /// not_supported); `done(error_code, index)` runs once it is durable, with its index.
  /// busy while another snapshot is being written.
  template <class Handler>
  void snapshot_now(Handler&& done) {
    detail::unique_function<void(std::error_code, index_t)> c(std::forward<Handler>(done));
    if constexpr (!snapshots_enabled) {
      return c(errc::not_supported, 0);
    } else {
      if (stopped_) return c(errc::stopped, 0);
      if (snapshot_job_) return c(errc::busy, 0);
      if (config_at_applied().voters.empty()) return c(errc::busy, 0);  // see maybe_snapshot
      if (snapshot_ && snapshot_->index >= applied_) return c(std::error_code{}, snapshot_->index);
      snapshot_waiters_.push_back(std::move(c));
      take_snapshot();
      after_input();
    }
  }

  /// Runs snapshot writes elsewhere: `exec(id, job)` must run `job()` (on any thread) and
  /// then call `snapshot_written(id, result)` on the engine's thread. Without one, a
  /// snapshot is written inline, on the engine's thread.
  void set_snapshot_executor(detail::unique_function<void(std::uint64_t, snapshot_job)> exec) {
    snapshot_executor_ = std::move(exec);
  }

  /// Sends this node's events (raftkit/events.hpp) to `sink`, on the thread that drives the
  /// node, until another call; nullptr (the default) turns them off, and then each event
  /// costs one branch. The sink must outlive the node (or be detached first).
  void set_event_sink(event_sink* sink) noexcept { events_.attach(sink, cfg_.id, &role_, &term_, &leader_); }

  /// A snapshot write handed to the executor finished with `ec` (see set_snapshot_executor).
  void snapshot_written(std::uint64_t id, std::error_code ec) {
    if constexpr (snapshots_enabled) {
      if (stopped_ || !snapshot_job_ || snapshot_job_->id != id) return;
      finish_snapshot(ec);
      after_input();
    } else {
      (void)id;
      (void)ec;
    }
  }

  // ---------------------------------------------------------------- observers

  node_id id() const noexcept { return cfg_.id; }
  raftkit::role role_now() const noexcept { return role_; }
  bool is_leader() const noexcept { return role_ == role::leader; }
  term_t term() const noexcept { return term_; }
  /// The leader this node knows for its term (itself when leader), or no_node.
  node_id leader() const noexcept { return leader_; }
  index_t commit_index() const noexcept { return commit_; }
  index_t applied_index() const noexcept { return applied_; }
  /// Why the node stopped (shutting_down, io_error, apply_failed...), or empty while it runs.
  std::error_code error() const noexcept { return stop_error_; }
  /// When the node halted because the state machine threw (apply_failed): what it threw.
  std::exception_ptr apply_exception() const noexcept { return apply_exception_; }
  /// Whether the node has stopped (by stop(), destruction or a failure).
  bool stopped() const noexcept { return stopped_; }
  const node_config& config() const noexcept { return cfg_; }
  const node_counters& counters() const noexcept { return counters_; }
  /// The configuration this node uses: the latest in its log, committed or not (thesis
  /// §4.1); empty (no voter) on a joining node that has not been added yet.
  const membership& members() const noexcept { return config_now(); }
  /// Whether a membership change is under way: this leader's, or one in its log.
  bool membership_change_pending() const noexcept { return change_.has_value() || change_in_log(); }

  /// On a leader, the highest index known durable on follower `peer` (its match index);
  /// 0 elsewhere or for an unknown peer.
  index_t match_index(node_id peer) const noexcept {
    if (role_ != role::leader) return 0;
    for (const auto& p : peers_)
      if (p.id == peer) return p.match;
    return 0;
  }

  /// A snapshot of the node's state, with per-peer progress on the leader.
  node_status status() const {
    node_status s;
    s.id = cfg_.id;
    s.role = role_;
    s.term = term_;
    s.leader = leader_;
    s.commit_index = commit_;
    s.applied_index = applied_;
    s.last_log_index = log_.last_index();
    s.durable_index = log_.durable_index();
    s.pending_proposals = pending_.size() + forwards_.size();
    s.uncommitted_bytes = uncommitted_bytes();
    s.pending_reads = reads_.size() + read_batch_.size();
    for (const auto& [rid, b] : read_forwards_) s.pending_reads += b.done.size();
    s.pre_vote = cfg_.pre_vote;
    s.check_quorum = cfg_.check_quorum;
    s.first_log_index = log_.first_index();
    if constexpr (snapshots_enabled) {
      if (snapshot_) {
        s.snapshot_index = snapshot_->index;
        s.snapshot_term = snapshot_->term;
        s.snapshot_size = snapshot_->size;
      }
    }
    if (role_ == role::leader) {
      s.lease_valid = cfg_.lease_reads && reads_.lease_valid(clock_.now());
      s.lease_until = reads_.lease_until();
      s.transfer_target = transfer_ ? transfer_->target : no_node;
    }
    if (role_ == role::leader) {
      for (const auto& p : peers_) {
        s.peers.push_back(peer_status{p.id, p.match, p.next, p.inflight.size(), p.probing});
      }
    }
    return s;
  }

  /// The earliest time at which `tick` has work to do; time_point::max() once stopped
  /// (a stopped node has nothing left to do, and a driver must not spin on it).
  time_point next_deadline() const noexcept {
    if (stopped_) return time_point::max();
    time_point t = election_deadline_;
    if (role_ == role::leader) t = std::min(heartbeat_deadline_, check_quorum_deadline_);
    if (transfer_) t = std::min(t, transfer_->deadline);
    if (change_ && !change_->entry) t = std::min(t, change_->deadline);
    t = std::min(t, forwards_.next_deadline());
    if (!read_forwards_.empty()) t = std::min(t, read_forwards_.begin()->second.deadline);
    if (applied_ < commit_) t = std::min(t, clock_.now());
    return t;
  }

  StateMachine& state_machine() noexcept { return sm_; }
  const StateMachine& state_machine() const noexcept { return sm_; }
  LogStore& log() noexcept { return log_; }
  const LogStore& log() const noexcept { return log_; }
  Transport& transport() noexcept { return transport_; }
  Clock& clock() noexcept { return clock_; }
  SnapshotStore& snapshot_store() noexcept { return snaps_; }

 private:
  using peer = detail::progress;

  struct pending_proposal {
    index_t index = 0;
    term_t term = 0;
    completion done;
  };
  /// Entries this leader appended in its term and has not committed, for the bound on
  /// uncommitted bytes: `total` is the running sum of wire sizes up to `index`.
  struct uncommitted_mark {
    index_t index = 0;
    std::uint64_t total = 0;
  };

  // ---------------------------------------------------------------- dispatch

  void step(message&& m) {
    switch (m.type) {
      case message_type::forward_proposal: return on_forward_proposal(m);
      case message_type::forward_reply: return on_forward_reply(m);
      case message_type::read_index: return on_read_index(m);
      case message_type::read_index_reply: return on_read_index_reply(m);
      default: break;
    }
    const bool pre = (m.flags & message_flags::pre_vote) != 0;
    // A pre-vote never changes a term: the request carries the term the candidate would
    // move to, and a granted reply that same term (thesis §9.6).
    if (pre && m.type == message_type::request_vote) return on_pre_vote_request(m);
    if (pre && m.type == message_type::request_vote_reply && !m.reject) return on_pre_vote_reply(m);
    // Leader stickiness (thesis §4.2.3): while this node hears from a current leader, a
    // request to elect another is ignored, not even answered with our term, unless the
    // leader itself asked for the election (a transfer).
    if (m.type == message_type::request_vote && m.term > term_ && !(m.flags & message_flags::transfer) &&
        sticky()) {
      ++counters_.votes_ignored;
      return;
    }
    // §5.1: a message with a higher term makes this node a follower of that term,
    // whatever its role. Only AppendEntries names the new leader.
    if (m.term > term_) {
      const bool from_leader = m.type == message_type::append_entries || m.type == message_type::install_snapshot;
      if (!become_follower(m.term, from_leader ? m.from : no_node)) return;
      events_.changed((m.flags & message_flags::transfer) ? event_reason::transfer : event_reason::higher_term);
    } else if (m.term < term_) {
      // A stale sender learns the newer term from our reply (§5.1); replies are dropped.
      if (m.type == message_type::request_vote) return reply_vote(m.from, false, term_, false);
      if (m.type == message_type::append_entries) return reply_append_reject(m.from, 0, 0, 0);
      return;
    }
    switch (m.type) {
      case message_type::request_vote: return on_request_vote(m);
      case message_type::request_vote_reply: return on_vote_reply(m);
      case message_type::append_entries: return on_append_entries(m);
      case message_type::append_entries_reply: return on_append_reply(m);
      case message_type::install_snapshot: return on_install_snapshot(m);
      case message_type::install_snapshot_reply: return on_install_snapshot_reply(m);
      case message_type::timeout_now:
        // The leader of this term hands over: campaign now, without waiting and without a
        // pre-vote, as a transfer voters do not refuse for stickiness (§3.10).
        if (role_ != role::leader && m.from == leader_) start_election(true);
        return;
      default: ++counters_.messages_ignored; return;
    }
  }

  // ---------------------------------------------------------------- elections (§5.2)

  /// The election timer fired: pre-vote first when configured (thesis §9.6).
  void campaign() {
    // A learner, a joining server, or one removed: it waits to hear from a leader. One
    // that only a C_new not yet committed removes is still needed (thesis §4.2.2, Figure
    // 4.6): its vote may be the one C_old,new lacks, and it holds the newest log.
    if (!is_member() && !needed_until_removal_commits()) return reset_election_deadline();
    if (cfg_.pre_vote) return start_pre_vote();
    start_election(false);
  }

  /// Asks every voter whether it would vote for us in term_ + 1, without moving there.
  void start_pre_vote() {
    ++counters_.pre_votes;
    role_ = role::pre_candidate;
    leader_ = no_node;
    votes_.assign(1, {cfg_.id, true});
    reset_election_deadline();
    events_.campaign(true, term_ + 1, event_reason::election_timeout);
    if (election_result() == detail::vote_result::won) return start_election(false);
    for (auto& p : peers_) {
      if (!quorum_.is_voter(p.id)) continue;
      message m = make(message_type::request_vote, p.id);
      m.term = term_ + 1;
      m.flags = message_flags::pre_vote;
      m.log_index = log_.last_index();
      m.log_term = log_.term_at(log_.last_index());
      transport_send(std::move(m));
    }
  }

  void start_election(bool transfer) {
    if (!is_member() && !needed_until_removal_commits()) return;  // see campaign()
    ++counters_.elections;
    role_ = role::candidate;
    leader_ = no_node;
    // Proposals forwarded to the old leader will get no answer we could wait for: their
    // outcome is unknown now, not after forward_timeout.
    fail_forwards(errc::leadership_lost);
    // Durable before any message of the new term (Fig. 2); on failure nothing is sent.
    if (!persist_hard_state(term_ + 1, cfg_.id)) return;
    votes_.assign(1, {cfg_.id, true});
    reset_election_deadline();
    events_.campaign(false, term_, transfer ? event_reason::transfer : cfg_.pre_vote ? event_reason::pre_vote_won : event_reason::election_timeout);
    if (election_result() == detail::vote_result::won) return become_leader();
    for (auto& p : peers_) {
      if (!quorum_.is_voter(p.id)) continue;
      message m = make(message_type::request_vote, p.id);
      m.log_index = log_.last_index();
      m.log_term = log_.term_at(log_.last_index());
      if (transfer) m.flags = message_flags::transfer;
      transport_send(std::move(m));
    }
  }

  /// §5.4.1 election restriction: a candidate's log is at least as up-to-date as ours,
  /// comparing the last entries' terms first, then the indexes.
  bool candidate_up_to_date(const message& m) const {
    const index_t my_last = log_.last_index();
    const term_t my_last_term = log_.term_at(my_last);
    if (RAFTKIT_BROKEN(election_restriction)) return m.log_index >= my_last;  // test-only: indexes alone
    return m.log_term > my_last_term || (m.log_term == my_last_term && m.log_index >= my_last);
  }

  void on_request_vote(const message& m) {
    // §5.2: at most one vote per term, first come first served (persisted in vote_).
    const bool can_vote = vote_ == no_node || vote_ == m.from;
    const bool grant = can_vote && candidate_up_to_date(m) &&
                       (role_ == role::follower || role_ == role::pre_candidate);
    if (grant) {
      // Durable before the reply leaves (§5.2, Fig. 2); on failure no reply leaves.
      if (!persist_hard_state(term_, m.from)) return;
      reset_election_deadline();
    }
    reply_vote(m.from, grant, term_, false);
  }

  /// A pre-vote is granted to a candidate whose log is up to date and whose proposed term
  /// is above ours, unless we still hear from a leader (stickiness). Nothing is persisted:
  /// a pre-vote binds no one.
  void on_pre_vote_request(const message& m) {
    const bool heard_leader = sticky();
    const bool grant = m.term > term_ && candidate_up_to_date(m) && !heard_leader;
    if (heard_leader) ++counters_.votes_ignored;
    reply_vote(m.from, grant, grant ? m.term : term_, true);
  }

  void reply_vote(node_id to, bool grant, term_t term, bool pre) {
    message r = make(message_type::request_vote_reply, to);
    r.term = term;
    r.reject = !grant;
    if (pre) r.flags = message_flags::pre_vote;
    transport_send(std::move(r));
  }

  void on_pre_vote_reply(const message& m) {
    if (role_ != role::pre_candidate || m.term != term_ + 1) return;
    record_vote(m.from, true);
    if (election_result() == detail::vote_result::won) start_election(false);
  }

  void on_vote_reply(const message& m) {
    // Only replies of the current term count (stale ones were dropped in step()); a
    // refused pre-vote of our term counts against the pre-candidacy.
    const bool pre = (m.flags & message_flags::pre_vote) != 0;
    if (pre ? role_ != role::pre_candidate : role_ != role::candidate) return;
    record_vote(m.from, !m.reject);
    const auto r = election_result();
    if (r == detail::vote_result::won && !pre) become_leader();
    if (r == detail::vote_result::lost && pre) {
      role_ = role::follower;  // wait for the next timeout; the term never moved
    }
    if (r == detail::vote_result::lost) events_.rejected();
  }

  void record_vote(node_id from, bool granted) {
    if (!quorum_.is_voter(from)) return;
    for (const auto& v : votes_)
      if (v.first == from) return;
    votes_.push_back({from, granted});
  }
  detail::vote_result election_result() const {
    return detail::tally(quorum_, [&](node_id id) -> std::optional<bool> {
      for (const auto& v : votes_)
        if (v.first == id) return v.second;
      return std::nullopt;
    });
  }

  /// Whether this node still hears from a leader, so it refuses to help elect another
  /// (thesis §4.2.3): a follower within an election timeout of the leader's last message;
  /// a leader under check-quorum (which steps down once a majority is silent that long).
  bool sticky() const {
    if (!cfg_.leader_stickiness) return false;
    if (role_ == role::leader) return cfg_.check_quorum;
    const time_point now = clock_.now();
    // With leases a restarted node cannot know when it last heard a leader: it assumes
    // just now, so a lease granted before its crash is still honoured.
    if (cfg_.lease_reads && now < boot_time_ + cfg_.election_timeout) return true;
    return leader_ != no_node && now < last_leader_contact_ + cfg_.election_timeout;
  }

  void become_leader() {
    RAFTKIT_ASSERT(role_ == role::candidate, "only a candidate becomes leader");
    role_ = role::leader;
    leader_ = cfg_.id;
    ++counters_.elections_won;
    events_.won();
    const index_t last = log_.last_index();
    const time_point now = clock_.now();
    for (auto& p : peers_) {
      p.reset(last + 1);
      p.last_reply = now;  // a grace period of one election timeout for check-quorum
    }
    timeout_now_sent_ = false;
    uncommitted_.clear();
    uncommitted_total_ = uncommitted_committed_ = 0;
    reads_.reset_rounds();
    for (auto& send : sends_) send.reset();
    // §5.4.2 and §8: a leader commits entries of earlier terms only through an entry of
    // its own term, so it appends a no-op at once. Reads wait until it commits (§6.4).
    term_start_ = append_local(entry_type::noop, shared_bytes{});
    heartbeat_deadline_ = now + cfg_.heartbeat_interval;
    check_quorum_deadline_ = now + cfg_.heartbeat_interval;
    begin_read_round();
    for (auto& p : peers_) send_append(p);
    confirm_read_rounds();  // a single voter confirms its round at once
  }

  /// Becomes a follower of `term` (>= ours), following `leader` if known. Returns false
  /// when the new term could not be persisted (the node halted; nothing may be sent).
  bool become_follower(term_t term, node_id leader) {
    const bool was_leader = role_ == role::leader;
    if (term > term_) {
      if (!persist_hard_state(term, no_node)) return false;
      fail_forwards(errc::leadership_lost);
    }
    role_ = role::follower;
    if (leader_ != leader) fail_read_forwards(errc::leadership_lost);
    leader_ = leader;
    if (was_leader) {
      fail_pending(errc::leadership_lost);
      if (change_) finish_change(change_->appended ? errc::leadership_lost : errc::not_leader, 0);
      // Reads not yet confirmed cannot be now; confirmed ones keep their index.
      reads_.clear_unanswered([&](pending_read& r) { fail_read(r, errc::leadership_lost); });
      reads_.reset_rounds();
    }
    // A transfer ends when the new leader shows itself (its first message may be its
    // RequestVote, which names no leader yet).
    if (transfer_ && leader != no_node) end_transfer(leader == transfer_->target ? std::error_code{} : make_error_code(errc::leadership_lost));
    reset_election_deadline();
    return true;
  }

  /// Check-quorum (thesis §6.2): checked at every heartbeat, a leader that has not heard
  /// from a majority within an election timeout steps down.
  void check_quorum(time_point now) {
    check_quorum_deadline_ = now + cfg_.heartbeat_interval;
    if (!cfg_.check_quorum) return;
    const bool active = detail::quorum_active(quorum_, [&](node_id id) {
      if (id == cfg_.id) return true;
      const peer* p = find_peer(id);
      return p && now - p->last_reply < cfg_.election_timeout;
    });
    if (active) return;
    ++counters_.quorum_lost;
    become_follower(term_, no_node);
    events_.changed(event_reason::lost_quorum);
  }

  // ---------------------------------------------------------------- leadership transfer (§3.10)

  /// The follower whose log matches ours furthest (ties: the lowest id), or no_node.
  node_id best_follower() const {
    const peer* best = nullptr;
    for (const auto& p : peers_)
      if (config_now().is_voter(p.id) && (!best || p.match > best->match)) best = &p;
    return best ? best->id : no_node;
  }

  /// Sends TimeoutNow once the target holds our whole log; until then replication
  /// catches it up.
  void continue_transfer() {
    if (!transfer_ || transfer_->sent || role_ != role::leader) return;
    peer* p = find_peer(transfer_->target);
    if (p->match < log_.last_index()) return send_append(*p);
    transfer_->sent = true;
    timeout_now_sent_ = true;
    transport_send(make(message_type::timeout_now, p->id));
  }

  void end_transfer(std::error_code ec) {
    events_.emit(events::transfer_ended{transfer_->target, ec});
    transfer_completion done = std::move(transfer_->done);
    transfer_.reset();
    done(ec);
  }

  // ---------------------------------------------------------------- replication (§5.3)

  void on_append_entries(message& m) {
    RAFTKIT_ASSERT(role_ != role::leader, "two leaders in one term");
    if (role_ != role::follower || leader_ != m.from) become_follower(term_, m.from);
    events_.changed(event_reason::leader_found);
    leader_boot_ = m.boot_id;
    last_leader_contact_ = clock_.now();
    leader_context_ = std::max(leader_context_, m.context);
    reset_election_deadline();

    const index_t prev = m.log_index;
    const index_t last = log_.last_index();
    if (prev > last) return reply_append_reject(m.from, prev, last + 1, 0);
    // Entries at or below commit are known to match the leader (leader completeness,
    // §5.4.3); they may be compacted here, so they are not compared.
    if (prev > commit_ && log_.term_at(prev) != m.log_term) {
      // §5.3 log matching fails at prev: hint the first index of the conflicting term
      // so the leader skips the whole term in one round trip.
      const term_t t = log_.term_at(prev);
      index_t first = prev;
      while (first - 1 > commit_ && first - 1 >= log_.first_index() && log_.term_at(first - 1) == t)
        --first;
      return reply_append_reject(m.from, prev, first, t);
    }

    // Append what is new; truncate only a suffix that really conflicts (§5.3). A stale
    // or duplicated message finds every entry matching and changes nothing.
    auto& es = m.entries.items();
    if (RAFTKIT_BROKEN(stale_truncate) && !es.empty() && prev + es.size() < log_.last_index() && prev >= commit_) {
      // Test-only broken variant: replaces everything after prev with the message's
      // entries, so a stale or reordered message cuts matching entries off.
      log_.truncate_after(std::max(prev, commit_));
      drop_configs_after(std::max(prev, commit_));
    }
    std::size_t k = 0;
    for (; k < es.size(); ++k) {
      const entry& e = es[k];
      if (e.index <= commit_ || e.index < log_.first_index()) continue;
      if (e.index > log_.last_index()) break;
      if (log_.term_at(e.index) == e.term) continue;
      RAFTKIT_ASSERT(e.index > commit_, "conflict below the commit index");
      events_.emit(events::log_truncated{e.index - 1, log_.last_index() - (e.index - 1), m.from});
      log_.truncate_after(e.index - 1);
      drop_configs_after(e.index - 1);
      break;
    }
    if (k < es.size()) {
      log_.append(std::span<const entry>(es.data() + k, es.size() - k));
      ++counters_.log_appends;
      bool config = false;
      for (std::size_t j = k; j < es.size(); ++j)
        if (es[j].type == entry_type::config) config = note_config_entry(es[j]) || config;
      if (config) refresh_config(true);
    }

    // What this message verified: our log matches the leader's up to last_new. Within
    // one term that stays true (a leader only appends to its own log, and nothing else
    // can truncate ours in its term), so it accumulates; a new term starts it again from
    // 0 (see set_term), because another leader may have overwritten entries meanwhile.
    const index_t last_new = prev + es.size();
    verified_ = std::max(verified_, last_new);
    note_leader_commit(m.commit);
    ack_durable(true);
  }

  /// Follower commit (Fig. 2): min(leader commit, last entry known to match the leader's
  /// log). Both accumulate over the term, so an index the leader named before the entries
  /// arrived (a read index) commits them when they do, with no further message.
  void note_leader_commit(index_t c) {
    leader_commit_ = std::max(leader_commit_, c);
    commit_ = std::max(commit_, std::min(leader_commit_, verified_));
  }

  /// Acknowledges to the leader what is both verified against its log in this term and
  /// durable here; a follower never acknowledges an entry it could lose in a crash.
  void ack_durable(bool always) {
    if (role_ != role::follower || leader_ == no_node) return;
#ifdef RAFTKIT_TEST_BREAKS
    // Test-only broken variant: verification from an earlier term is trusted (the
    // behaviour before hardening finding 1).
    const index_t verified = RAFTKIT_BROKEN(ack_across_terms) ? std::max(verified_, stale_verified_) : verified_;
#else
    const index_t verified = verified_;
#endif
    const index_t match = std::min(verified, log_.durable_index());
    if (!always && match <= acked_) return;
    acked_ = match;
    message r = make(message_type::append_entries_reply, leader_);
    r.log_index = match;
    r.received_index = verified;
    r.context = leader_context_;
    transport_send(std::move(r));
  }

  void reply_append_reject(node_id to, index_t rejected, index_t hint_index, term_t hint_term) {
    message r = make(message_type::append_entries_reply, to);
    r.reject = true;
    r.log_index = rejected;
    r.hint_index = hint_index;
    r.hint_term = hint_term;
    if (to == leader_) r.context = leader_context_;
    transport_send(std::move(r));
  }

  /// A leader's bookkeeping for any reply of its term from a follower: when it last
  /// answered (check-quorum) and the read round it echoes. Null when not for a leader.
  peer* reply_from(const message& m) {
    if (role_ != role::leader) return nullptr;
    peer* p = find_peer(m.from);
    if (!p) return nullptr;
    p->last_reply = clock_.now();
    // Any reply of our term (a rejection too) shows the follower knew no newer leader
    // when it answered: it echoes the newest round it had seen from us (§6.4).
    if (m.context > p->read_ack) {
      p->read_ack = m.context;
      confirm_read_rounds();
    }
    return p;
  }

  void on_append_reply(const message& m) {
    peer* p = reply_from(m);
    if (!p) return;
    if (p->note_boot(m.boot_id) && !p->snapshot) {
      // It restarted: resume from what it had made durable (match), since entries we
      // counted as received may have died with the process, and the window may be full
      // of messages whose replies will never come.
      p->received = p->match;
      p->to_probe(p->match + 1);
    }
    if (m.reject) {
      if (!p->is_current_rejection(m.log_index)) return;  // stale or reordered
      p->received = p->match;  // what we thought it holds, it does not
      p->to_probe(next_after_rejection(*p, m));
      ++counters_.rejections;
    } else {
      // A reordered old reply cannot move match backwards.
      const index_t last = log_.last_index();
      p->note_received(std::min(m.received_index, last));
      p->acknowledge(std::min(m.log_index, last));
    }
    maybe_commit();
    send_append(*p);
    if (transfer_ && transfer_->target == p->id) continue_transfer();
  }

  /// Where to resume after a rejection, from the follower's conflict hint.
  index_t next_after_rejection(const peer& p, const message& m) const {
    index_t next = m.hint_index;
    if (m.hint_term != 0) {
      // Find the last entry of hint_term in our log at or below the rejected index; if
      // we have that term, the follower matches up to it (terms rise along a log, so
      // a binary search finds it).
      index_t lo = std::max(p.match, log_.first_index() - 1);
      index_t hi = std::min(m.log_index, log_.last_index());
      while (lo < hi) {  // last index in [lo, hi] with term <= hint_term
        const index_t mid = lo + (hi - lo + 1) / 2;
        if (log_.term_at(mid) <= m.hint_term) lo = mid; else hi = mid - 1;
      }
      if (lo > p.match && log_.term_at(lo) == m.hint_term) next = lo + 1;
    }
    return std::clamp(next, p.match + 1, log_.last_index() + 1);
  }

  /// Sends entries to `p` within its window: many messages in flight when replicating,
  /// one at a time when probing for the match point.
  void send_append(peer& p) {
    if (role_ != role::leader) return;
    const index_t last = log_.last_index();
    while (p.can_send(cfg_.max_inflight_messages, cfg_.max_inflight_bytes)) {
      if (!p.probing && p.next > last) return;
      const index_t prev = p.next - 1;
      if (prev + 1 < log_.first_index()) {
        // The follower needs entries this log no longer holds: send it the snapshot.
        if constexpr (snapshots_enabled) start_snapshot_send(p);
        return;
      }
      message m = make(message_type::append_entries, p.id);
      m.log_index = prev;
      m.log_term = log_.term_at(prev);
      m.commit = commit_;
      std::size_t bytes = 0;
      auto& es = m.entries.items();
      for (index_t i = p.next; i <= last && es.size() < cfg_.max_entries_per_message; ++i) {
        const entry& e = log_.at(i);
        if (!es.empty() && bytes + e.wire_size() > cfg_.max_bytes_per_message) break;
        bytes += e.wire_size();
        es.push_back(e);
      }
      if constexpr (detail::failable_store<LogStore>) {
        if (log_.error()) return;  // an entry could not be read back: halts after this input
      }
      const index_t sent_last = prev + es.size();
      p.sent(sent_last, bytes);
      p.told_commit(commit_, sent_last);
      ++counters_.appends_sent;
      transport_send(std::move(m));
      if (p.probing) return;
    }
  }

  /// A heartbeat asserts leadership and carries the commit index (§5.2). To a probing
  /// peer it re-sends the probe; it also recovers a window whose messages were lost
  /// (not a window whose entries arrived and wait for the follower's disk).
  void heartbeat(peer& p) {
    if constexpr (snapshots_enabled) {
      if (p.snapshot) {
        snapshot_heartbeat(p);
        return send_heartbeat(p);
      }
    }
    if (p.stalled()) p.to_probe(p.resume_point());
    if (p.probing) {
      p.probe_sent = false;
      return send_append(p);
    }
    p.mark_heartbeat();
    send_heartbeat(p);
    send_append(p);
  }

  /// An empty AppendEntries at what `p` is known to hold: it carries the commit index
  /// and the current read round, and the follower always answers it.
  void send_heartbeat(peer& p) {
    message m = make(message_type::append_entries, p.id);
    m.log_index = p.match;
    m.log_term = log_.term_at(p.match);
    m.commit = std::min(commit_, p.match);
    p.told_commit(commit_, p.match);
    transport_send(std::move(m));
  }

  /// A follower learns of a commit from the next AppendEntries; one that waits for it (a
  /// proposal it forwarded) and would get none soon, because nothing is in flight to it,
  /// is told at once with an empty one. Under load the next pipelined append carries the
  /// index, so this adds no message there; it runs once per input, after all its sends.
  void notify_commit_waiters() {
    for (auto& p : peers_)
      if (p.commit_notice_due(commit_)) send_heartbeat(p);
  }

  /// §5.4.2: advance commit to the highest index durable on a majority, but only by
  /// counting replicas of an entry from the current term.
  void maybe_commit() {
    if (role_ != role::leader) return;
    const index_t self = std::min(log_.durable_index(), log_.last_index());
    const index_t n = detail::committed_index(quorum_, [&](node_id id) {
      if (id == cfg_.id) return self;
      const peer* p = find_peer(id);
      return p ? p->match : index_t{0};
    }, quorum_scratch_);
    if (n > commit_ && commit_rule_allows(n)) {
      const bool first_of_term = commit_ < term_start_ && n >= term_start_;
      commit_ = n;
      while (!uncommitted_.empty() && uncommitted_.front().index <= commit_)
        uncommitted_committed_ = uncommitted_.pop_front().total;
      if (first_of_term) serve_reads_waiting_commit();
    }
  }

  bool commit_rule_allows(index_t n) const {
    if (RAFTKIT_BROKEN(commit_rule)) return true;  // test-only: any term's entry counts
    return log_.term_at(n) == term_;
  }

  // ---------------------------------------------------------------- proposals

  void flush_batch() {
    if (!batch_.empty() && role_ == role::leader && !stopped_) {
      log_.append(std::span<const entry>(batch_.data(), batch_.size()));
      ++counters_.log_appends;
      batch_.clear();
      for (auto& p : peers_) send_append(p);
    }
    batch_.clear();
    send_forward_batch();
    send_read_batch();
    start_batched_read_round();
    after_input();
  }

  index_t append_local(entry_type type, shared_bytes payload) {
    entry e{term_, log_.last_index() + 1, type, std::move(payload)};
    note_uncommitted(e);
    log_.append(std::span<const entry>(&e, 1));
    ++counters_.log_appends;
    return e.index;
  }

  /// Whether an entry with a `payload_size`-byte payload fits in one AppendEntries.
  bool fits_one_message(std::size_t payload_size) const noexcept {
    return entry::wire_overhead + payload_size <= cfg_.max_bytes_per_message;
  }

  // Back-pressure on a leader: the bytes it appended in this term and has not committed.
  std::uint64_t uncommitted_bytes() const noexcept { return uncommitted_total_ - uncommitted_committed_; }
  bool room_for_uncommitted(std::size_t payload_size) const noexcept {
    return uncommitted_bytes() + entry::wire_overhead + payload_size <= cfg_.max_uncommitted_bytes;
  }
  void note_uncommitted(const entry& e) {
    uncommitted_total_ += e.wire_size();
    uncommitted_.push_back({e.index, uncommitted_total_});
  }

  /// Queues a proposal for the leader; outside batch() it leaves at once.
  void forward(std::span<const std::byte> command, completion c) {
    if (forwards_.size() + forward_batch_done_.size() >= cfg_.max_pending_proposals)
      return refuse(c, errc::busy);
    const std::size_t bytes = entry::wire_overhead + command.size();
    if (!forward_batch_.empty() && forward_batch_bytes_ + bytes > cfg_.max_bytes_per_message)
      send_forward_batch();
    forward_batch_.push_back(entry{0, 0, entry_type::normal, shared_bytes::copy_of(command)});
    forward_batch_done_.push_back(std::move(c));
    forward_batch_bytes_ += bytes;
    ++counters_.forwarded;
    if (batch_depth_ == 0 || forward_batch_.size() >= cfg_.max_entries_per_message) send_forward_batch();
  }

  /// Sends the proposals queued for the leader as one forward_proposal.
  void send_forward_batch() {
    if (forward_batch_.empty()) return;
    std::vector<completion> done = std::move(forward_batch_done_);
    forward_batch_done_.clear();
    forward_batch_bytes_ = 0;
    if (stopped_ || role_ != role::follower || leader_ == no_node) {
      // The leader went away while the batch filled (inside batch()): nothing left.
      forward_batch_.clear();
      for (auto& c : done) refuse(c, errc::not_leader);
      return;
    }
    const std::uint64_t first = next_request_id_ + 1;
    next_request_id_ += forward_batch_.size();
    message m = make(message_type::forward_proposal, leader_);
    m.request_id = first;
    for (auto& e : forward_batch_) m.entries.push_back(std::move(e));
    forward_batch_.clear();
    forwards_.add(first, {std::move(done), clock_.now() + cfg_.forward_timeout, leader_boot_});
    transport_send(std::move(m));
  }

  void on_forward_proposal(message& m) {
    message r = make(message_type::forward_reply, m.from);
    r.request_id = m.request_id;
    // The network may deliver a forward twice, before and after a change of leader:
    // every copy of one batch gets the answer the first copy got, so a follower never
    // reports "not applied" for a command that was in fact appended.
    if (const auto* seen = forward_answers_.find(m.from, m.request_id)) return reply_forward(r, *seen);
    detail::forward_answers::answer a;
    auto& es = m.entries.items();
    std::size_t bytes = 0;
    for (const auto& e : es) bytes += e.wire_size();
    bool fits = !es.empty();
    for (const auto& e : es) fits = fits && fits_one_message(e.payload.size());
    if (role_ != role::leader) {
      a.refused = errc::not_leader;
    } else if (transfer_) {
      a.refused = errc::transferring;
    } else if (!fits) {
      a.refused = errc::too_large;
    } else if (uncommitted_bytes() + bytes > cfg_.max_uncommitted_bytes) {
      a.refused = errc::busy;
    } else {
      a.index = log_.last_index() + 1;
      a.term = term_;
      for (std::size_t k = 0; k < es.size(); ++k) {
        es[k].term = term_;
        es[k].index = a.index + k;
        es[k].type = entry_type::normal;
        note_uncommitted(es[k]);
      }
      log_.append(std::span<const entry>(es.data(), es.size()));
      ++counters_.log_appends;
      // The follower completes these once it applies them: it waits to hear they commit.
      if (peer* fp = find_peer(m.from)) fp->commit_wanted = std::max(fp->commit_wanted, a.index + es.size() - 1);
      for (auto& p : peers_) send_append(p);
    }
    forward_answers_.remember(m.from, m.request_id, a);
    reply_forward(r, a);
  }

  void reply_forward(message& r, const detail::forward_answers::answer& a) {
    r.reject = a.refused != errc{};
    r.code = static_cast<std::uint32_t>(a.refused);
    r.log_index = a.index;
    r.log_term = a.term;
    transport_send(std::move(r));
  }

  void on_forward_reply(const message& m) {
    auto* b = forwards_.find(m.request_id);
    if (!b) return;
    if (m.reject) {
      // "Not appended" is certain only from the incarnation we sent to: a restarted
      // node cannot know what its earlier self did with a copy of this batch.
      const bool certain = m.boot_id == b->leader_boot;
      const auto code = static_cast<errc>(m.code);
      const errc why = !certain ? errc::leadership_lost
                       : !may_have_applied(code) ? code
                                                 : errc::not_leader;
      auto batch = forwards_.take(m.request_id);
      for (auto& c : batch.done) {
        if (may_have_applied(why)) fail(c, why);
        else refuse(c, why);
      }
      return;
    }
    // Applied here before the leader's answer arrived: we cannot tell this result from
    // another, so the outcome is reported unknown rather than guessed.
    forwards_.place(m.request_id, m.log_index, m.log_term, applied_,
                    [](completion& c, index_t at) { fail(c, errc::timeout, at); });
  }

  // ---------------------------------------------------------------- reads (thesis §6.4)

  /// A read waiting for its index: this node's own (a completion), or a follower's batch
  /// (answered with a read_index_reply).
  struct pending_read {
    read_completion done;
    node_id from = no_node;
    std::uint64_t request_id = 0;
  };

  void leader_read(pending_read r, bool lease) {
    // §6.4: a new leader does not know its commit index is current until an entry of
    // its own term commits.
    if (commit_ < term_start_) return reads_.wait_for_commit(std::move(r));
    if (RAFTKIT_BROKEN(read_index_round)) return answer_read(r, commit_);  // test-only: no round
    if (lease && cfg_.lease_reads && reads_.lease_valid(clock_.now())) {
      ++counters_.lease_reads;
      return answer_read(r, commit_);
    }
    // A round already in flight was sent before this read arrived: it waits for the next.
    // Inside batch() the next starts when the batch ends, so all its reads share one.
    if (reads_.round_in_flight() || batch_depth_ > 0)
      return reads_.wait_for_round(reads_.latest_round() + 1, commit_, std::move(r));
    reads_.wait_for_round(begin_read_round(true), commit_, std::move(r));
    confirm_read_rounds();  // a single voter confirms at once
  }

  /// At the end of batch(): starts the round its reads wait for, unless one is in flight
  /// (its confirmation starts the next).
  void start_batched_read_round() {
    if (role_ != role::leader || reads_.round_in_flight() || !reads_.waiting_after(reads_.latest_round())) return;
    begin_read_round(true);
    confirm_read_rounds();  // a single voter confirms at once
  }

  /// Starts a heartbeat round; with `send`, heartbeats carry it to every follower now
  /// (otherwise the caller is about to send).
  std::uint64_t begin_read_round(bool send = false) {
    const std::uint64_t r = reads_.begin_round(clock_.now());
    if (send)
      for (auto& p : peers_) send_heartbeat(p);
    return r;
  }

  /// Confirms every round a majority has echoed, extends the lease, answers the reads
  /// those rounds confirm, and starts the next round if reads wait for it.
  void confirm_read_rounds() {
    if (role_ != role::leader) return;
    const std::uint64_t r = detail::committed_index(quorum_, [&](node_id id) -> index_t {
      if (id == cfg_.id) return reads_.latest_round();
      const peer* p = find_peer(id);
      return p ? p->read_ack : 0;
    }, quorum_scratch_);
    const auto sent = reads_.confirm(r);
    if (!sent) return;
    ++counters_.read_rounds;
    if (cfg_.lease_reads && !timeout_now_sent_) {
      // Followers refuse other candidates for an election timeout on *their* clocks
      // after hearing this round; on ours that is at least this long.
      const double bound = RAFTKIT_BROKEN(lease_drift) ? 1.0 : cfg_.clock_drift_bound;  // test-only: no bound
      reads_.extend_lease(*sent + duration(static_cast<std::int64_t>(
                                      static_cast<double>(cfg_.election_timeout.count()) / bound)));
    }
    reads_.take_confirmed([&](pending_read& pr, index_t at) { answer_read(pr, at); });
    if (reads_.waiting_after(reads_.latest_round())) {
      begin_read_round(true);
      confirm_read_rounds();  // a single voter confirms the new round at once (no reply comes)
    }
  }

  void serve_reads_waiting_commit() {
    if (!reads_.waiting_for_commit()) return;
    reads_.take_waiting_commit([&](pending_read& r) { leader_read(std::move(r), false); });
  }

  void answer_read(pending_read& r, index_t at) {
    if (r.from == no_node) return reads_.wait_for_apply(at, std::move(r.done));
    message m = make(message_type::read_index_reply, r.from);
    m.request_id = r.request_id;
    m.log_index = at;
    transport_send(std::move(m));
  }

  void fail_read(pending_read& r, std::error_code ec) {
    if (r.from == no_node) return r.done(ec, 0);
    message m = make(message_type::read_index_reply, r.from);
    m.request_id = r.request_id;
    m.reject = true;
    m.code = static_cast<std::uint32_t>(ec.category() == raftkit_category() ? ec.value() : static_cast<int>(errc::leadership_lost));
    transport_send(std::move(m));
  }

  /// A follower asks the leader for one read index for every read gathered.
  void send_read_batch() {
    if (read_batch_.empty()) return;
    const bool lease = std::exchange(read_batch_lease_, false);
    if (stopped_ || role_ == role::leader || leader_ == no_node) {
      auto batch = std::move(read_batch_);
      read_batch_.clear();
      for (auto& c : batch) c(stopped_ ? errc::stopped : errc::not_leader, 0);
      return;
    }
    const std::uint64_t rid = ++next_request_id_;
    message m = make(message_type::read_index, leader_);
    m.request_id = rid;
    if (lease) m.flags = message_flags::lease;
    read_forwards_.emplace(rid, forwarded_reads{std::move(read_batch_), clock_.now() + cfg_.forward_timeout});
    read_batch_.clear();
    transport_send(std::move(m));
  }

  void on_read_index(const message& m) {
    pending_read r{{}, m.from, m.request_id};
    if (role_ != role::leader) return fail_read(r, errc::not_leader);
    if (reads_.size() >= cfg_.max_pending_reads) return fail_read(r, errc::busy);
    ++counters_.reads;
    leader_read(std::move(r), (m.flags & message_flags::lease) != 0);
  }

  void on_read_index_reply(const message& m) {
    auto it = read_forwards_.find(m.request_id);
    if (it == read_forwards_.end()) return;
    auto batch = std::move(it->second.done);
    read_forwards_.erase(it);
    // A read index is an index the leader had committed: this follower need not wait for
    // the next AppendEntries to learn it.
    if (!m.reject && role_ == role::follower && m.term == term_ && m.from == leader_) note_leader_commit(m.log_index);
    for (auto& c : batch) {
      if (m.reject) c(static_cast<errc>(m.code), 0);
      else reads_.wait_for_apply(m.log_index, std::move(c));
    }
  }

  void fail_read_forwards(std::error_code ec) {
    auto all = std::move(read_forwards_);
    read_forwards_.clear();
    for (auto& [rid, b] : all)
      for (auto& c : b.done) c(ec, 0);
    auto batch = std::move(read_batch_);
    read_batch_.clear();
    for (auto& c : batch) c(ec, 0);
  }

  // ---------------------------------------------------------------- membership (thesis chapter 4)

  struct change_state {
    membership target;              // C_new, as this change leaves the cluster
    std::vector<node_id> catch_up;  // voters-to-be that must catch up first (thesis §4.2.1)
    index_t learners_entry = 0;     // the entry that added new servers as learners (0: none)
    unsigned rounds = 0;            // catch-up rounds begun
    index_t round_target = 0;       // the leader's last index when the round began
    time_point round_start{};
    time_point deadline{};          // catch-up gives up here (catch_up_timeout)
    index_t entry = 0;              // this change's latest joint or final entry (0: not yet)
    term_t entry_term = 0;
    bool appended = false;          // some entry of this change is in the log
    membership_completion done;
  };

  /// The configuration this node uses: the latest in its log, committed or not (§4.1).
  const membership& config_now() const noexcept { return configs_.back(); }
  /// The configuration in force at applied_ (a snapshot at applied_ records it).
  const membership& config_at_applied() const noexcept { return configs_.front(); }

  /// At start-up: the configuration entries of the log after the base (initial or
  /// snapshot) configuration; the latest is the one this node uses.
  void load_configs_from_log() {
    const index_t from = std::max(log_.first_index(), configs_.front().index + 1);
    for (index_t i = from; i <= log_.last_index(); ++i) {
      const auto& e = log_.at(i);
      if (e.type == entry_type::config) note_config_entry(e);
    }
    refresh_config(false);
  }

  /// A config entry entered the log here. One that does not decode is not a
  /// configuration; every node decodes the same bytes, so all of them agree on that.
  bool note_config_entry(const entry& e) {
    auto m = detail::decode_membership(e.payload.bytes());
    if (!m) {
      ++counters_.messages_ignored;
      return false;
    }
    m->index = e.index;
    configs_.push_back(std::move(*m));
    return true;
  }

  /// Entries after `index` left the log: so did the configurations they set (§4.1: a node
  /// falls back to the latest configuration still in its log).
  void drop_configs_after(index_t index) {
    bool dropped = false;
    while (configs_.size() > 1 && configs_.back().index > index) {
      configs_.pop_back();
      dropped = true;
    }
    if (dropped) refresh_config(true);
  }

  /// Configurations before the one in force at applied_ are no longer needed.
  void trim_configs() {
    while (configs_.size() >= 2 && configs_[1].index <= applied_) configs_.erase(configs_.begin());
  }

  /// Makes the quorums and the peers follow config_now(). Progress and snapshot transfers
  /// of members that stay are kept; a new member (on a leader) starts probing at the end of
  /// the log. Called only where no reference into peers_ is held.
  void refresh_config(bool report) {
    const membership& c = config_now();
    quorum_.incoming = c.voter_ids();
    if (RAFTKIT_BROKEN(learner_quorum))  // test-only broken variant: learners count toward every quorum
      for (const auto& l : c.learners) quorum_.incoming.push_back(l.id);
    quorum_.outgoing = c.outgoing_ids();
    std::vector<peer> next;
    std::vector<std::optional<detail::snapshot_send<snapshot_source_t>>> next_sends;
    const time_point now = clock_.now();
    // Until the configuration commits, the servers it leaves out are still sent the log:
    // so a removed server learns of its removal and stops campaigning (thesis §4.2.3).
    std::vector<node_id> ids = c.ids();
    peers_include_previous_ = c.index > commit_ && configs_.size() >= 2;
    if (peers_include_previous_)
      for (node_id id : configs_[configs_.size() - 2].ids())
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    for (node_id id : ids) {
      if (id == cfg_.id) continue;
      std::size_t i = 0;
      while (i < peers_.size() && peers_[i].id != id) ++i;
      if (i < peers_.size()) {
        next.push_back(std::move(peers_[i]));
        next_sends.push_back(std::move(sends_[i]));
        continue;
      }
      next.emplace_back(id, cfg_.max_inflight_messages);
      next.back().reset(log_.last_index() + 1);
      next.back().last_reply = now;  // check-quorum's grace period, as at an election
      next_sends.emplace_back();
    }
    peers_ = std::move(next);
    sends_ = std::move(next_sends);
    quorum_scratch_.reserve(peers_.size() + 1);
    if (transfer_ && !c.is_voter(transfer_->target)) end_transfer(errc::unknown_member);
    if (report) events_.emit(events::config_changed{c.index, c.joint(), c.voters.size(), c.learners.size()});
  }

  /// Leader: appends configuration `m`, which is in force from now on (§4.1).
  index_t append_config(membership m) {
    const auto bytes = detail::encode_membership(m);
    const index_t at = append_local(entry_type::config, shared_bytes::copy_of(std::span<const std::byte>(bytes)));
    m.index = at;
    configs_.push_back(std::move(m));
    refresh_config(true);
    return at;
  }

  /// Whether a membership change is in the log and not finished: a configuration not yet
  /// committed, or C_old,new (whose C_new is still to follow).
  bool change_in_log() const noexcept { return config_now().index > commit_ || config_now().joint(); }

  static bool same_voters(const membership& a, const membership& b) {
    if (a.voters.size() != b.voters.size()) return false;
    for (const auto& v : a.voters)
      if (!b.is_voter(v.id)) return false;
    return true;
  }

  /// What `changes` make of config_now(): C_new and the servers to catch up, or nullopt
  /// for a change that does not fit the configuration.
  std::optional<change_state> plan_change(const std::vector<member_change>& changes) const {
    const membership& cur = config_now();
    change_state ch;
    ch.target.voters = cur.voters;
    ch.target.learners = cur.learners;
    auto erase = [](std::vector<member_info>& v, node_id id) {
      v.erase(std::remove_if(v.begin(), v.end(), [&](const member_info& m) { return m.id == id; }), v.end());
    };
    std::vector<node_id> seen;
    for (const auto& c : changes) {
      if (c.id == no_node || c.id == any_node || std::find(seen.begin(), seen.end(), c.id) != seen.end()) return std::nullopt;
      seen.push_back(c.id);
      switch (c.type) {
        case member_change_type::add_voter:
          if (cur.contains(c.id)) return std::nullopt;
          ch.target.voters.push_back(member_info{c.id, c.context});
          ch.catch_up.push_back(c.id);
          break;
        case member_change_type::add_learner:
          if (cur.contains(c.id)) return std::nullopt;
          ch.target.learners.push_back(member_info{c.id, c.context});
          break;
        case member_change_type::promote: {
          const member_info* l = membership::find_in(cur.learners, c.id);
          if (!l) return std::nullopt;
          ch.target.voters.push_back(*l);
          erase(ch.target.learners, c.id);
          ch.catch_up.push_back(c.id);
          break;
        }
        case member_change_type::remove:
          if (!cur.contains(c.id)) return std::nullopt;
          erase(ch.target.voters, c.id);
          erase(ch.target.learners, c.id);
          break;
        default: return std::nullopt;
      }
    }
    if (ch.target.voters.empty()) return std::nullopt;
    return ch;
  }

  /// Leader: moves the change in flight on, after any input. Catch-up rounds (thesis
  /// §4.2.1) first; then C_old,new (or C_new at once when the voters stay the same); the
  /// change succeeds once C_new commits.
  void continue_change() {
    if (!change_ || role_ != role::leader || batch_depth_ > 0) return;
    auto& ch = *change_;
    if (ch.entry) {
      if (commit_ >= ch.entry && !config_now().joint()) finish_change(std::error_code{}, ch.entry);
      return;
    }
    if (ch.learners_entry > commit_) return;
    const time_point now = clock_.now();
    if (!ch.catch_up.empty()) {
      if (ch.rounds == 0) begin_catch_up_round(now);
      for (node_id id : ch.catch_up) {
        const peer* p = find_peer(id);
        if (!p || p->match < ch.round_target) return;
      }
      if (now - ch.round_start >= cfg_.election_timeout) {  // this round was too slow: another
        if (ch.rounds >= cfg_.catch_up_rounds) return finish_change(errc::catch_up_failed, 0);
        return begin_catch_up_round(now);
      }
    }
    membership next = ch.target;
    if (!same_voters(next, config_now())) next.outgoing = config_now().voters;  // C_old,new (§6)
    ch.entry = append_config(std::move(next));
    ch.entry_term = term_;
    ch.appended = true;
    for (auto& p : peers_) send_append(p);
  }

  void begin_catch_up_round(time_point now) {
    auto& ch = *change_;
    ++ch.rounds;
    ch.round_target = log_.last_index();
    ch.round_start = now;
  }

  void finish_change(std::error_code ec, index_t at) {
    membership_completion done = std::move(change_->done);
    change_.reset();
    done(ec, at);
  }

  /// Leader, after commit moved: leaves a committed C_old,new for its C_new (whoever began
  /// the change, §6), moves this node's change on, and steps down once a C_new without it
  /// commits (thesis §4.2.2).
  void advance_membership() {
    if (role_ != role::leader || batch_depth_ > 0) return;
    if (peers_include_previous_ && config_now().index <= commit_) refresh_config(false);
    if (config_now().joint() && config_now().index <= commit_) {
      membership next{config_now().voters, config_now().learners, {}, 0};
      const index_t at = append_config(std::move(next));
      if (change_ && change_->entry) {
        change_->entry = at;
        change_->entry_term = term_;
      }
      for (auto& p : peers_) send_append(p);
    }
    continue_change();
    const membership& c = config_now();
    if (role_ == role::leader && !c.joint() && c.index <= commit_ && !c.is_voter(cfg_.id)) step_down_removed();
  }

  /// This leader is not in the committed C_new: it hands over to the most up-to-date
  /// voter that holds its whole log (TimeoutNow, so no one waits an election timeout) and
  /// becomes a follower that never campaigns.
  void step_down_removed() {
    const node_id best = best_follower();
    if (best != no_node && find_peer(best)->match >= log_.last_index()) {
      timeout_now_sent_ = true;
      transport_send(make(message_type::timeout_now, best));
    }
    become_follower(term_, no_node);
    events_.changed(event_reason::removed);
  }

  // ---------------------------------------------------------------- snapshots (§7)

  using snapshot_sink_t = typename detail::snapshot_types<SnapshotStore>::sink;
  using snapshot_source_t = typename detail::snapshot_types<SnapshotStore>::source;
  struct snapshot_in_progress {
    std::uint64_t id = 0;
    index_t index = 0;
    time_point started{};
  };

  /// Restores the state machine from snapshot `m`; an error halts (or, at start, throws).
  std::error_code restore_from(const snapshot_meta& m) {
    auto src = snaps_.open(m);
    if (const std::error_code ec = src.error()) return ec;
    snapshot_reader r(src);
    const std::error_code ec = detail::call_for_error([&] { return sm_.restore(r); }, errc::snapshot_failed);
    if (ec) return ec;
    if (r.error()) return r.error();
    return {};
  }

  /// At start-up: the newest snapshot, if any, becomes the state, and the log continues
  /// after it (thesis §5.3: a restart replays only the log after the snapshot).
  void restore_at_start() {
    snapshot_ = snaps_.latest();
    if (!snapshot_) {
      if (log_.first_index() > 1)
        throw std::system_error(make_error_code(errc::corrupt_snapshot),
                                "raftkit: the log is compacted up to " + std::to_string(log_.first_index() - 1) +
                                    " but no snapshot covers it");
      return;
    }
    const snapshot_meta& m = *snapshot_;
    // First the gap: a log compacted past this snapshot (a newer one was refused as
    // corrupt) holds entries, maybe committed, that nothing here can connect to it. Its
    // term_at(m.index) says 0, so the check below would reset the log and lose them.
    if (log_.first_index() > m.index + 1)
      throw std::system_error(make_error_code(errc::corrupt_snapshot),
                              "raftkit: the log is compacted up to " + std::to_string(log_.first_index() - 1) +
                                  ", past the newest usable snapshot " + std::to_string(m.index) +
                                  " (was a newer one refused?): this node's data cannot be used");
    auto conf = detail::decode_membership(std::span<const std::byte>(m.config.data(), m.config.size()));
    if (!conf)
      throw std::system_error(make_error_code(errc::corrupt_snapshot),
                              "raftkit: snapshot " + std::to_string(m.index) + " holds no valid configuration");
    if (const std::error_code ec = restore_from(m))
      throw std::system_error(ec, "raftkit: restoring snapshot " + std::to_string(m.index) + " failed");
    conf->index = m.index;
    configs_.assign(1, std::move(*conf));
    if (log_.last_index() < m.index || log_.term_at(m.index) != m.term)
      log_.reset(m.index, m.term);  // the log is behind the snapshot, or disagrees with it
    commit_ = applied_ = m.index;
  }

  /// After applying: a snapshot every snapshot_interval entries.
  void maybe_snapshot() {
    if constexpr (snapshots_enabled) {
      if (cfg_.snapshot_interval == 0 || snapshot_job_ || stopped_) return;
      // A joining node knows no configuration below the first config entry it applies
      // (the initial one is in no log), and a snapshot must record one: none until then.
      if (config_at_applied().voters.empty()) return;
      const index_t base = snapshot_ ? snapshot_->index : 0;
      if (applied_ >= base + cfg_.snapshot_interval) take_snapshot();
    }
  }

  /// Captures the state applied so far (on this thread) and has it written (inline or by
  /// the executor); the log is compacted once the snapshot is durable.
  void take_snapshot() {
    if constexpr (snapshots_enabled) {
      const index_t at = applied_;
      auto view = sm_.snapshot();
      auto sink = snaps_.create(at, log_.term_at(at), detail::encode_membership(config_at_applied()));
      snapshot_job_ = snapshot_in_progress{++snapshot_job_ids_, at, clock_.now()};
      if (RAFTKIT_BROKEN(compact_before_snapshot))  // test-only: compacts before the snapshot is durable
        log_.compact_before(compaction_point(at));
      snapshot_job job = [view = std::move(view), sink = std::move(sink)]() mutable -> std::error_code {
        snapshot_writer w(sink);
        const std::error_code ec = detail::call_for_error([&] { return view.write(w); }, errc::snapshot_failed);
        if (ec) {
          sink.abort();
          return ec;
        }
        return sink.commit();
      };
      if (snapshot_executor_) return snapshot_executor_(snapshot_job_->id, std::move(job));
      finish_snapshot(job());
    }
  }

  void finish_snapshot(std::error_code ec) {
    if constexpr (snapshots_enabled) {
      const snapshot_in_progress job = *snapshot_job_;
      snapshot_job_.reset();
      auto waiters = std::move(snapshot_waiters_);
      snapshot_waiters_.clear();
      if (ec && ec != errc::stale_snapshot) {
        ++counters_.snapshot_failures;
        events_.emit(events::snapshot_failed{job.index, ec});
        for (auto& w : waiters) w(ec, 0);
        return;
      }
      snapshot_ = snaps_.latest();
      if (!ec) {
        ++counters_.snapshots_taken;
        counters_.last_snapshot_ns = (clock_.now() - job.started).count();
        events_.emit(events::snapshot_taken{job.index, snapshot_ ? snapshot_->term : 0, snapshot_ ? snapshot_->size : 0, clock_.now() - job.started});
      }
      // §7: the log up to the snapshot is no longer needed; a trailing part stays so a
      // follower slightly behind is served entries rather than the whole snapshot.
      if (snapshot_) {
        compact_to_ = compaction_point(snapshot_->index);
        compact_deferred();
      }
      for (auto& w : waiters) w(std::error_code{}, snapshot_ ? snapshot_->index : job.index);
    }
  }

  /// Compacts the log up to compact_to_. A store may compact only what is durable in it
  /// (file::log_store), and a leader commits what a majority of *others* holds durably: so
  /// the rest is compacted as its own log's durability catches up, not at the next snapshot.
  void compact_deferred() {
    if (compact_to_ <= log_.first_index()) return;
    log_.compact_before(compact_to_);
    if (log_.first_index() >= compact_to_) compact_to_ = 0;
  }

  /// The first index the log keeps after a snapshot at `s`: a trailing part stays.
  index_t compaction_point(index_t s) const noexcept {
    return s + 1 - std::min<index_t>(s, cfg_.snapshot_trailing_entries);
  }

  /// The snapshot being streamed to follower `p`, if any.
  auto& send_to(peer& p) { return sends_[static_cast<std::size_t>(&p - peers_.data())]; }

  /// Leader: `p` needs entries we compacted; stream it the newest snapshot.
  void start_snapshot_send(peer& p) {
    if constexpr (snapshots_enabled) {
      auto& send = send_to(p);
      if (!send || (snapshot_ && send->meta.index < snapshot_->index)) {
        send.reset();
        snapshot_ = snaps_.latest();
        if (!snapshot_) return;
        auto src = snaps_.open(*snapshot_);
        if (src.error()) return;  // replaced meanwhile: the next heartbeat tries the newer one
        send.emplace(std::move(src));
      }
      p.snapshot = true;
      send_snapshot_chunks(p, *send);
    }
  }

  template <class Send>
  void send_snapshot_chunks(peer& p, Send& send) {
    while (send.can_send(cfg_.max_inflight_bytes)) {
      // The first chunk also carries the configuration: together they stay within a chunk.
      const std::size_t conf = send.sent == 0 ? std::min(send.meta.config.size(), cfg_.max_snapshot_chunk_bytes - 1) : 0;
      const std::uint64_t n = std::min<std::uint64_t>(cfg_.max_snapshot_chunk_bytes - conf, send.meta.size - send.sent);
      shared_bytes chunk = send.chunk_buffer(static_cast<std::size_t>(n));
      if (n && send.source.read_at(send.sent, {chunk.mutable_data(), static_cast<std::size_t>(n)}) != n) {
        // The snapshot cannot be read: drop this transfer; the next heartbeat starts again.
        events_.emit(events::snapshot_send_failed{send.meta.index, p.id});
        send_to(p).reset();
        return;
      }
      message m = make(message_type::install_snapshot, p.id);
      m.log_index = send.meta.index;
      m.log_term = send.meta.term;
      m.snapshot_offset = send.sent;
      m.snapshot_size = send.meta.size;
      m.snapshot_crc = send.meta.crc;
      m.data = std::move(chunk);
      // The follower takes the configuration from the chunk at offset 0, where it
      // starts a snapshot; later chunks need not carry (and allocate) it again.
      if (send.sent == 0) m.config = shared_bytes::copy_of(send.meta.config);
      send.sent += n;
      if (send.sent == send.meta.size) {
        m.flags = message_flags::last_chunk;
        send.sent_last = true;
      }
      counters_.snapshot_bytes_sent += n;
      transport_send(std::move(m));
    }
  }

  /// At each heartbeat to a follower being sent a snapshot: resume after lost chunks, or
  /// start over with a newer snapshot.
  void snapshot_heartbeat(peer& p) {
    if constexpr (snapshots_enabled) {
      auto& send = send_to(p);
      if (!send || (snapshot_ && send->meta.index < snapshot_->index)) return start_snapshot_send(p);
      send->heartbeat();
      send_snapshot_chunks(p, *send);
    }
  }

  void on_install_snapshot_reply(const message& m) {
    if constexpr (snapshots_enabled) {
      peer* p = reply_from(m);
      if (!p) return;
      auto& send = send_to(*p);
      if (!send || m.log_index != send->meta.index) return;  // about another snapshot
      if (m.flags & message_flags::last_chunk) {
        // Installed (or already covered by its commit index): entries from here on.
        const index_t at = send->meta.index;
        events_.emit(events::snapshot_sent{at, send->meta.term, send->meta.size, p->id});
        send.reset();
        ++counters_.snapshots_sent;
        p->snapshot = false;
        p->to_probe(at + 1);
        p->acknowledge(at);
        maybe_commit();
        return send_append(*p);
      }
      send->acknowledge(m.snapshot_offset);
      send_snapshot_chunks(*p, *send);
    } else {
      (void)m;
    }
  }

  /// Follower: one chunk of the leader's snapshot (§7). Chunks are taken in order; the
  /// reply says how many bytes are held, so the leader resends what was lost.
  void on_install_snapshot(message& m) {
    if constexpr (snapshots_enabled) {
      if (role_ != role::follower || leader_ != m.from) become_follower(term_, m.from);
      events_.changed(event_reason::leader_found);
      leader_boot_ = m.boot_id;
      last_leader_contact_ = clock_.now();
      leader_context_ = std::max(leader_context_, m.context);
      reset_election_deadline();
      message r = make(message_type::install_snapshot_reply, m.from);
      r.log_index = m.log_index;
      r.context = leader_context_;
      if (m.log_index <= commit_ && !RAFTKIT_BROKEN(old_snapshot)) {
        // Covered already: installing it would move the state machine backwards. It is
        // acknowledged (the leader's match moves to it) only once durable here, as entries
        // are; until then the leader resends.
        install_.reset();
        if (m.log_index <= std::max(log_.durable_index(), snapshot_ ? snapshot_->index : index_t{0}))
          r.flags = message_flags::last_chunk;
        return transport_send(std::move(r));
      }
      const bool same = install_ && install_->meta.index == m.log_index && install_->meta.term == m.log_term &&
                        install_->meta.size == m.snapshot_size && install_->meta.crc == m.snapshot_crc;
      if (!same) {
        install_.reset();
        if (m.snapshot_offset != 0) return transport_send(std::move(r));  // offset 0: start from the beginning
        if (!detail::decode_membership(m.config.bytes())) {  // no configuration to take: refused
          ++counters_.messages_ignored;
          return transport_send(std::move(r));
        }
        snapshot_meta meta;
        meta.index = m.log_index;
        meta.term = m.log_term;
        meta.size = m.snapshot_size;
        meta.crc = m.snapshot_crc;
        meta.config.assign(m.config.data(), m.config.data() + m.config.size());
        auto sink = snaps_.create(meta.index, meta.term, meta.config);
        install_.emplace(detail::snapshot_install<snapshot_sink_t>{std::move(meta), std::move(sink)});
      }
      auto& in = *install_;
      if (m.snapshot_offset == in.sink.written() && in.sink.written() + m.data.size() <= in.meta.size) {
        if (in.sink.write(m.data.bytes())) {
          install_.reset();  // a disk that cannot take it: the leader will start over
          r.snapshot_offset = 0;
          return transport_send(std::move(r));
        }
        counters_.snapshot_bytes_received += m.data.size();
      }
      r.snapshot_offset = in.sink.written();
      if (in.sink.written() == in.meta.size) {
        if (in.sink.crc() != in.meta.crc) {
          install_.reset();  // corrupt on the way: start over
          r.snapshot_offset = 0;
          return transport_send(std::move(r));
        }
        auto done = std::move(*install_);
        install_.reset();
        const std::error_code ec = done.sink.commit();
        if (ec && ec != errc::stale_snapshot) {
          r.snapshot_offset = 0;
          return transport_send(std::move(r));
        }
        if (!ec && !install_snapshot(done.meta)) return;
        r.flags = message_flags::last_chunk;
      }
      transport_send(std::move(r));
    } else {
      (void)m;
    }
  }

  /// The snapshot `meta` is durable here: it becomes the state, the log continues after
  /// it, and commit and applied move to its index. Returns false if the node halted.
  bool install_snapshot(const snapshot_meta& meta) {
    if constexpr (snapshots_enabled) {
      snapshot_ = snaps_.latest();
      if (const std::error_code ec = restore_from(meta)) {
        halt(ec);
        return false;
      }
      // §7: a log that holds the snapshot's last entry keeps what follows it; any other
      // log is replaced by the snapshot.
      auto conf = detail::decode_membership(std::span<const std::byte>(meta.config.data(), meta.config.size()));
      RAFTKIT_ASSERT(conf.has_value(), "a snapshot's configuration was checked at its first chunk");
      conf->index = meta.index;
      if (meta.index <= log_.last_index() && log_.term_at(meta.index) == meta.term) {
        log_.compact_before(meta.index + 1);
        // The log after the snapshot stays, and with it the configurations it set.
        while (configs_.size() > 0 && configs_.front().index <= meta.index) configs_.erase(configs_.begin());
      } else {
        log_.reset(meta.index, meta.term);
        configs_.clear();
      }
      configs_.insert(configs_.begin(), std::move(*conf));
      refresh_config(true);
      commit_ = std::max(commit_, meta.index);
      applied_ = meta.index;
      verified_ = std::max(verified_, meta.index);
      ++counters_.snapshots_installed;
      events_.emit(events::snapshot_installed{meta.index, meta.term, meta.size, leader_});
      // Proposals forwarded to indexes the snapshot covers never apply here one by one.
      forwards_.applied(meta.index, 0, [](completion& c) { fail(c, errc::leadership_lost); },
                        [](completion& c) { fail(c, errc::leadership_lost); });
      return true;
    } else {
      (void)meta;
      return true;
    }
  }

  // ---------------------------------------------------------------- applying

  /// Applies committed entries in index order, each once per incarnation, and hands
  /// each result to whoever proposed it. A state machine that throws halts the node
  /// (apply_failed): it cannot skip a committed entry, and retrying would repeat
  /// whatever part of the command it had done.
  void apply_committed() {
    std::size_t n = 0;
    while (applied_ < commit_ && n < cfg_.max_apply_batch && !stopped_) {
      const index_t idx = applied_ + 1;
      const entry e = log_.at(idx);
      if constexpr (detail::failable_store<LogStore>) {
        // A store that read the entry back from disk and failed gave a placeholder.
        if (const std::error_code ec = log_.error()) return halt(ec);
      }
      result_type result{};
      if (e.type == entry_type::normal) {
        try {
          if constexpr (std::is_void_v<decltype(sm_.apply(idx, e.payload.bytes()))>) {
            sm_.apply(idx, e.payload.bytes());
          } else {
            result = sm_.apply(idx, e.payload.bytes());
          }
        } catch (...) {
          apply_exception_ = std::current_exception();
          counters_.applied += n;
          return halt(errc::apply_failed);
        }
      }
      applied_ = idx;
      ++n;
      complete_at(e, std::move(result));
    }
    counters_.applied += n;
    if (n) {
      trim_configs();
      maybe_snapshot();
    }
  }

  void complete_at(const entry& e, result_type&& result) {
    while (!pending_.empty() && pending_.front().index <= e.index) {
      pending_proposal p = pending_.pop_front();
      if (p.index == e.index && p.term == e.term) {
        p.done(std::error_code{}, e.index, std::move(result));
      } else {
        fail(p.done, errc::leadership_lost, p.index);
      }
    }
    if (forwards_.empty()) return;
    forwards_.applied(
        e.index, e.term, [&](completion& c) { c(std::error_code{}, e.index, result_type{result}); },
        [&](completion& c) { fail(c, errc::leadership_lost); });
  }

  // ---------------------------------------------------------------- after every input

  void after_input() {
    if constexpr (detail::failable_store<LogStore>) {
      if (const std::error_code ec = log_.error()) return halt(ec);
    }
    if (stopped_) return;
    events_.durability(clock_, log_, cfg_.election_timeout);
    if constexpr (snapshots_enabled) compact_deferred();
    if (role_ == role::leader) {
      maybe_commit();
      advance_membership();
      notify_commit_waiters();
    } else {
      ack_durable(false);
    }
    apply_committed();
    reads_.applied(applied_, [](read_completion& c, index_t at) { c(std::error_code{}, at); });
  }

  void halt(std::error_code ec) {
    if (stopped_) return;
    stopped_ = true;
    stop_error_ = ec;
    if (role_ == role::leader) leader_ = no_node;
    role_ = role::follower;  // a stopped node takes no part, and claims no role
    events_.halted(ec);
    fail_pending(ec);
    fail_forwards(ec);
    for (auto& c : forward_batch_done_) fail(c, ec);  // queued in a batch(), never sent
    forward_batch_done_.clear();
    forward_batch_.clear();
    reads_.clear_unanswered([&](pending_read& r) { fail_read(r, ec); });
    reads_.clear_answered([&](read_completion& c) { c(ec, 0); });
    fail_read_forwards(ec);
    if (transfer_) end_transfer(ec);
    if (change_) finish_change(ec, 0);
  }

  void fail_pending(std::error_code ec) {
    while (!pending_.empty()) {
      pending_proposal p = pending_.pop_front();
      fail(p.done, ec, p.index);
    }
  }
  void fail_forwards(std::error_code ec) {
    forwards_.clear([&](completion& c, index_t at) { fail(c, ec, at); });
  }
  /// Completes with an error after the command may have entered a log.
  static void fail(completion& c, std::error_code ec, index_t index = 0) { c(ec, index, result_type{}); }
  /// Completes with an error that says the command entered no log.
  void refuse(completion& c, errc why) {
    RAFTKIT_ASSERT(!may_have_applied(why), "refuse() is for definitely-not-applied errors");
    ++counters_.proposals_refused;
    events_.emit(events::proposal_refused{why});
    c(why, 0, result_type{});
  }

  /// Accepts a handler taking `(error_code, index, result)` or, for callers that do not
  /// need the index, `(error_code, result)`.
  template <class Handler>
  static completion make_completion(Handler&& h) {
    if constexpr (std::is_invocable_v<std::decay_t<Handler>&, std::error_code, index_t, result_type>) {
      return completion(std::forward<Handler>(h));
    } else {
      static_assert(std::is_invocable_v<std::decay_t<Handler>&, std::error_code, result_type>,
                    "a proposal handler takes (std::error_code, index_t, result) or (std::error_code, result)");
      return completion([f = std::decay_t<Handler>(std::forward<Handler>(h))](
                            std::error_code ec, index_t, result_type r) mutable { f(ec, std::move(r)); });
    }
  }

  // ---------------------------------------------------------------- helpers

  message make(message_type type, node_id to) const {
    message m;
    m.type = type;
    m.from = cfg_.id;
    m.to = to;
    m.term = term_;
    m.boot_id = boot_id_;
    if (role_ == role::leader) m.context = reads_.latest_round();
    return m;
  }
  void transport_send(message&& m) {
    ++counters_.messages_sent;
    transport_.send(std::move(m));
  }

  /// Persists term and vote before anything that depends on them leaves (§5.1, Fig. 2).
  /// A store that fails to persist halts the node here, before a vote reply or a
  /// message of the new term could be sent: returns false then.
  [[nodiscard]] bool persist_hard_state(term_t term, node_id vote) {
    if (RAFTKIT_BROKEN(durable_vote) && term == term_ && vote != no_node) {
      // Test-only broken variant: the vote is not persisted, so a restart forgets it.
      vote_ = vote;
      return true;
    }
    if (term != term_) set_term(term);
    vote_ = vote;
    log_.save_hard_state(hard_state{term_, vote_});
    if constexpr (detail::failable_store<LogStore>) {
      if (const std::error_code ec = log_.error()) {
        halt(ec);
        return false;
      }
    }
    return true;
  }

  /// A new term: what this node verified against a leader's log belonged to the old one.
  void set_term(term_t term) {
#ifdef RAFTKIT_TEST_BREAKS
    stale_verified_ = std::max(stale_verified_, verified_);
#endif
    term_ = term;
    verified_ = acked_ = 0;
    leader_commit_ = 0;
    leader_context_ = 0;
    install_.reset();  // a transfer is abandoned on a term change
    for (auto& send : sends_) send.reset();
  }

  void reset_election_deadline() {
    const auto t = cfg_.election_timeout.count();
    election_deadline_ = clock_.now() + duration(t + static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(t))));
  }

  /// Whether this node votes in the configuration it uses (either set while joint).
  bool is_member() const { return quorum_.is_voter(cfg_.id); }
  /// A voter of the configuration before the latest, which has not committed here.
  bool needed_until_removal_commits() const {
    return configs_.size() >= 2 && config_now().index > commit_ && configs_[configs_.size() - 2].votes(cfg_.id);
  }
  peer* find_peer(node_id id) {
    for (auto& p : peers_)
      if (p.id == id) return &p;
    return nullptr;
  }

  node_config cfg_;
  Transport transport_;
  LogStore log_;
  StateMachine sm_;
  Clock clock_;
  SnapshotStore snaps_;
  detail::splitmix64 rng_;

  raftkit::role role_ = role::follower;
  term_t term_ = 0;
  node_id vote_ = no_node;
  node_id leader_ = no_node;
  index_t commit_ = 0;
  index_t applied_ = 0;
  index_t verified_ = 0;  // highest index known to match the leader's log in this term
  index_t acked_ = 0;     // highest match index acknowledged to the leader in this term
  index_t leader_commit_ = 0;  // follower: highest commit index heard from the leader of this term
#ifdef RAFTKIT_TEST_BREAKS
  index_t stale_verified_ = 0;  // what was verified in earlier terms (the ack_across_terms variant)
#endif
  time_point election_deadline_{};
  time_point heartbeat_deadline_{};
  std::vector<std::pair<node_id, bool>> votes_;  // (pre-)vote answers of the current round
  detail::quorum_config quorum_;        // voters of config_now(), kept in step by refresh_config
  // Configurations: the one in force at applied_ first, then one per config entry after it
  // in the log (§4.1); the last is the one this node uses.
  std::vector<membership> configs_;
  std::optional<change_state> change_;  // leader: the membership change it is making
  index_t compact_to_ = 0;  // the log is to be compacted up to here once durable (0: done)
  bool peers_include_previous_ = false; // peers_ also holds those the uncommitted config left out
  time_point last_leader_contact_{};   // follower: last AppendEntries from leader_
  time_point boot_time_{};
  time_point check_quorum_deadline_{};
  index_t term_start_ = 0;             // leader: index of its term's no-op
  std::uint64_t leader_context_ = 0;   // follower: newest read round seen from leader_ in this term
  detail::read_index_state<pending_read, read_completion> reads_;
  bool timeout_now_sent_ = false;      // leader: no lease in this term once it asked another to take over
  struct forwarded_reads {
    std::vector<read_completion> done;
    time_point deadline{};
  };
  std::map<std::uint64_t, forwarded_reads> read_forwards_;  // follower: reads asked of the leader
  std::vector<read_completion> read_batch_;                 // follower: reads gathered in batch()
  bool read_batch_lease_ = false;
  struct transfer_state {
    node_id target = no_node;
    time_point deadline{};
    transfer_completion done;
    bool sent = false;  // TimeoutNow sent
  };
  std::optional<transfer_state> transfer_;
  std::vector<peer> peers_;
  std::vector<index_t> quorum_scratch_;
  detail::ring<pending_proposal> pending_;
  detail::ring<uncommitted_mark> uncommitted_;
  std::uint64_t uncommitted_total_ = 0;
  std::uint64_t uncommitted_committed_ = 0;
  // Follower: forwarded proposals, and the batch being gathered inside batch().
  detail::forward_table<completion> forwards_;
  std::vector<entry> forward_batch_;
  std::vector<completion> forward_batch_done_;
  std::size_t forward_batch_bytes_ = 0;
  // Request ids start at a random point per incarnation so a restarted follower's ids
  // do not collide with its earlier ones in a leader's answer table.
  std::uint64_t next_request_id_ = 0;
  std::uint64_t boot_id_ = 0;      // identifies this incarnation in messages it sends
  std::uint64_t leader_boot_ = 0;  // the current leader's incarnation, from its AppendEntries
  detail::forward_answers forward_answers_;  // leader: answers to recent forwarded batches
  bool stopped_ = false;
  unsigned batch_depth_ = 0;
  std::vector<entry> batch_;  // proposals of the current batch(), not yet in the log
  std::error_code stop_error_;
  std::exception_ptr apply_exception_;
  node_counters counters_;
  detail::event_hook events_;  // set_event_sink; inert without a sink
  // Snapshots (only used when snapshots_enabled).
  std::optional<snapshot_meta> snapshot_;          // the newest durable snapshot
  std::optional<snapshot_in_progress> snapshot_job_;
  std::uint64_t snapshot_job_ids_ = 0;
  std::vector<detail::unique_function<void(std::error_code, index_t)>> snapshot_waiters_;
  detail::unique_function<void(std::uint64_t, snapshot_job)> snapshot_executor_;
  std::vector<std::optional<detail::snapshot_send<snapshot_source_t>>> sends_;  // leader: per peer
  std::optional<detail::snapshot_install<snapshot_sink_t>> install_;            // follower
};

}  // namespace raftkit
