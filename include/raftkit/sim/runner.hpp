#pragma once
/// \file sim::run: one seeded simulation of any replicated service. A cluster runs the
/// scenario's state machine while simulated clients send what its workload says through
/// random nodes, and a fault schedule drawn from the seed crashes, pauses, partitions and
/// slows nodes and loses, duplicates and delays messages. Invariants (and, for a state
/// machine with digest(), the replicas' states) are checked after every step; after the
/// faults stop the cluster must commit again within a bounded time; with a model, the
/// client history must be linearizable. Everything comes from the seed, so a failure
/// replays exactly.
///
///     auto r = raftkit::sim::run(my_scenario{}, options);   // any sim::scenario
///     auto r = raftkit::sim::run(options);                  // the key-value scenario
///
/// sim/scenario.hpp says what a scenario is; sim/main.hpp turns one into a command line.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/detail/random.hpp"
#include "raftkit/errc.hpp"
#include "raftkit/membership.hpp"
#include "raftkit/sim/cluster.hpp"
#include "raftkit/sim/file_storage.hpp"
#include "raftkit/sim/history.hpp"
#include "raftkit/sim/invariants.hpp"
#include "raftkit/sim/kv.hpp"
#include "raftkit/sim/linearizability.hpp"
#include "raftkit/sim/model.hpp"
#include "raftkit/sim/scenario.hpp"
#include "raftkit/sim/timeline.hpp"

namespace raftkit::sim {

/// How one run ended.
enum class run_verdict : std::uint8_t {
  passed,        ///< Every check ran and held.
  failed,        ///< A check failed: an invariant, liveness, or linearizability.
  inconclusive,  ///< Nothing failed, but the linearizability check could not decide.
};

/// The name of a run verdict, for messages.
constexpr std::string_view to_string(run_verdict v) noexcept {
  switch (v) {
    case run_verdict::passed: return "passed";
    case run_verdict::failed: return "failed";
    case run_verdict::inconclusive: return "inconclusive";
  }
  return "?";
}

/// The kinds of fault a run injects, for its counters.
enum class fault_kind : std::uint8_t {
  crash, restart, crash_and_restart, partition, cut_one_way, isolate, heal, pause, resume,
  clock_drift, slow_disk,
  long_isolation,  ///< a follower cut off long enough for the leader to compact past it
  rejoin,          ///< the end of a long isolation
};
inline constexpr std::size_t fault_kinds = 13;

/// The name of a fault kind, for summaries.
constexpr std::string_view to_string(fault_kind k) noexcept {
  switch (k) {
    case fault_kind::crash: return "crash";
    case fault_kind::restart: return "restart";
    case fault_kind::crash_and_restart: return "crash+restart";
    case fault_kind::partition: return "partition";
    case fault_kind::cut_one_way: return "one-way cut";
    case fault_kind::isolate: return "isolate";
    case fault_kind::heal: return "heal";
    case fault_kind::pause: return "pause";
    case fault_kind::resume: return "resume";
    case fault_kind::clock_drift: return "clock drift";
    case fault_kind::slow_disk: return "slow disk";
    case fault_kind::long_isolation: return "long isolation";
    case fault_kind::rejoin: return "rejoin";
  }
  return "?";
}

/// Slots of run_stats::changes_failed_by: one per raftkit::errc value, and 0 for the rest.
inline constexpr std::size_t change_error_slots = 32;

/// The slot of run_stats::changes_failed_by that counts `ec`.
inline std::size_t change_error_slot(std::error_code ec) noexcept {
  if (ec.category() != raftkit_category() || ec.value() <= 0 || static_cast<std::size_t>(ec.value()) >= change_error_slots)
    return 0;
  return static_cast<std::size_t>(ec.value());
}

/// Counters of one run.
struct run_stats {
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  std::uint64_t ops_ok = 0;
  std::uint64_t ops_unknown = 0;
  std::uint64_t ops_failed = 0;  ///< definitely not applied (see raftkit::may_have_applied), or a failed read
  std::uint64_t reads_log = 0;    ///< reads through the log (acknowledged)
  std::uint64_t reads_index = 0;  ///< reads through ReadIndex (acknowledged)
  std::uint64_t reads_lease = 0;  ///< reads through the lease (acknowledged)
  std::uint64_t elections = 0;    ///< elections started (a term raised), over every node and incarnation
  std::uint64_t elections_won = 0;
  std::uint64_t pre_votes = 0;    ///< pre-vote rounds started
  term_t max_term = 0;            ///< the highest term any node reached
  std::uint64_t faults = 0;       ///< fault draws (some change nothing, such as a restart with every node up)
  std::array<std::uint64_t, fault_kinds> faults_by_kind{};  ///< faults that took effect, by fault_kind
  std::uint64_t messages_lost = 0;        ///< messages the fault model dropped
  std::uint64_t messages_duplicated = 0;  ///< messages the fault model delivered twice
  std::uint64_t leaders = 0;     ///< terms in which a leader was seen
  std::uint64_t messages = 0;
  std::uint64_t keys = 0;        ///< distinct partitions (keys) in the history
  std::uint64_t snapshots_taken = 0;      ///< snapshots nodes took of their own state (durable)
  std::uint64_t snapshots_installed = 0;  ///< snapshots followers installed from a leader
  std::uint64_t snapshot_failures = 0;    ///< snapshots a node failed to take
  std::uint64_t snapshot_bytes_sent = 0;  ///< InstallSnapshot chunk bytes leaders sent
  std::uint64_t snapshot_writes_lost = 0;    ///< crashes that lost a snapshot being written
  std::uint64_t snapshot_installs_lost = 0;  ///< crashes of a node in the middle of receiving one
  index_t max_compacted = 0;              ///< the highest index any log was compacted up to
  std::uint64_t changes_started = 0;      ///< membership changes the operator asked a leader for
  std::uint64_t changes_completed = 0;    ///< ... whose final configuration committed
  std::uint64_t changes_failed = 0;       ///< ... that ended with an error (by code in changes_failed_by)
  std::uint64_t changes_unanswered = 0;   ///< ... with no answer within the operator's patience (or the run)
  /// Failed changes by raftkit::errc value (slot 0: an error of another category).
  std::array<std::uint64_t, change_error_slots> changes_failed_by{};
  std::uint64_t nodes_stopped = 0;        ///< removed nodes stopped for good

  /// Adds another run's counters (for a sweep's summary); max_term takes the larger.
  run_stats& operator+=(const run_stats& o) {
    steps += o.steps;
    virtual_ns += o.virtual_ns;
    ops_ok += o.ops_ok;
    ops_unknown += o.ops_unknown;
    ops_failed += o.ops_failed;
    reads_log += o.reads_log;
    reads_index += o.reads_index;
    reads_lease += o.reads_lease;
    elections += o.elections;
    elections_won += o.elections_won;
    pre_votes += o.pre_votes;
    max_term = std::max(max_term, o.max_term);
    faults += o.faults;
    for (std::size_t k = 0; k < fault_kinds; ++k) faults_by_kind[k] += o.faults_by_kind[k];
    messages_lost += o.messages_lost;
    messages_duplicated += o.messages_duplicated;
    leaders += o.leaders;
    messages += o.messages;
    keys += o.keys;
    snapshots_taken += o.snapshots_taken;
    snapshots_installed += o.snapshots_installed;
    snapshot_failures += o.snapshot_failures;
    snapshot_bytes_sent += o.snapshot_bytes_sent;
    snapshot_writes_lost += o.snapshot_writes_lost;
    snapshot_installs_lost += o.snapshot_installs_lost;
    max_compacted = std::max(max_compacted, o.max_compacted);
    changes_started += o.changes_started;
    changes_completed += o.changes_completed;
    changes_failed += o.changes_failed;
    changes_unanswered += o.changes_unanswered;
    for (std::size_t k = 0; k < change_error_slots; ++k) changes_failed_by[k] += o.changes_failed_by[k];
    nodes_stopped += o.nodes_stopped;
    return *this;
  }
};

/// What one run found, for a service whose requests are Input and answers Output.
template <class Input, class Output>
struct basic_run_result {
  run_verdict verdict = run_verdict::passed;  ///< How the run ended.
  bool passed = true;   ///< verdict == passed: every check ran and held.
  std::string failure;  ///< What failed, or why the run is inconclusive (empty when passed).
  run_stats stats;
  basic_history<basic_operation<Input, Output>> hist;  ///< every operation that may have taken effect
  std::string trace;
  /// The linearizability check's result (when the scenario has a model and it ran).
  std::optional<check_result> check;
  /// With run_options::timeline: what happened, for write_timeline_html.
  std::optional<timeline> tl;
};

/// The result of a run of scenario S.
template <class S>
using scenario_result_t = basic_run_result<scenario_input_t<S>, scenario_output_t<S>>;

/// The result of a run of the key-value scenario.
using run_result = basic_run_result<kv_input, std::string>;

namespace detail {

/// One seeded run (see file comment).
template <scenario S, class Storage>
class simulation {
 public:
  using sm_type = typename S::state_machine_type;
  using input_type = scenario_input_t<S>;
  using output_type = scenario_output_t<S>;
  using result_type = basic_run_result<input_type, output_type>;

  simulation(S s, const run_options& o, Storage storage)
      : o_(o),
        s_(std::move(s)),
        cluster_(std::in_place, make_options(o), [this](node_id id) { return s_.make_state_machine(id); },
                 std::move(storage)),
        c_(*cluster_),
        checker_(c_),
        rng_(o.seed * 0x2545F4914F6CDD1Dull + 17),
        net_rng_(o.seed * 0x9E3779B97F4A7C15ull + 3),
        clients_(o.clients) {
    checker_.compare_digests(o.compare_digests);
    c_.set_fault_model([this](const message& m) { return network_fault(m); });
    if (o_.timeline) tl_.start(c_.ids().size(), clients_.size());
  }

  simulation(const simulation&) = delete;
  simulation& operator=(const simulation&) = delete;

  // The nodes go first, while everything their completions reach is still alive; those
  // completions (shutting_down) then find the run over and do nothing.
  ~simulation() {
    closing_ = true;
    cluster_.reset();
  }

  result_type run() {
    try {
      execute();
    } catch (const std::exception& e) {
      fail(std::string("engine assertion: ") + e.what());
    }
    r_.stats.virtual_ns = c_.now().time_since_epoch().count();
    r_.stats.leaders = checker_.terms_with_leader();
    r_.stats.messages = c_.net().stats().sent;
    r_.stats.keys = partitions_in_history();
    for (node_id id : c_.ids()) count_node(id);
    if constexpr (cluster<sm_type, Storage>::has_snapshots) {
      r_.stats.snapshot_writes_lost = c_.snapshot_writes_lost();
      r_.stats.snapshot_installs_lost = c_.snapshot_installs_lost();
    }
    r_.trace = trace_.str();
    if (o_.timeline) finish_timeline();
    return std::move(r_);
  }

 private:
  struct client {
    bool busy = false;
    std::uint64_t generation = 0;
    std::uint64_t count = 0;
    time_point next_start{};
    time_point deadline{};
    input_type input{};
    time_point call{};
    std::size_t bar = 0;  // its operation on the timeline
  };

  /// The cluster's shape also comes from the seed: batch sizes and timeouts vary so
  /// that sweeps cover one-entry messages, long pipelines and tight elections.
  /// Leases only where the mix keeps its promise about clocks.
  static bool leases_on(const run_options& o) {
    return o.lease_reads && o.check_quorum && o.leader_stickiness &&
           (!o.clock_drift || o.max_clock_rate / o.min_clock_rate <= o.clock_drift_bound);
  }

  /// Whether this run takes snapshots: asked for, with a state machine and storage that can.
  static bool snapshots_on(const run_options& o) {
    return o.snapshots && cluster<sm_type, Storage>::node_type::snapshots_enabled;
  }

  static cluster_options make_options(const run_options& o) {
    raftkit::detail::splitmix64 r(o.seed ^ 0x5bd1e995u);
    cluster_options co;
    co.nodes = o.nodes;
    co.spares = o.membership ? o.spares : 0;
    co.seed = o.seed;
    co.latency = std::chrono::microseconds(500);
    co.store.write_delay = std::chrono::microseconds(200);
    co.node.forward_timeout = o.op_timeout / 2;
    constexpr std::size_t batch[] = {1, 2, 8, 64, 256};
    co.node.max_entries_per_message = batch[r.below(5)];
    co.node.max_inflight_messages = 1 + r.below(64);
    const auto t = std::chrono::milliseconds(60 + r.below(240));
    co.node.election_timeout = t;
    co.node.heartbeat_interval = t / (3 + r.below(5));
    co.node.pre_vote = o.pre_vote;
    co.node.check_quorum = o.check_quorum;
    co.node.leader_stickiness = o.leader_stickiness;
    co.node.clock_drift_bound = o.clock_drift_bound;
    co.node.lease_reads = leases_on(o);
    co.node.catch_up_timeout = o.catch_up_timeout;
    // Snapshots: drawn after the rest, so the shape above stays what it was for a seed.
    co.node.snapshot_interval = 0;
    if (snapshots_on(o)) {
      constexpr std::uint64_t interval[] = {4, 8, 16, 32, 64};
      const std::uint64_t every = o.snapshot_interval ? o.snapshot_interval : interval[r.below(5)];
      co.node.snapshot_interval = every;
      const std::uint64_t trailing[] = {0, 1, every / 4, every};
      co.node.snapshot_trailing_entries = o.snapshot_trailing ? *o.snapshot_trailing : trailing[r.below(4)];
      constexpr std::size_t chunk[] = {16, 64, 256, 1024};
      co.node.max_snapshot_chunk_bytes = o.snapshot_chunk_bytes ? o.snapshot_chunk_bytes : chunk[r.below(4)];
      if (!o.snapshot_chunk_bytes && r.chance(0.5)) co.node.max_inflight_bytes = 4 * co.node.max_snapshot_chunk_bytes;
      co.snapshot_write_delay = o.snapshot_write_delay * static_cast<std::int64_t>(r.below(5)) / 4;
      // A store whose appends are durable at once (files, synced when the cluster is quiet)
      // could append, commit, snapshot and compact within one step, before the checker
      // saw the entries: its snapshots take a moment, so a step lies between.
      if constexpr (!std::is_same_v<Storage, memory_storage>)
        co.snapshot_write_delay = std::max<duration>(co.snapshot_write_delay, std::chrono::microseconds(1));
    }
    return co;
  }

  void execute() {
    const time_point fault_end = c_.now() + o_.time;
    time_point next_fault = c_.now() + pick(std::chrono::milliseconds(50), std::chrono::milliseconds(400));
    time_point next_change = c_.now() + std::chrono::milliseconds(o_.membership ? 300 : 0);
    faults_on_ = true;
    sample_timeline();
    while (!done() && c_.now() < fault_end) {
      restart_due();
      rejoin_due();
      if (any_faults() && c_.now() >= next_fault) {
        inject_fault();
        next_fault = c_.now() + pick(std::chrono::milliseconds(20), std::chrono::milliseconds(400));
      }
      if (o_.membership) {
        for (node_id id : std::exchange(removed_, {})) removed(id);
      }
      if (o_.membership && c_.now() >= next_change) {
        operate();
        next_change = c_.now() + pick(std::chrono::milliseconds(30), std::chrono::milliseconds(500));
      }
      drive_clients();
      step();
    }
    if (done()) return;
    calm();
    if (!recover()) return;
    // Let clients finish what they started, then close the history.
    stop_clients_ = true;
    const time_point drain_end = c_.now() + o_.op_timeout * 2;
    while (!done() && c_.now() < drain_end && any_client_busy()) {
      drive_clients();
      step();
    }
    for (auto& cl : clients_)
      if (cl.busy) give_up(cl);
    r_.stats.changes_unanswered += changes_.size();
    changes_.clear();
    if (done()) return;
    if constexpr (scenario_has_model<S>) check_history();
  }

  /// Liveness: with the faults gone, a leader is elected and commits a new entry (the
  /// scenario's liveness command, or else a client request invoked after the faults).
  bool recover() {
    const time_point live_end = c_.now() + o_.recovery;
    calm_at_ = c_.now();
    bool proposed = false;
    term_t proposed_term = 0;
    node_id proposed_on = no_node;
    while (!done() && !live_ && c_.now() < live_end) {
      if constexpr (requires { { s_.liveness_command() } -> std::convertible_to<shared_bytes>; }) {
        const node_id l = c_.leader();
        if (l != no_node && (!proposed || c_.node(l).term() != proposed_term || l != proposed_on)) {
          proposed = true;
          proposed_term = c_.node(l).term();
          proposed_on = l;
          const shared_bytes cmd = s_.liveness_command();
          appended_ = true;
          c_.node(l).propose(cmd.bytes(), [this](std::error_code ec, index_t, const auto&) {
            if (!ec && !closing_) live_ = true;
          });
        }
      }
      drive_clients();
      step();
    }
    if (done()) return false;
    if (!live_) {
      if (o_.trace && o_.membership) trace_configurations();
      if constexpr (requires { s_.liveness_command(); })
        fail("liveness: no leader committed a new entry within " + ms(o_.recovery) + " after the faults stopped");
      else
        fail("liveness: no client request invoked after the faults stopped succeeded within " + ms(o_.recovery));
      return false;
    }
    return true;
  }

  void check_history() {
    const auto model = model_of();
    const auto& ops = r_.hist.operations();
    check_result verdict = check_linearizability(std::span(ops), model, o_.check);
    r_.check = verdict;
    if (verdict.verdict == check_verdict::not_linearizable)
      return fail("history not linearizable on key '" + verdict.key + "': " + verdict.explanation);
    if (verdict.verdict == check_verdict::inconclusive)
      return end(run_verdict::inconclusive, "linearizability check inconclusive: " + verdict.explanation);
    if (verdict.verdict != check_verdict::linearizable)
      return fail("linearizability check: " + std::string(to_string(verdict.verdict)) + ": " + verdict.explanation);
  }

  // Models are values without state of their own: a default one is the model.
  static auto model_of() { return typename S::model_type{}; }

  std::uint64_t partitions_in_history() const {
    if constexpr (scenario_has_model<S>) {
      const auto model = model_of();
      std::vector<std::string> keys;
      for (const auto& o : r_.hist.operations()) keys.push_back(partition_of(model, o.input));
      std::sort(keys.begin(), keys.end());
      return static_cast<std::uint64_t>(std::unique(keys.begin(), keys.end()) - keys.begin());
    } else {
      return 0;
    }
  }

  std::string describe(const input_type& in) const {
    if constexpr (requires { { s_.describe(in) } -> std::convertible_to<std::string>; })
      return s_.describe(in);
    else if constexpr (scenario_has_model<S>)
      return describe_input(model_of(), in);
    else
      return "request";
  }
  std::string describe_answer(const output_type& out) const {
    if constexpr (scenario_has_model<S>) return describe_output(model_of(), out);
    else return "ok";
  }

  bool done() const { return r_.verdict != run_verdict::passed; }

  void fail(std::string what) { end(run_verdict::failed, std::move(what)); }

  // The first verdict other than passed is the run's.
  void end(run_verdict v, std::string what) {
    if (done()) return;
    r_.verdict = v;
    r_.passed = false;
    r_.failure = std::move(what);
    failed_at_ = c_.now();
    event(std::string(v == run_verdict::failed ? "FAILED: " : "INCONCLUSIVE: ") + r_.failure);
  }

  void step() {
    // What a client or the operator appended since the last step is seen before the step
    // runs: a single voter could otherwise make it durable, commit it and compact it away
    // within the step, before the checker read it.
    if (std::exchange(appended_, false) && !check_invariants()) return;
    c_.step(std::chrono::milliseconds(5));
    ++r_.stats.steps;
    sample_timeline();
    if (!check_invariants()) return;
    const node_id l = c_.leader();
    if (l != no_node && (l != last_leader_ || c_.node(l).term() != last_term_)) {
      last_leader_ = l;
      last_term_ = c_.node(l).term();
      event("node " + std::to_string(l) + " is leader of term " + std::to_string(last_term_));
    }
    expire_clients();
    expire_changes();
  }

  /// Runs the invariant checker; false (and the run failed) on a violation.
  bool check_invariants() {
    if (auto bad = checker_.check()) {
      invariant_nodes_ = checker_.culprits();
      fail("invariant: " + *bad);
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------ faults

  bool any_faults() const {
    return o_.partitions || o_.crashes || o_.pauses || o_.clock_drift || o_.slow_disk;
  }

  memory::delivery network_fault(const message&) {
    memory::delivery d;
    if (!faults_on_) return d;
    if (o_.loss > 0 && net_rng_.chance(o_.loss)) {
      d.drop = true;
      ++r_.stats.messages_lost;
      return d;
    }
    if (o_.reorder && o_.delay.count() > 0) {
      d.delay = duration(static_cast<std::int64_t>(net_rng_.below(static_cast<std::uint64_t>(o_.delay.count()))));
      if (net_rng_.chance(0.02)) d.delay *= 10;  // now and then a very late message
    }
    if (o_.dup > 0 && net_rng_.chance(o_.dup)) {
      d.copies = 2;
      d.dup_delay = duration(static_cast<std::int64_t>(net_rng_.below(static_cast<std::uint64_t>(std::max<std::int64_t>(o_.delay.count(), 1)))));
      ++r_.stats.messages_duplicated;
    }
    return d;
  }

  void fault(fault_kind k, const std::string& what) {
    ++r_.stats.faults_by_kind[static_cast<std::size_t>(k)];
    if (o_.timeline) tl_.event(now_ns(), what);
    event(what);
  }

  void inject_fault() {
    std::vector<int> kinds;
    if (o_.crashes) kinds.insert(kinds.end(), {0, 0, 1, 1, 9, 9});
    if (o_.partitions) kinds.insert(kinds.end(), {2, 2, 3, 4});
    if (o_.pauses) kinds.insert(kinds.end(), {5, 6});
    if (o_.clock_drift) kinds.push_back(7);
    if (o_.slow_disk) kinds.push_back(8);
    if (o_.partitions && snapshots_on(o_)) kinds.push_back(10);
    ++r_.stats.faults;
    const node_id n = random_node();
    switch (kinds[rng_.below(kinds.size())]) {
      case 0:
        if (c_.is_up(n) && up_count() > 1) {
          count_node(n);
          c_.crash(n);
          fault(fault_kind::crash, "crash node " + std::to_string(n));
        }
        break;
      case 1:
        for (node_id id : c_.ids())
          if (!c_.is_up(id) && !stopped(id)) {
            c_.restart(id);
            fault(fault_kind::restart, "restart node " + std::to_string(id));
            break;
          }
        break;
      case 2: {
        std::vector<node_id> a, b;
        for (node_id id : c_.ids()) (rng_.chance(0.5) ? a : b).push_back(id);
        c_.partition({a, b});
        fault(fault_kind::partition, "partition " + list(a) + " | " + list(b));
        break;
      }
      case 3: {
        const node_id m = random_node();
        if (m != n) {
          c_.cut_one_way(n, m);
          fault(fault_kind::cut_one_way, "cut one way " + std::to_string(n) + " -> " + std::to_string(m));
        } else {
          c_.isolate(n);
          fault(fault_kind::isolate, "isolate node " + std::to_string(n));
        }
        break;
      }
      case 4:
        c_.heal();
        fault(fault_kind::heal, "heal network");
        break;
      case 5:
        if (c_.is_up(n) && !c_.is_paused(n)) {
          c_.pause(n);
          fault(fault_kind::pause, "pause node " + std::to_string(n));
        }
        break;
      case 6:
        for (node_id id : c_.ids())
          if (c_.is_paused(id)) {
            c_.resume(id);
            fault(fault_kind::resume, "resume node " + std::to_string(id));
            break;
          }
        break;
      case 7: {
        const double rate = o_.min_clock_rate + (o_.max_clock_rate - o_.min_clock_rate) * static_cast<double>(rng_.below(16)) / 15.0;
        c_.set_clock_rate(n, rate);
        fault(fault_kind::clock_drift, "clock of node " + std::to_string(n) + " runs at " + std::to_string(rate));
        break;
      }
      case 9:  // a crash a supervisor restarts at once, while messages to it are in flight
        if (c_.is_up(n) && up_count() > 1) {
          count_node(n);
          c_.crash(n);
          restarts_.push_back({c_.now() + pick(duration{0}, std::chrono::milliseconds(100)), n});
          fault(fault_kind::crash_and_restart, "crash node " + std::to_string(n) + " (restarts soon)");
        }
        break;
      case 10: {  // a follower cut off long enough that the leader compacts past it
        const node_id l = c_.leader();
        const node_id f = n != l ? n : c_.ids()[(n % c_.ids().size())];  // the next one
        const bool already = std::any_of(rejoins_.begin(), rejoins_.end(), [f](const auto& j) { return j.second == f; });
        if (f != l && !already) {
          c_.isolate(f);
          rejoins_.push_back({c_.now() + pick(o_.isolation / 2, o_.isolation), f});
          fault(fault_kind::long_isolation, "isolate node " + std::to_string(f) + " for long");
        }
        break;
      }
      case 8: {
        const auto d = std::chrono::microseconds(200 + rng_.below(50'000));
        if constexpr (requires { c_.store(n).set_write_delay(d); }) {
          c_.store(n).set_write_delay(d);
          fault(fault_kind::slow_disk, "disk of node " + std::to_string(n) + " takes " + std::to_string(d.count()) + "us");
        }
        break;
      }
    }
  }

  void restart_due() {
    for (auto it = restarts_.begin(); it != restarts_.end();) {
      if (it->first <= c_.now()) {
        if (!c_.is_up(it->second) && !stopped(it->second)) {
          c_.restart(it->second);
          event("restart node " + std::to_string(it->second));
          if (o_.timeline) tl_.event(now_ns(), "restart node " + std::to_string(it->second));
        }
        it = restarts_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Ends the long isolations that are due (unless a heal ended them first).
  void rejoin_due() {
    for (auto it = rejoins_.begin(); it != rejoins_.end();) {
      if (it->first <= c_.now()) {
        c_.rejoin(it->second);
        fault(fault_kind::rejoin, "node " + std::to_string(it->second) + " rejoins");
        it = rejoins_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Ends every fault: heal, resume, restart, normal clocks and disks, no message loss.
  void calm() {
    restarts_.clear();
    rejoins_.clear();
    faults_on_ = false;
    c_.heal();
    for (node_id id : c_.ids()) {
      c_.resume(id);
      if (!stopped(id)) c_.restart(id);
      c_.set_clock_rate(id, 1.0);
      if constexpr (requires { c_.store(id).set_write_delay(duration{}); })
        c_.store(id).set_write_delay(std::chrono::microseconds(200));
    }
    event("faults stop: network healed, every node running");
    if (o_.trace && o_.membership) trace_configurations();
    if (o_.timeline) tl_.event(now_ns(), "faults stop: network healed, every node running");
  }

  // ------------------------------------------------------------ membership

  /// A membership change the operator asked for and has no answer to yet.
  struct change_op {
    std::uint64_t generation = 0;
    time_point deadline{};
    std::vector<member_change> changes;
  };

  /// Whether `id` was removed and stopped for good (never restarted).
  bool stopped(node_id id) const { return std::find(stopped_.begin(), stopped_.end(), id) != stopped_.end(); }

  static std::string describe(const std::vector<member_change>& cs) {
    std::string s;
    for (const auto& c : cs) {
      if (!s.empty()) s += ", ";
      switch (c.type) {
        case member_change_type::add_voter: s += "add voter "; break;
        case member_change_type::add_learner: s += "add learner "; break;
        case member_change_type::promote: s += "promote "; break;
        case member_change_type::remove: s += "remove "; break;
      }
      s += std::to_string(c.id);
    }
    return s;
  }

  /// The operator: asks the leader for a change drawn from what its configuration allows.
  /// Mostly one at a time; now and then a second while one is unanswered, which a leader
  /// must refuse (membership_change_in_progress) or, if the first is done, accept.
  void operate() {
    const node_id l = c_.leader();
    if (l == no_node || changes_.size() >= 2 || (!changes_.empty() && !rng_.chance(0.3))) return;
    std::vector<member_change> cs = pick_change(l);
    if (cs.empty()) return;
    ++r_.stats.changes_started;
    const std::uint64_t gen = ++change_generation_;
    changes_.push_back({gen, c_.now() + o_.catch_up_timeout + 2 * o_.op_timeout, cs});
    const std::string what = describe(cs);
    event("operator asks leader " + std::to_string(l) + ": " + what);
    if (o_.timeline) tl_.event(now_ns(), "membership: " + what + " (leader " + std::to_string(l) + ")");
    appended_ = true;
    c_.node(l).change_membership(std::move(cs), [this, gen](std::error_code ec, index_t at) { finish_change(gen, ec, at); });
  }

  /// A change that fits leader `l`'s configuration (or, rarely, one that does not, which
  /// it must refuse as invalid_membership_change); empty if none is worth asking for.
  /// Voters stay between 1 and nodes + 2 (at most 7), a voter is added only while it runs,
  /// and a voter is removed only if a majority of the rest runs: the faults still stop
  /// the cluster for a while, the operator does not stop it for good.
  std::vector<member_change> pick_change(node_id l) {
    const membership& m = c_.node(l).members();
    const std::vector<node_id> voters = m.voter_ids();
    std::vector<node_id> learners, outside, outside_up, fresh_up, voters_down;
    for (const auto& x : m.learners) learners.push_back(x.id);
    for (node_id id : c_.ids()) {
      if (m.contains(id) || stopped(id)) continue;
      outside.push_back(id);
      if (!c_.is_up(id)) continue;
      outside_up.push_back(id);
      if (c_.is_joiner(id)) fresh_up.push_back(id);
    }
    for (node_id v : voters)
      if (!c_.is_up(v)) voters_down.push_back(v);
    auto any = [this](const std::vector<node_id>& v) { return v[rng_.below(v.size())]; };
    auto removable = [&](node_id v) {
      std::size_t rest = 0, running = 0;
      for (node_id x : voters) {
        if (x == v) continue;
        ++rest;
        running += c_.is_up(x) && !c_.is_paused(x) ? 1 : 0;
      }
      // At least two voters stay: a single voter appends, commits, snapshots and compacts
      // an entry within one step (held messages delivered when it resumes, say), and the
      // checker, which sees commits between steps, would take that prefix for never committed.
      return rest >= 2 && running >= rest / 2 + 1;
    };
    auto context = [](node_id id) { return "node-" + std::to_string(id); };
    const bool room = voters.size() < std::min<std::size_t>(o_.nodes + 2, 7);
    using mc = member_change;
    std::vector<std::vector<member_change>> options;
    auto offer = [&](int weight, std::vector<member_change> cs) {
      for (int i = 0; i < weight; ++i) options.push_back(cs);
    };
    if (!voters_down.empty() && !fresh_up.empty()) {  // a crashed voter's place goes to a fresh spare
      const node_id d = any(voters_down);
      const node_id f = any(fresh_up);
      offer(3, {mc::add_voter(f, context(f)), mc::remove(d)});
    }
    if (room && !outside_up.empty()) {
      const node_id x = any(outside_up);
      offer(2, {mc::add_voter(x, context(x))});
      // Two voter changes at once: C_new has majorities that are none of C_old's.
      const node_id v = any(voters);
      if (v != l && removable(v)) offer(1, {mc::add_voter(x, context(x)), mc::remove(v)});
      const node_id y = any(outside_up);
      if (y != x && voters.size() + 1 < std::min<std::size_t>(o_.nodes + 2, 7))
        offer(1, {mc::add_voter(x, context(x)), mc::add_voter(y, context(y))});
    }
    if (!outside.empty()) {
      const node_id x = any(outside);
      offer(2, {mc::add_learner(x, context(x))});
    }
    if (room && !learners.empty()) offer(2, {mc::promote(any(learners))});
    if (voters.size() > 1) {
      const node_id v = any(voters);
      if (v != l && removable(v)) offer(2, {mc::remove(v)});
      if (removable(l)) offer(1, {mc::remove(l)});  // the leader removes itself
    }
    if (!learners.empty()) offer(1, {mc::remove(any(learners))});
    if (!outside.empty() && !learners.empty() && room) {
      const node_id x = any(outside);
      offer(1, {mc::add_learner(x, context(x)), mc::promote(any(learners))});
    }
    if (rng_.chance(0.05)) offer(1, {mc::promote(any(voters))});  // invalid: already a voter
    if (options.empty()) return {};
    return options[rng_.below(options.size())];
  }

  void finish_change(std::uint64_t gen, std::error_code ec, index_t at) {
    if (closing_) return;
    auto it = std::find_if(changes_.begin(), changes_.end(), [gen](const change_op& c) { return c.generation == gen; });
    if (it == changes_.end()) return;  // given up on
    const change_op op = std::move(*it);
    changes_.erase(it);
    const std::string what = describe(op.changes);
    if (ec) {
      ++r_.stats.changes_failed;
      ++r_.stats.changes_failed_by[change_error_slot(ec)];
      event("membership change " + what + " failed: " + ec.message());
      return;
    }
    ++r_.stats.changes_completed;
    event("membership change " + what + " done at index " + std::to_string(at));
    if (!faults_on_) return;
    // Dealt with after the step: this runs inside a node, which a crash would destroy.
    for (const auto& c : op.changes)
      if (c.type == member_change_type::remove) removed_.push_back(c.id);
  }

  /// Node `id`'s removal committed: it lingers (what it does must do no harm, and it may
  /// be added again with its own log), or, a third of the time, stops for good. (A fresh
  /// empty store under the old id is never given: a stale message or leader would take
  /// the newcomer for the old member, which Raft does not allow for.)
  void removed(node_id id) {
    if (stopped(id) || !faults_on_ || !rng_.chance(1.0 / 3)) return;
    if (c_.is_up(id)) {
      count_node(id);
      c_.crash(id);
    }
    stopped_.push_back(id);
    ++r_.stats.nodes_stopped;
    event("node " + std::to_string(id) + " was removed: stopped for good");
  }

  /// Each running node's role, term and configuration, for the trace.
  void trace_configurations() {
    for (node_id id : c_.ids()) {
      if (!c_.is_up(id)) continue;
      const auto& n = c_.node(id);
      event("node " + std::to_string(id) + ": " + std::string(to_string(n.role_now())) + " of term " +
            std::to_string(n.term()) + ", commit " + std::to_string(n.commit_index()) + ", configuration " +
            (n.members().voters.empty() ? std::string("none") : raftkit::sim::detail::describe(n.members())));
    }
  }

  void expire_changes() {
    const auto before = changes_.size();
    std::erase_if(changes_, [this](const change_op& c) { return c_.now() >= c.deadline; });
    r_.stats.changes_unanswered += before - changes_.size();
  }

  // ------------------------------------------------------------ clients

  void drive_clients() {
    for (std::size_t i = 0; i < clients_.size(); ++i) {
      client& cl = clients_[i];
      if (cl.busy || stop_clients_ || c_.now() < cl.next_start) continue;
      start_op(i);
    }
  }

  void start_op(std::size_t i) {
    client& cl = clients_[i];
    std::vector<node_id> candidates;
    for (node_id id : c_.ids())
      if (c_.is_up(id) && !c_.is_paused(id)) candidates.push_back(id);
    if (candidates.empty()) {
      cl.next_start = c_.now() + std::chrono::milliseconds(10);
      return;
    }
    const node_id target = candidates[rng_.below(candidates.size())];
    workload_context ctx(i, cl.count, c_.now(), o_, rng_);
    request<input_type> req = s_.next(ctx);
    ++cl.count;
    cl.input = std::move(req.input);
    cl.busy = true;
    appended_ = true;
    cl.call = c_.now();
    cl.deadline = c_.now() + o_.op_timeout;
    const std::uint64_t gen = ++cl.generation;
    if (o_.trace) event("client " + std::to_string(i) + " " + describe(cl.input) + " via node " + std::to_string(target));
    const shared_bytes cmd = s_.encode(cl.input);
    if constexpr (scenario_reads_by_query<S>) {
      if (req.read && o_.read_index_reads) {
        const auto way = rng_.below(3);  // 0: the log, 1: ReadIndex, 2: the lease (else ReadIndex)
        if (way != 0) {
          const bool lease = way == 2 && leases_on(o_);
          if (o_.timeline) cl.bar = tl_.op_start(i, target, now_ns(), describe(cl.input), lease ? "lease" : "ReadIndex");
          return c_.node(target).read_index(
              [this, i, gen, target, cmd, lease](std::error_code ec, index_t at) {
                finish_read(i, gen, ec, at, target, cmd, lease);
              },
              lease ? read_consistency::lease : read_consistency::linearizable);
        }
      }
    }
    if (o_.timeline) cl.bar = tl_.op_start(i, target, now_ns(), describe(cl.input), "log");
    const bool read = req.read;
    c_.node(target).propose(cmd.bytes(), [this, i, gen, cmd, read](std::error_code ec, index_t index,
                                                                    const apply_result_t<sm_type>& res) {
      finish(i, gen, ec, index, res, cmd, read);
    });
  }

  /// A read answered without the log: query the replica that answered, now that it has
  /// applied up to the read index. A failed read changed nothing: it is left out.
  void finish_read(std::size_t i, std::uint64_t gen, std::error_code ec, index_t at, node_id on,
                   const shared_bytes& cmd, bool lease) {
    if (closing_) return;
    client& cl = clients_[i];
    if (!cl.busy || cl.generation != gen) return;
    cl.busy = false;
    cl.next_start = c_.now() + pick(std::chrono::microseconds(0), std::chrono::milliseconds(20));
    if (ec) {
      ++r_.stats.ops_failed;
      if (o_.trace) event("client " + std::to_string(i) + " read " + describe(cl.input) + " failed: " + ec.message());
      if (o_.timeline) tl_.op_end(cl.bar, now_ns(), op_outcome::failed, ec.message());
      finished(cl, op_outcome::failed);
      return;
    }
    ++r_.stats.ops_ok;
    ++(lease ? r_.stats.reads_lease : r_.stats.reads_index);
    if constexpr (scenario_reads_by_query<S>) {
      output_type out = s_.output(cl.input, c_.node(on).state_machine().query(cmd.bytes()));
      if (o_.trace) event("client " + std::to_string(i) + (lease ? " lease" : " index") + " read " + describe(cl.input) + " at index " + std::to_string(at) + " on node " + std::to_string(on) + ": " + describe_answer(out));
      ok(i, cl, std::move(out));
    }
  }

  /// Records a completed operation in the history (and on the timeline).
  void ok(std::size_t i, client& cl, output_type out) {
    finished(cl, op_outcome::ok);
    const std::size_t id = record(i, cl);
    if (o_.timeline) tl_.op_end(cl.bar, now_ns(), op_outcome::ok, describe_answer(out), static_cast<std::int64_t>(id));
    if constexpr (!requires { s_.liveness_command(); }) {
      if (calm_at_ && cl.call >= *calm_at_) live_ = true;  // the service answers again
    }
    r_.hist.complete(id, c_.now().time_since_epoch().count(), std::move(out));
  }

  void finished(const client& cl, op_outcome o) {
    if constexpr (requires { s_.finished(cl.input, o); }) s_.finished(cl.input, o);
  }

  /// Adds node `id`'s election and snapshot counters (before a crash resets them, and at
  /// the end).
  void count_node(node_id id) {
    if (!c_.is_up(id)) return;
    const auto& k = c_.node(id).counters();
    r_.stats.elections += k.elections;
    r_.stats.elections_won += k.elections_won;
    r_.stats.pre_votes += k.pre_votes;
    r_.stats.max_term = std::max(r_.stats.max_term, c_.node(id).term());
    r_.stats.snapshots_taken += k.snapshots_taken;
    r_.stats.snapshots_installed += k.snapshots_installed;
    r_.stats.snapshot_failures += k.snapshot_failures;
    r_.stats.snapshot_bytes_sent += k.snapshot_bytes_sent;
    if (c_.has_store(id)) r_.stats.max_compacted = std::max(r_.stats.max_compacted, c_.store(id).first_index() - 1);
  }

  void finish(std::size_t i, std::uint64_t gen, std::error_code ec, index_t index, const apply_result_t<sm_type>& res,
              const shared_bytes& cmd, bool read) {
    if (closing_) return;
    client& cl = clients_[i];
    if (!cl.busy || cl.generation != gen) return;  // already given up on
    cl.busy = false;
    cl.next_start = c_.now() + pick(std::chrono::microseconds(0), std::chrono::milliseconds(20));
    if (!ec) {
      ++r_.stats.ops_ok;
      if (read) ++r_.stats.reads_log;
      if (o_.trace) event("client " + std::to_string(i) + " " + describe(cl.input) + " ok at index " + std::to_string(index));
      ok(i, cl, s_.output(cl.input, res));
      if (auto bad = checker_.acknowledged(index, cmd.bytes())) {
        invariant_nodes_ = checker_.culprits();
        fail("invariant: " + *bad);
      }
    } else {
      if (o_.trace) event("client " + std::to_string(i) + " " + describe(cl.input) + " failed: " + ec.message());
      if (!may_have_applied(ec)) {
        ++r_.stats.ops_failed;  // definitely not applied: not part of the history
        if (o_.timeline) tl_.op_end(cl.bar, now_ns(), op_outcome::failed, ec.message());
        finished(cl, op_outcome::failed);
      } else {
        record_unknown(i, cl);
      }
    }
  }

  void record_unknown(std::size_t i, client& cl) {
    ++r_.stats.ops_unknown;
    finished(cl, op_outcome::unknown);
    const std::size_t id = record(i, cl);
    if (o_.timeline) tl_.op_end(cl.bar, now_ns(), op_outcome::unknown, {}, static_cast<std::int64_t>(id));
    r_.hist.complete_unknown(id);
  }

  void give_up(client& cl) {
    cl.busy = false;
    ++cl.generation;
    record_unknown(static_cast<std::size_t>(&cl - clients_.data()), cl);
    cl.next_start = c_.now();
  }

  void expire_clients() {
    for (auto& cl : clients_)
      if (cl.busy && c_.now() >= cl.deadline) give_up(cl);
  }
  bool any_client_busy() const {
    for (const auto& cl : clients_)
      if (cl.busy) return true;
    return false;
  }

  // Records client `i`'s current operation in the history; returns its history id.
  std::size_t record(std::size_t i, const client& cl) {
    basic_operation<input_type, output_type> o;
    o.client = i;
    o.input = cl.input;
    o.call = cl.call.time_since_epoch().count();
    return r_.hist.invoke(std::move(o));
  }

  // ------------------------------------------------------------ timeline

  std::int64_t now_ns() const { return c_.now().time_since_epoch().count(); }

  void sample_timeline() {
    if (!o_.timeline) return;
    const std::int64_t t = now_ns();
    for (node_id id : c_.ids()) {
      using k = timeline::span_kind;
      if (!c_.is_up(id)) {
        tl_.node(id, k::down, 0, t);
      } else if (c_.is_paused(id)) {
        tl_.node(id, k::paused, c_.node(id).term(), t);
      } else {
        const auto& n = c_.node(id);
        const role r = n.role_now();
        tl_.node(id, r == role::leader ? k::leader : r == role::candidate ? k::candidate
                   : r == role::pre_candidate ? k::pre_candidate : k::follower, n.term(), t);
      }
      std::string to, from;
      for (node_id o : c_.ids()) {
        if (o == id) continue;
        if (c_.blocked(id, o)) to += (to.empty() ? "" : ",") + std::to_string(o);
        if (c_.blocked(o, id)) from += (from.empty() ? "" : ",") + std::to_string(o);
      }
      std::string cut;
      if (!to.empty()) cut = "cannot send to " + to;
      if (!from.empty()) cut += (cut.empty() ? "" : "; ") + std::string("cannot hear from ") + from;
      tl_.cut(id, cut, t);
    }
  }

  void finish_timeline() {
    timeline t = tl_.finish(now_ns());
    t.verdict = std::string(to_string(r_.verdict));
    t.detail = r_.failure;
    if (r_.verdict != run_verdict::passed) {
      timeline::failure_mark f;
      f.at = failed_at_.time_since_epoch().count();
      f.text = r_.failure.substr(0, r_.failure.find('\n'));
      f.nodes = invariant_nodes_;
      if (r_.check && r_.check->verdict != check_verdict::linearizable) f.nodes.clear();
      t.failure = std::move(f);
    }
    if constexpr (scenario_has_model<S>) {
      if (r_.check && (r_.check->verdict == check_verdict::not_linearizable ||
                       r_.check->verdict == check_verdict::inconclusive)) {
        const auto model = model_of();
        const auto& ops = r_.hist.operations();
        std::vector<bool> in_prefix(ops.size(), false);
        for (std::size_t i : r_.check->longest_prefix)
          if (i < ops.size()) in_prefix[i] = true;
        // The culprit, and the operations of its partition that could have come next
        // in its stead (completed, outside the longest prefix, concurrent with it): the
        // ones no linearization could place. Later ones are unplaced only because the
        // search stopped there, so they are not marked.
        const std::size_t c = r_.check->culprit;
        const bool has_culprit = c < ops.size();
        for (auto& o : t.ops) {
          if (o.history < 0) continue;
          const auto h = static_cast<std::size_t>(o.history);
          if (partition_of(model, ops[h].input) != r_.check->key) continue;
          o.in_failed_partition = true;
          o.culprit = h == c;
          o.unplaced = has_culprit && !in_prefix[h] && ops[h].completed() && ops[h].call <= ops[c].ret &&
                       ops[h].ret >= ops[c].call;
          if (o.culprit && t.failure) {
            t.failure->at = ops[c].call;
            t.failure->nodes = {o.via};
            t.failure->text = "the linearizability checker cannot place " + o.request + " (sent to node " +
                              std::to_string(o.via) + ") on key '" + r_.check->key + "'";
          }
        }
      }
    }
    r_.tl = std::move(t);
  }

  // ------------------------------------------------------------ helpers

  duration pick(duration lo, duration hi) {
    return lo + duration(static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>((hi - lo).count()) + 1)));
  }
  node_id random_node() { return c_.ids()[rng_.below(c_.ids().size())]; }
  std::size_t up_count() const {
    std::size_t n = 0;
    for (node_id id : c_.ids()) n += c_.is_up(id) ? 1 : 0;
    return n;
  }
  static std::string list(const std::vector<node_id>& ids) {
    std::string s = "{";
    for (node_id id : ids) s += (s.size() > 1 ? "," : "") + std::to_string(id);
    return s + "}";
  }
  static std::string ms(duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + "ms";
  }
  void event(const std::string& what) {
    if (!o_.trace) return;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(c_.now().time_since_epoch()).count();
    trace_ << "[" << us / 1000 << "." << (us % 1000) / 100 << (us % 100) / 10 << us % 10 << "ms] " << what << '\n';
  }

  run_options o_;
  S s_;
  std::optional<cluster<sm_type, Storage>> cluster_;
  cluster<sm_type, Storage>& c_;
  bool closing_ = false;
  invariant_checker<sm_type, Storage> checker_;
  raftkit::detail::splitmix64 rng_;
  raftkit::detail::splitmix64 net_rng_;
  std::vector<client> clients_;
  std::vector<std::pair<time_point, node_id>> restarts_;
  std::vector<std::pair<time_point, node_id>> rejoins_;  // long isolations, when they end
  std::vector<change_op> changes_;     // membership changes asked for, unanswered
  std::uint64_t change_generation_ = 0;
  std::vector<node_id> stopped_;       // removed and stopped for good
  std::vector<node_id> removed_;       // removals that committed in the last step
  bool appended_ = false;              // a request was made since the last step
  bool faults_on_ = false;
  bool stop_clients_ = false;
  bool live_ = false;
  std::optional<time_point> calm_at_;  // when the faults stopped
  time_point failed_at_{};
  std::vector<node_id> invariant_nodes_;
  node_id last_leader_ = no_node;
  term_t last_term_ = 0;
  result_type r_;
  timeline_recorder tl_;
  std::ostringstream trace_;
};

}  // namespace detail

/// Runs one seeded simulation of scenario `s` (see file comment).
template <scenario S>
scenario_result_t<S> run(S s, const run_options& o) {
  if (o.file_log_root.empty())
    return detail::simulation<S, memory_storage>(std::move(s), o, memory_storage{}).run();
  file_storage fs;
  fs.root = o.file_log_root;
  fs.options.segment_size = 64 << 10;  // small segments: rolling happens in short runs
  return detail::simulation<S, file_storage>(std::move(s), o, std::move(fs)).run();
}

/// Runs one seeded simulation of the key-value scenario (sim::kv_scenario).
inline run_result run(const run_options& o) { return run(kv_scenario(o), o); }

}  // namespace raftkit::sim
