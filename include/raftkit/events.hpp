#pragma once
/// \file What a node tells an observer: typed events (role, term and leader changes with
/// their reasons, elections and pre-votes, log truncations, refused proposals, durability
/// stalls, storage errors, snapshots taken, sent and installed, leadership transfers) and the `event_sink` interface that receives them.
///
///     struct printer final : raftkit::event_sink {
///       void on_event(const raftkit::event& e) override { ... std::visit(..., e.data) ... }
///     };
///     printer p;
///     node.set_event_sink(&p);  // nullptr (the default) turns events off
///
/// Events are delivered synchronously, on the thread that drives the node, in the order
/// they happen; a sink must not call back into the node. Without a sink each event costs
/// the node one predictable branch: nothing is built. `raftkit/fmt.hpp` formats events as
/// one line (`role_changed from=follower to=candidate why=election_timeout`);
/// `visit_fields` lists an event's fields for any other format (JSON, say).

#include <cstdint>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "raftkit/errc.hpp"
#include "raftkit/status.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// Why a role, term or leader changed, an election started or ended.
enum class event_reason : std::uint8_t {
  none = 0,
  election_timeout = 1,  ///< the election timer fired: no leader heard from (§5.2)
  pre_vote_won = 2,      ///< a majority granted pre-votes: the real election starts (thesis §9.6)
  election_won = 3,      ///< a majority granted votes: this node leads
  rejected = 4,          ///< a majority refused this node's (pre-)votes
  higher_term = 5,       ///< a message carried a higher term (§5.1)
  leader_found = 6,      ///< a leader of the current term made itself known
  lost_quorum = 7,       ///< check-quorum: a majority was silent for an election timeout (thesis §6.2)
  transfer = 8,          ///< a leadership transfer (TimeoutNow, or the transfer target's election; thesis §3.10)
  stopped = 9,           ///< the node halted: stop(), destruction, or a failure (see node_stopped)
  removed = 10,          ///< a leader left the configuration once C_new committed (thesis §4.2.2)
};

constexpr std::string_view to_string(event_reason r) noexcept {
  switch (r) {
    case event_reason::none: return "none";
    case event_reason::election_timeout: return "election_timeout";
    case event_reason::pre_vote_won: return "pre_vote_won";
    case event_reason::election_won: return "election_won";
    case event_reason::rejected: return "rejected";
    case event_reason::higher_term: return "higher_term";
    case event_reason::leader_found: return "leader_found";
    case event_reason::lost_quorum: return "lost_quorum";
    case event_reason::transfer: return "transfer";
    case event_reason::stopped: return "stopped";
    case event_reason::removed: return "removed";
  }
  return "unknown";
}

namespace events {

/// The node's role changed.
struct role_changed {
  static constexpr std::string_view name = "role_changed";
  role from = role::follower;
  role to = role::follower;
  event_reason why = event_reason::none;
};

/// The node moved to a new term (terms only rise).
struct term_changed {
  static constexpr std::string_view name = "term_changed";
  term_t from = 0;
  term_t to = 0;
  event_reason why = event_reason::none;
};

/// The leader this node knows changed (no_node: none known).
struct leader_changed {
  static constexpr std::string_view name = "leader_changed";
  node_id from = no_node;
  node_id to = no_node;
  event_reason why = event_reason::none;
};

/// This node started asking for votes (or pre-votes) for `term`.
struct election_started {
  static constexpr std::string_view name = "election_started";
  bool pre_vote = false;
  term_t term = 0;  ///< the term campaigned for (a pre-vote's: the one it would move to)
  event_reason why = event_reason::none;  ///< election_timeout, pre_vote_won or transfer
};

/// This node's election (or pre-vote) for `term` gathered a majority.
struct election_won {
  static constexpr std::string_view name = "election_won";
  bool pre_vote = false;
  term_t term = 0;
};

/// This node's election (or pre-vote) for `term` ended without a majority: `why` is
/// rejected, higher_term, leader_found, election_timeout (a split vote), transfer or stopped.
struct election_lost {
  static constexpr std::string_view name = "election_lost";
  bool pre_vote = false;
  term_t term = 0;
  event_reason why = event_reason::none;
};

/// A follower removed the entries after `after` (`removed` of them), which conflicted
/// with leader `leader`'s log (§5.3). They were never committed.
struct log_truncated {
  static constexpr std::string_view name = "log_truncated";
  index_t after = 0;
  index_t removed = 0;
  node_id leader = no_node;
};

/// A proposal failed as definitely not applied (errc.hpp), for `why`.
struct proposal_refused {
  static constexpr std::string_view name = "proposal_refused";
  errc why = errc::busy;
};

/// The log store has made nothing more durable for `waited` while entries after
/// `durable` (up to `last`) wait: once per stall, after an election timeout.
struct durability_stalled {
  static constexpr std::string_view name = "durability_stalled";
  index_t durable = 0;
  index_t last = 0;
  duration waited{};
};

/// The log store made progress again after a durability_stalled, which lasted `stalled_for`.
struct durability_resumed {
  static constexpr std::string_view name = "durability_resumed";
  index_t durable = 0;
  duration stalled_for{};
};

/// The log or snapshot store failed (io_error, no_space, corrupt_log, ...); the node halts.
struct storage_error {
  static constexpr std::string_view name = "storage_error";
  std::error_code error;
};

/// A snapshot of this node's state up to `index` is durable (the log is compacted behind it).
struct snapshot_taken {
  static constexpr std::string_view name = "snapshot_taken";
  index_t index = 0;
  term_t term = 0;
  std::uint64_t size = 0;  ///< content bytes
  duration took{};         ///< capture to durable, on the node's clock
};

/// Taking a snapshot at `index` failed; the node runs on with its log uncompacted.
struct snapshot_failed {
  static constexpr std::string_view name = "snapshot_failed";
  index_t index = 0;
  std::error_code error;
};

/// This follower installed leader `from`'s snapshot up to `index` (§7).
struct snapshot_installed {
  static constexpr std::string_view name = "snapshot_installed";
  index_t index = 0;
  term_t term = 0;
  std::uint64_t size = 0;
  node_id from = no_node;
};

/// Leader: follower `to` acknowledged the last chunk of this node's snapshot up to `index`:
/// it holds the snapshot (or its commit index already covered it), and is sent entries after it.
struct snapshot_sent {
  static constexpr std::string_view name = "snapshot_sent";
  index_t index = 0;
  term_t term = 0;
  std::uint64_t size = 0;
  node_id to = no_node;
};

/// Leader: sending its snapshot up to `index` to `to` stopped because the snapshot could
/// not be read back; the next heartbeat to that follower starts over.
struct snapshot_send_failed {
  static constexpr std::string_view name = "snapshot_send_failed";
  index_t index = 0;
  node_id to = no_node;
};

/// Leader: a leadership transfer to `to` began (thesis §3.10); proposals fail with
/// transferring until it ends.
struct transfer_started {
  static constexpr std::string_view name = "transfer_started";
  node_id to = no_node;
};

/// Leader: the transfer to `to` ended; `error` is empty once `to` leads, else timeout (this
/// node leads on), leadership_lost (another node took over), or the reason the node stopped.
struct transfer_ended {
  static constexpr std::string_view name = "transfer_ended";
  node_id to = no_node;
  std::error_code error;
};

/// The node's configuration (the latest in its log, thesis §4.1) changed: a config entry
/// was appended or truncated, a snapshot brought one, or the node started with one.
/// `index` is the entry that set it (0: the initial configuration); `joint` while C_old,new
/// is in force. `basic_node::members()` has the members.
struct config_changed {
  static constexpr std::string_view name = "config_changed";
  index_t index = 0;
  bool joint = false;
  std::size_t voters = 0;
  std::size_t learners = 0;
};

/// The node halted, for `why` (shutting_down after stop(), or the failure).
struct node_stopped {
  static constexpr std::string_view name = "node_stopped";
  std::error_code why;
};

}  // namespace events

/// One of the event types above.
using event_data = std::variant<events::role_changed, events::term_changed, events::leader_changed,
                                events::election_started, events::election_won, events::election_lost,
                                events::log_truncated, events::proposal_refused, events::durability_stalled,
                                events::durability_resumed, events::storage_error, events::snapshot_taken,
                                events::snapshot_failed, events::snapshot_installed, events::snapshot_sent,
                                events::snapshot_send_failed, events::transfer_started, events::transfer_ended,
                                events::config_changed, events::node_stopped>;

/// An event: which node, its term when it happened, and what happened.
struct event {
  node_id node = no_node;
  term_t term = 0;
  event_data data;

  /// The event's type name (`role_changed`, ...).
  std::string_view name() const noexcept {
    return std::visit([](const auto& d) { return d.name; }, data);
  }
  /// The event as type `T`, or nullptr when it is another type.
  template <class T>
  const T* get() const noexcept { return std::get_if<T>(&data); }
};

/// Receives a node's events (see the file comment). Set with `basic_node::set_event_sink`.
class event_sink {
 public:
  virtual ~event_sink() = default;
  virtual void on_event(const event& e) = 0;
};

/// An event_sink that calls `f(const event&)`.
template <class F>
class function_sink final : public event_sink {
 public:
  explicit function_sink(F f) : f_(std::move(f)) {}
  void on_event(const event& e) override { f_(e); }

 private:
  F f_;
};

/// Calls `f(name, value)` for each field of `d`, in declaration order (a `term` field is
/// named `election_term` or `snapshot_term`, so it never clashes with the event's term). `value` is a
/// std::uint64_t (ids, terms, indexes, counts), a bool, a std::string_view (roles,
/// reasons, errc names), a std::error_code or a duration: enough for any log format.
template <class F>
void visit_fields(const event_data& d, F&& f) {
  using std::string_view;
  struct visitor {
    F& f;
    void operator()(const events::role_changed& e) const {
      f(string_view("from"), string_view(to_string(e.from)));
      f(string_view("to"), string_view(to_string(e.to)));
      f(string_view("why"), to_string(e.why));
    }
    void operator()(const events::term_changed& e) const {
      f(string_view("from"), std::uint64_t{e.from});
      f(string_view("to"), std::uint64_t{e.to});
      f(string_view("why"), to_string(e.why));
    }
    void operator()(const events::leader_changed& e) const {
      f(string_view("from"), std::uint64_t{e.from});
      f(string_view("to"), std::uint64_t{e.to});
      f(string_view("why"), to_string(e.why));
    }
    void operator()(const events::election_started& e) const {
      f(string_view("pre_vote"), e.pre_vote);
      f(string_view("election_term"), std::uint64_t{e.term});
      f(string_view("why"), to_string(e.why));
    }
    void operator()(const events::election_won& e) const {
      f(string_view("pre_vote"), e.pre_vote);
      f(string_view("election_term"), std::uint64_t{e.term});
    }
    void operator()(const events::election_lost& e) const {
      f(string_view("pre_vote"), e.pre_vote);
      f(string_view("election_term"), std::uint64_t{e.term});
      f(string_view("why"), to_string(e.why));
    }
    void operator()(const events::log_truncated& e) const {
      f(string_view("after"), std::uint64_t{e.after});
      f(string_view("removed"), std::uint64_t{e.removed});
      f(string_view("leader"), std::uint64_t{e.leader});
    }
    void operator()(const events::proposal_refused& e) const { f(string_view("why"), std::error_code(e.why)); }
    void operator()(const events::durability_stalled& e) const {
      f(string_view("durable"), std::uint64_t{e.durable});
      f(string_view("last"), std::uint64_t{e.last});
      f(string_view("waited"), e.waited);
    }
    void operator()(const events::durability_resumed& e) const {
      f(string_view("durable"), std::uint64_t{e.durable});
      f(string_view("stalled_for"), e.stalled_for);
    }
    void operator()(const events::storage_error& e) const { f(string_view("error"), e.error); }
    void operator()(const events::snapshot_taken& e) const {
      f(string_view("index"), std::uint64_t{e.index});
      f(string_view("snapshot_term"), std::uint64_t{e.term});
      f(string_view("size"), std::uint64_t{e.size});
      f(string_view("took"), e.took);
    }
    void operator()(const events::snapshot_failed& e) const {
      f(string_view("index"), std::uint64_t{e.index});
      f(string_view("error"), e.error);
    }
    void operator()(const events::snapshot_installed& e) const {
      f(string_view("index"), std::uint64_t{e.index});
      f(string_view("snapshot_term"), std::uint64_t{e.term});
      f(string_view("size"), std::uint64_t{e.size});
      f(string_view("from"), std::uint64_t{e.from});
    }
    void operator()(const events::snapshot_sent& e) const {
      f(string_view("index"), std::uint64_t{e.index});
      f(string_view("snapshot_term"), std::uint64_t{e.term});
      f(string_view("size"), std::uint64_t{e.size});
      f(string_view("to"), std::uint64_t{e.to});
    }
    void operator()(const events::snapshot_send_failed& e) const {
      f(string_view("index"), std::uint64_t{e.index});
      f(string_view("to"), std::uint64_t{e.to});
    }
    void operator()(const events::transfer_started& e) const { f(string_view("to"), std::uint64_t{e.to}); }
    void operator()(const events::transfer_ended& e) const {
      f(string_view("to"), std::uint64_t{e.to});
      f(string_view("error"), e.error);
    }
    void operator()(const events::config_changed& e) const {
      f(string_view("index"), std::uint64_t{e.index});
      f(string_view("joint"), e.joint);
      f(string_view("voters"), std::uint64_t{e.voters});
      f(string_view("learners"), std::uint64_t{e.learners});
    }
    void operator()(const events::node_stopped& e) const { f(string_view("why"), e.why); }
  };
  std::visit(visitor{f}, d);
}

namespace detail {

/// The engine's side of the event hook: a sink pointer (null: every call below is one
/// branch and builds nothing), and what has been reported of the role, term and leader,
/// so each change is reported once, with the reason of the first report that sees it.
class event_hook {
 public:
  /// Starts (or, with nullptr, stops) reporting to `sink`. The pointers are the node's
  /// own members: the hook reads them when it reports (a node does not move).
  void attach(event_sink* sink, node_id id, const role* r, const term_t* t, const node_id* leader) noexcept {
    sink_ = sink;
    id_ = id;
    role_ = r;
    term_ = t;
    leader_ = leader;
    seen_role_ = *r;
    seen_term_ = *t;
    seen_leader_ = *leader;
    campaigning_ = false;
    waiting_ = stalled_ = false;
  }

  /// Reports a ready-made event.
  template <class T>
  void emit(T&& data) {
    if (sink_) [[unlikely]]
      deliver(event_data(std::forward<T>(data)));
  }

  /// Reports whatever of role, term and leader changed since the last report, for `why`;
  /// an election this node was running ends as lost when it is no longer a candidate.
  void changed(event_reason why) {
    if (sink_) [[unlikely]]
      report_changes(why);
  }

  /// A (pre-)election for `campaign_term` started. An election still running ends first:
  /// a pre-vote followed by its real election was won; anything else ran out of time.
  void campaign(bool pre_vote, term_t campaign_term, event_reason why) {
    if (!sink_) [[likely]]
      return;
    if (campaigning_) {
      if (campaign_pre_ && !pre_vote && why == event_reason::pre_vote_won)
        deliver(events::election_won{true, campaign_term_});
      else
        deliver(events::election_lost{campaign_pre_, campaign_term_,
                                      why == event_reason::transfer ? why : event_reason::election_timeout});
    }
    campaigning_ = true;
    campaign_pre_ = pre_vote;
    campaign_term_ = campaign_term;
    deliver(events::election_started{pre_vote, campaign_term, why});
    report_changes(why);
  }

  /// This node won its election and leads.
  void won() {
    if (!sink_) [[likely]]
      return;
    if (campaigning_) deliver(events::election_won{false, campaign_term_});
    campaigning_ = false;
    report_changes(event_reason::election_won);
  }

  /// A majority refused this node's (pre-)votes.
  void rejected() {
    if (!sink_) [[likely]]
      return;
    if (campaigning_) deliver(events::election_lost{campaign_pre_, campaign_term_, event_reason::rejected});
    campaigning_ = false;
    report_changes(event_reason::rejected);
  }

  /// The node halted with `ec`: a store failure is reported as such, then the role it
  /// gave up, then the stop itself.
  void halted(std::error_code ec) {
    if (!sink_) [[likely]]
      return;
    if (ec != errc::shutting_down && ec != errc::apply_failed && ec != errc::snapshot_failed)
      deliver(events::storage_error{ec});
    report_changes(event_reason::stopped);
    deliver(events::node_stopped{ec});
  }

  /// Watches the log store's durable index after each input: reports a stall once the
  /// store has made nothing more durable for `threshold` while entries wait, and its end.
  template <class Clock, class LogStore>
  void durability(Clock& clock, const LogStore& log, duration threshold) {
    if (!sink_) [[likely]]
      return;
    const index_t durable = log.durable_index();
    const index_t last = log.last_index();
    const time_point now = clock.now();
    if (durable >= last || (waiting_ && durable != waiting_durable_)) {
      if (stalled_) deliver(events::durability_resumed{durable, now - waiting_since_});
      waiting_ = stalled_ = false;
    }
    if (durable >= last) return;
    if (!waiting_) {
      waiting_ = true;
      waiting_since_ = now;
      waiting_durable_ = durable;
    } else if (!stalled_ && now - waiting_since_ >= threshold) {
      stalled_ = true;
      deliver(events::durability_stalled{durable, last, now - waiting_since_});
    }
  }

 private:
  void deliver(event_data&& d) { sink_->on_event(event{id_, *term_, std::move(d)}); }

  void report_changes(event_reason why) {
    const role r = *role_;
    if (campaigning_ && r != role::candidate && r != role::pre_candidate) {
      campaigning_ = false;
      deliver(events::election_lost{campaign_pre_, campaign_term_, why});
    }
    if (*term_ != seen_term_) deliver(events::term_changed{std::exchange(seen_term_, *term_), *term_, why});
    if (r != seen_role_) deliver(events::role_changed{std::exchange(seen_role_, r), r, why});
    if (*leader_ != seen_leader_) deliver(events::leader_changed{std::exchange(seen_leader_, *leader_), *leader_, why});
  }

  event_sink* sink_ = nullptr;
  node_id id_ = no_node;
  const role* role_ = nullptr;
  const term_t* term_ = nullptr;
  const node_id* leader_ = nullptr;
  role seen_role_ = role::follower;
  term_t seen_term_ = 0;
  node_id seen_leader_ = no_node;
  bool campaigning_ = false;  // an election (or pre-vote) of this node is running
  bool campaign_pre_ = false;
  term_t campaign_term_ = 0;
  bool waiting_ = false;  // entries wait for the store since waiting_since_
  bool stalled_ = false;  // durability_stalled reported for this wait
  index_t waiting_durable_ = 0;
  time_point waiting_since_{};
};

}  // namespace detail
}  // namespace raftkit
