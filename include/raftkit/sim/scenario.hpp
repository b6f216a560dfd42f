#pragma once
/// \file What one seeded simulation runs: its options (faults, clients, checks) and a
/// scenario, which says what the service is and what its clients do.
///
/// A scenario names the user's state machine and how to make one (a factory, called at
/// every start of every node, so the state machine needs no default constructor); a
/// workload that says what each client sends next, drawing from the run's seeded random
/// numbers; how a request becomes the bytes of a command, and how the state machine's
/// answer becomes the output a client is told. Optionally it names a sequential model
/// (sim/model.hpp) that the client history is checked against for linearizability.
///
///     struct counter_scenario {
///       using state_machine_type = counter;           // apply(index, bytes) -> int64
///       using model_type = counter_model;             // optional: input/output from here
///       counter make_state_machine(raftkit::node_id) { return counter{}; }
///       sim::request<std::int64_t> next(sim::workload_context& ctx) {
///         const auto add = static_cast<std::int64_t>(ctx.below(3));  // 0 is a read
///         return {add, add == 0};
///       }
///       raftkit::shared_bytes encode(std::int64_t add) const { ... }
///       std::int64_t output(std::int64_t, std::int64_t value) const { return value; }
///     };
///
/// Optional members, detected:
///  - `model_type` (a sim::model over the same input and output); without one, declare
///    `input_type` and `output_type`, and the run checks invariants and liveness only.
///  - `output(input, query_result)`, for a state machine with `query()`: reads the
///    workload marks (`request::read`) are then answered through ReadIndex or a lease and
///    query() as well as through the log.
///  - `finished(input, op_outcome)`: told how each request ended (partition_rotation
///    uses it to count what reached the history).
///  - `liveness_command() -> shared_bytes`: proposed after the faults stop, to show the
///    cluster commits again; without it, a client request invoked after the faults stop
///    must succeed.
///  - `describe(input) -> std::string`, for traces and timelines (the model's
///    input_text by default).

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/detail/random.hpp"
#include "raftkit/sim/linearizability.hpp"
#include "raftkit/sim/model.hpp"
#include "raftkit/state_machine.hpp"
#include "raftkit/types.hpp"

namespace raftkit::sim {

/// What one simulation run does. Times are virtual.
struct run_options {
  std::uint64_t seed = 1;
  std::size_t nodes = 3;
  duration time = std::chrono::seconds(10);   ///< how long faults and clients run
  double loss = 0.0;                          ///< probability a message is lost
  double dup = 0.0;                           ///< probability a message is duplicated
  duration delay = std::chrono::milliseconds(20);  ///< largest extra delay of a message
  bool reorder = false;     ///< random extra delays (up to `delay`, sometimes 10x) reorder messages
  bool partitions = false;  ///< symmetric and one-way partitions, isolation, healing
  bool crashes = false;     ///< crash (losing unsynced writes) and restart
  bool pauses = false;      ///< pause and resume processes
  bool clock_drift = false; ///< per-node clocks running at rates in [min_clock_rate, max_clock_rate]
  double min_clock_rate = 0.5;
  double max_clock_rate = 2.0;
  bool slow_disk = false;   ///< per-node write latency up to 50 ms
  std::size_t clients = 3;
  /// Keys (or whatever partitions the workload has) in use at a time.
  std::size_t keys = 3;
  /// Operations a key takes before the clients move on to a fresh key; 0 keeps the same
  /// `keys` keys for the whole run.
  std::size_t ops_per_key = 100;
  duration op_timeout = std::chrono::seconds(1);   ///< a client gives up after this
  duration recovery = std::chrono::seconds(10);    ///< budget to elect and commit after faults
  bool trace = false;       ///< keep a readable event log in the result
  /// Record what happened over virtual time (roles, faults, client operations) for a
  /// timeline page (sim/timeline.hpp). Off in sweeps: it costs a little every step.
  bool timeline = false;
  /// With a state machine that has digest(): compare the replicas' states after every
  /// step (see invariant_checker). Off only to show what the other checks catch alone.
  bool compare_digests = true;
  /// Non-empty: nodes keep their logs in file::log_store directories under this root
  /// (which must exist and be empty) instead of memory::log_store. A crash then closes
  /// the files and a restart recovers them; disk slowness is not simulated.
  std::string file_log_root;
  /// The engine's extensions (thesis §9.6, §6.2, §4.2.3): on, as in a default node_config.
  bool pre_vote = true;
  bool check_quorum = true;
  bool leader_stickiness = true;
  /// Reads go through the log, through ReadIndex, or (when leases are on) through the
  /// leader's lease, a third each. Leases are on only where clock drift stays within
  /// `clock_drift_bound`: without clock_drift, or with max/min clock rate within it.
  bool read_index_reads = true;
  bool lease_reads = true;
  double clock_drift_bound = 1.1;
  /// How the client history is checked for linearizability (a violation's explanation
  /// includes the longest linearizable prefix a search finds).
  check_options check{.max_explain_steps = 1'000'000};

  /// Snapshots and log compaction (Raft §7), for a state machine that can take them
  /// (raftkit::snapshottable; others run with whole logs): often, and sent in small
  /// chunks, so that an InstallSnapshot spans many messages for the network to lose,
  /// duplicate and reorder, and writes slow enough for crashes to interrupt. Each knob
  /// left at 0 (or unset) is drawn from the seed, so a sweep covers the range.
  bool snapshots = true;
  /// Applied entries between snapshots; 0: the seed picks 4, 8, 16, 32 or 64.
  std::uint64_t snapshot_interval = 0;
  /// Entries kept behind a snapshot; unset: the seed picks 0, 1, a quarter or all of the interval.
  std::optional<std::uint64_t> snapshot_trailing;
  /// Bytes per InstallSnapshot chunk; 0: the seed picks 16, 64, 256 or 1024 (and a byte
  /// window of 4 chunks in flight, or the default one).
  std::size_t snapshot_chunk_bytes = 0;
  /// The longest a snapshot write takes (from taking it to it being durable; a crash
  /// meanwhile loses it): each seed picks 0, a quarter, half, three quarters or all of it.
  duration snapshot_write_delay = std::chrono::milliseconds(40);
  /// With partitions and snapshots: how long a follower isolated long enough to need a
  /// snapshot stays cut off (each time from half of this to all of it).
  duration isolation = std::chrono::seconds(2);

  /// Membership changes (thesis chapter 4): the cluster has `spares` more nodes, started
  /// with node_config::join, and an operator on the leader changes the configuration while
  /// the faults go on: it adds voters and learners, promotes learners, removes voters (the
  /// leader too) and learners, and replaces a crashed voter with a fresh spare. A node
  /// whose removal committed stays up (and may be added again) or is stopped for good.
  bool membership = false;
  std::size_t spares = 2;
  /// How long a membership change may take to catch a new voter up (node_config's).
  duration catch_up_timeout = std::chrono::seconds(2);

  /// Turns every kind of fault on, with light message loss and duplication (with
  /// snapshots, unless `snapshots` was turned off). A bare `raftkit-sim --seed N` runs this
  /// mix with `membership` on as well.
  run_options& all_faults() {
    reorder = partitions = crashes = pauses = clock_drift = slow_disk = true;
    loss = 0.02;
    dup = 0.01;
    return *this;
  }
};

/// What a client sends next.
template <class Input>
struct request {
  Input input{};      ///< What it asks: what the history records and the model steps on.
  /// A read: it changes nothing, so it may also be answered by the state machine's
  /// query() once ReadIndex or a lease confirmed the replica is up to date.
  bool read = false;
};

/// How a client operation ended, as its client saw it.
enum class op_outcome : std::uint8_t {
  ok,       ///< It completed with an answer.
  failed,   ///< It definitely did not take effect (raftkit::may_have_applied is false), or a read failed.
  unknown,  ///< It may or may not have taken effect (a timeout, a crash, a lost leader).
};

/// The name of an outcome, for messages and timelines.
constexpr std::string_view to_string(op_outcome o) noexcept {
  switch (o) {
    case op_outcome::ok: return "ok";
    case op_outcome::failed: return "failed";
    case op_outcome::unknown: return "unknown";
  }
  return "?";
}

/// What a workload sees when it picks a client's next request. Its random numbers are
/// the run's, drawn from the seed: the only randomness a workload may use, so that a seed
/// replays exactly.
class workload_context {
 public:
  workload_context(std::size_t client, std::uint64_t count, time_point now, const run_options& o,
                   raftkit::detail::splitmix64& rng) noexcept
      : client_(client), count_(count), now_(now), o_(o), rng_(rng) {}

  /// Which client asks (0 to clients - 1).
  std::size_t client() const noexcept { return client_; }
  /// How many requests this client made before this one.
  std::uint64_t count() const noexcept { return count_; }
  /// The virtual time.
  time_point now() const noexcept { return now_; }
  /// The run's options (clients, keys, ops_per_key...).
  const run_options& options() const noexcept { return o_; }
  /// Uniform in [0, n), n > 0.
  std::uint64_t below(std::uint64_t n) noexcept { return rng_.below(n); }
  /// True with probability p.
  bool chance(double p) noexcept { return rng_.chance(p); }

 private:
  std::size_t client_;
  std::uint64_t count_;
  time_point now_;
  const run_options& o_;
  raftkit::detail::splitmix64& rng_;
};

namespace detail {
template <class S>
struct scenario_types {
  using input = typename S::input_type;
  using output = typename S::output_type;
};
template <class S>
  requires requires { typename S::model_type; }
struct scenario_types<S> {
  using input = typename S::model_type::input;
  using output = typename S::model_type::output;
};
}  // namespace detail

/// What a scenario's clients ask, and what they are told.
template <class S>
using scenario_input_t = typename detail::scenario_types<S>::input;
template <class S>
using scenario_output_t = typename detail::scenario_types<S>::output;

/// A scenario (see the file comment).
template <class S>
concept scenario =
    requires { typename S::state_machine_type; } && state_machine<typename S::state_machine_type> &&
    requires(S& s, const S& cs, node_id id, workload_context& ctx, const scenario_input_t<S>& in,
             const apply_result_t<typename S::state_machine_type>& res) {
      { s.make_state_machine(id) } -> std::same_as<typename S::state_machine_type>;
      { s.next(ctx) } -> std::same_as<request<scenario_input_t<S>>>;
      { cs.encode(in) } -> std::same_as<shared_bytes>;
      { cs.output(in, res) } -> std::convertible_to<scenario_output_t<S>>;
    };

/// Whether S names a model to check its histories against.
template <class S>
concept scenario_has_model = requires { typename S::model_type; } && model<typename S::model_type>;

/// Whether S's reads may be answered by the state machine's query().
template <class S>
concept scenario_reads_by_query =
    has_query<typename S::state_machine_type> &&
    requires(const S& cs, const scenario_input_t<S>& in,
             const query_result_t<typename S::state_machine_type>& res) {
      { cs.output(in, res) } -> std::convertible_to<scenario_output_t<S>>;
    };

/// Keys (or any partitions of a workload) in use at a time, each replaced by a fresh one
/// once `per_partition` of its operations reached the history, as Jepsen's independent
/// keys do: every partition's history stays short, so operations of unknown outcome
/// cannot pile up on one for the whole run, and the linearizability check stays fast.
class partition_rotation {
 public:
  /// `slots` partitions in use at a time (at least 1); `per_partition` = 0 never moves on.
  partition_rotation(std::size_t slots, std::size_t per_partition)
      : slots_(std::max<std::size_t>(slots, 1)), per_(per_partition) {
    for (auto& s : slots_) s.id = next_++;
  }

  /// Picks one of the slots (one draw) and returns the id of its partition, first moving
  /// the slot to a fresh id if its partition has had its operations.
  std::uint64_t take(workload_context& ctx) {
    slot& s = slots_[ctx.below(slots_.size())];
    if (per_ > 0 && s.recorded >= per_) {
      s.id = next_++;
      s.recorded = 0;
      s.used = false;
    }
    if (!s.used) ++used_;
    s.used = true;
    return s.id;
  }

  /// Counts an operation on partition `id` that reached the history (it completed, or
  /// its outcome is unknown). Those refused outright do not count, and those in flight
  /// when a slot moves on still land on the old partition, so a partition's history holds
  /// at most about per_partition + clients operations.
  void recorded(std::uint64_t id) {
    for (auto& s : slots_)
      if (s.id == id) ++s.recorded;
  }

  /// How many distinct partitions were taken.
  std::uint64_t used() const noexcept { return used_; }

 private:
  struct slot {
    std::uint64_t id = 0;
    std::size_t recorded = 0;
    bool used = false;
  };
  std::vector<slot> slots_;
  std::size_t per_;
  std::uint64_t next_ = 0;
  std::uint64_t used_ = 0;
};

}  // namespace raftkit::sim
