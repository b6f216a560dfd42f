#pragma once
/// \file sim::run: one seeded simulation. A cluster runs the key-value state machine
/// while simulated clients put, get and append through random nodes and a fault
/// schedule drawn from the seed crashes, pauses, partitions and slows nodes and loses,
/// duplicates and delays messages. Invariants are checked after every step; after the
/// faults stop the cluster must elect a leader and commit within a bounded time; the
/// client history must be linearizable. Everything comes from the seed, so a failure
/// replays exactly.
///
/// Clients use `keys` keys at a time and move each to a fresh key after `ops_per_key`
/// operations, as Jepsen's independent keys do: every key's history stays short, so the
/// operations whose outcome is unknown cannot pile up on one key for the whole run.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "raftkit/detail/random.hpp"
#include "raftkit/sim/cluster.hpp"
#include "raftkit/sim/file_storage.hpp"
#include "raftkit/sim/history.hpp"
#include "raftkit/sim/invariants.hpp"
#include "raftkit/sim/kv.hpp"
#include "raftkit/sim/linearizability.hpp"

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
  std::size_t keys = 3;         ///< keys in use at a time
  /// Operations a key takes before the clients move on to a fresh key; 0 keeps the same
  /// `keys` keys for the whole run.
  std::size_t ops_per_key = 100;
  duration op_timeout = std::chrono::seconds(1);   ///< a client gives up after this
  duration recovery = std::chrono::seconds(10);    ///< budget to elect and commit after faults
  bool trace = false;       ///< keep a readable event log in the result
  /// Non-empty: nodes keep their logs in file::log_store directories under this root
  /// (which must exist and be empty) instead of memory::log_store. A crash then closes
  /// the files and a restart recovers them; disk slowness is not simulated.
  std::string file_log_root;
  /// The engine's extensions (thesis §9.6, §6.2, §4.2.3): on, as in a default node_config.
  bool pre_vote = true;
  bool check_quorum = true;
  bool leader_stickiness = true;
  /// Gets go through the log, through ReadIndex, or (when leases are on) through the
  /// leader's lease, a third each. Leases are on only where clock drift stays within
  /// `clock_drift_bound`: without clock_drift, or with max/min clock rate within it.
  bool read_index_reads = true;
  bool lease_reads = true;
  double clock_drift_bound = 1.1;
  /// How the client history is checked for linearizability (a violation's explanation
  /// includes the longest linearizable prefix a search finds).
  check_options check{.max_explain_steps = 1'000'000};

  /// Turns every kind of fault on, with light message loss and duplication: the mix a
  /// bare `raftkit-sim --seed N` runs.
  run_options& all_faults() {
    reorder = partitions = crashes = pauses = clock_drift = slow_disk = true;
    loss = 0.02;
    dup = 0.01;
    return *this;
  }
};

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

/// Counters of one run.
struct run_stats {
  std::uint64_t steps = 0;
  std::int64_t virtual_ns = 0;
  std::uint64_t ops_ok = 0;
  std::uint64_t ops_unknown = 0;
  std::uint64_t ops_failed = 0;  ///< definitely not applied (see raftkit::may_have_applied), or a failed read
  std::uint64_t reads_log = 0;    ///< gets through the log (acknowledged)
  std::uint64_t reads_index = 0;  ///< gets through ReadIndex (acknowledged)
  std::uint64_t reads_lease = 0;  ///< gets through the lease (acknowledged)
  std::uint64_t elections = 0;    ///< elections started (a term raised), over every node and incarnation
  std::uint64_t elections_won = 0;
  std::uint64_t pre_votes = 0;    ///< pre-vote rounds started
  term_t max_term = 0;            ///< the highest term any node reached
  std::uint64_t faults = 0;
  std::uint64_t leaders = 0;     ///< terms in which a leader was seen
  std::uint64_t messages = 0;
  std::uint64_t keys = 0;        ///< distinct keys the clients used
};

/// What one run found.
struct run_result {
  run_verdict verdict = run_verdict::passed;  ///< How the run ended.
  bool passed = true;   ///< verdict == passed: every check ran and held.
  std::string failure;  ///< What failed, or why the run is inconclusive (empty when passed).
  run_stats stats;
  history hist;
  std::string trace;
};

namespace detail {

/// One seeded run (see file comment).
template <class Storage>
class simulation {
 public:
  simulation(const run_options& o, Storage storage)
      : o_(o),
        c_(make_options(o), std::move(storage)),
        checker_(c_),
        rng_(o.seed * 0x2545F4914F6CDD1Dull + 17),
        net_rng_(o.seed * 0x9E3779B97F4A7C15ull + 3),
        clients_(o.clients),
        key_slots_(std::max<std::size_t>(o.keys, 1)) {
    for (std::size_t k = 0; k < key_slots_.size(); ++k) key_slots_[k].id = next_key_++;
    c_.set_fault_model([this](const message& m) { return network_fault(m); });
  }

  run_result run() {
    try {
      execute();
    } catch (const std::exception& e) {
      fail(std::string("engine assertion: ") + e.what());
    }
    r_.stats.virtual_ns = c_.now().time_since_epoch().count();
    r_.stats.leaders = checker_.terms_with_leader();
    r_.stats.messages = c_.net().stats().sent;
    r_.stats.keys = keys_used_;
    for (node_id id : c_.ids()) count_elections(id);
    r_.trace = trace_.str();
    return std::move(r_);
  }

 private:
  struct client {
    bool busy = false;
    std::uint64_t generation = 0;
    std::uint64_t count = 0;
    time_point next_start{};
    time_point deadline{};
    op_kind op = op_kind::get;
    std::string key, value;
    std::size_t key_slot = 0;  // where `key` came from
    std::uint64_t key_id = 0;
    time_point call{};
  };

  /// The cluster's shape also comes from the seed: batch sizes and timeouts vary so
  /// that sweeps cover one-entry messages, long pipelines and tight elections.
  /// Leases only where the mix keeps its promise about clocks.
  static bool leases_on(const run_options& o) {
    return o.lease_reads && o.check_quorum && o.leader_stickiness &&
           (!o.clock_drift || o.max_clock_rate / o.min_clock_rate <= o.clock_drift_bound);
  }

  static cluster_options make_options(const run_options& o) {
    raftkit::detail::splitmix64 r(o.seed ^ 0x5bd1e995u);
    cluster_options co;
    co.nodes = o.nodes;
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
    return co;
  }

  void execute() {
    const time_point fault_end = c_.now() + o_.time;
    time_point next_fault = c_.now() + pick(std::chrono::milliseconds(50), std::chrono::milliseconds(400));
    faults_on_ = true;
    while (!done() && c_.now() < fault_end) {
      restart_due();
      if (any_faults() && c_.now() >= next_fault) {
        inject_fault();
        next_fault = c_.now() + pick(std::chrono::milliseconds(20), std::chrono::milliseconds(400));
      }
      drive_clients();
      step();
    }
    if (done()) return;
    calm();
    // Liveness: with faults gone, a leader is elected and commits a new entry.
    bool committed = false;
    const time_point live_end = c_.now() + o_.recovery;
    bool proposed = false;
    term_t proposed_term = 0;
    node_id proposed_on = no_node;
    while (!done() && !committed && c_.now() < live_end) {
      const node_id l = c_.leader();
      if (l != no_node && (!proposed || c_.node(l).term() != proposed_term || l != proposed_on)) {
        proposed = true;
        proposed_term = c_.node(l).term();
        proposed_on = l;
        const shared_bytes cmd = encode_kv(op_kind::put, "__liveness__", "1");
        c_.node(l).propose(cmd.bytes(), [&committed](std::error_code ec, const kv_result&) {
          if (!ec) committed = true;
        });
      }
      drive_clients();
      step();
    }
    if (done()) return;
    if (!committed) return fail("liveness: no leader committed a new entry within " + ms(o_.recovery) + " after the faults stopped");
    // Let clients finish what they started, then close the history.
    stop_clients_ = true;
    const time_point drain_end = c_.now() + o_.op_timeout * 2;
    while (!done() && c_.now() < drain_end && any_client_busy()) {
      drive_clients();
      step();
    }
    for (auto& cl : clients_)
      if (cl.busy) give_up(cl);
    if (done()) return;
    const auto verdict = check_linearizability(r_.hist.operations(), o_.check);
    if (verdict.verdict == check_verdict::not_linearizable)
      return fail("history not linearizable on key '" + verdict.key + "': " + verdict.explanation);
    if (verdict.verdict == check_verdict::inconclusive)
      return end(run_verdict::inconclusive, "linearizability check inconclusive: " + verdict.explanation);
    if (verdict.verdict != check_verdict::linearizable)
      return fail("linearizability check: " + std::string(to_string(verdict.verdict)) + ": " + verdict.explanation);
  }

  bool done() const { return r_.verdict != run_verdict::passed; }

  void fail(std::string what) { end(run_verdict::failed, std::move(what)); }

  // The first verdict other than passed is the run's.
  void end(run_verdict v, std::string what) {
    if (done()) return;
    r_.verdict = v;
    r_.passed = false;
    r_.failure = std::move(what);
    event(std::string(v == run_verdict::failed ? "FAILED: " : "INCONCLUSIVE: ") + r_.failure);
  }

  void step() {
    c_.step(std::chrono::milliseconds(5));
    ++r_.stats.steps;
    if (auto bad = checker_.check()) return fail("invariant: " + *bad);
    const node_id l = c_.leader();
    if (l != no_node && (l != last_leader_ || c_.node(l).term() != last_term_)) {
      last_leader_ = l;
      last_term_ = c_.node(l).term();
      event("node " + std::to_string(l) + " is leader of term " + std::to_string(last_term_));
    }
    expire_clients();
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
      return d;
    }
    if (o_.reorder && o_.delay.count() > 0) {
      d.delay = duration(static_cast<std::int64_t>(net_rng_.below(static_cast<std::uint64_t>(o_.delay.count()))));
      if (net_rng_.chance(0.02)) d.delay *= 10;  // now and then a very late message
    }
    if (o_.dup > 0 && net_rng_.chance(o_.dup)) {
      d.copies = 2;
      d.dup_delay = duration(static_cast<std::int64_t>(net_rng_.below(static_cast<std::uint64_t>(std::max<std::int64_t>(o_.delay.count(), 1)))));
    }
    return d;
  }

  void inject_fault() {
    std::vector<int> kinds;
    if (o_.crashes) kinds.insert(kinds.end(), {0, 0, 1, 1, 9, 9});
    if (o_.partitions) kinds.insert(kinds.end(), {2, 2, 3, 4});
    if (o_.pauses) kinds.insert(kinds.end(), {5, 6});
    if (o_.clock_drift) kinds.push_back(7);
    if (o_.slow_disk) kinds.push_back(8);
    ++r_.stats.faults;
    const node_id n = random_node();
    switch (kinds[rng_.below(kinds.size())]) {
      case 0:
        if (c_.is_up(n) && up_count() > 1) {
          count_elections(n);
          c_.crash(n);
          event("crash node " + std::to_string(n));
        }
        break;
      case 1:
        for (node_id id : c_.ids())
          if (!c_.is_up(id)) {
            c_.restart(id);
            event("restart node " + std::to_string(id));
            break;
          }
        break;
      case 2: {
        std::vector<node_id> a, b;
        for (node_id id : c_.ids()) (rng_.chance(0.5) ? a : b).push_back(id);
        c_.partition({a, b});
        event("partition " + list(a) + " | " + list(b));
        break;
      }
      case 3: {
        const node_id m = random_node();
        if (m != n) {
          c_.cut_one_way(n, m);
          event("cut one way " + std::to_string(n) + " -> " + std::to_string(m));
        } else {
          c_.isolate(n);
          event("isolate node " + std::to_string(n));
        }
        break;
      }
      case 4:
        c_.heal();
        event("heal network");
        break;
      case 5:
        if (c_.is_up(n) && !c_.is_paused(n)) {
          c_.pause(n);
          event("pause node " + std::to_string(n));
        }
        break;
      case 6:
        for (node_id id : c_.ids())
          if (c_.is_paused(id)) {
            c_.resume(id);
            event("resume node " + std::to_string(id));
            break;
          }
        break;
      case 7: {
        const double rate = o_.min_clock_rate + (o_.max_clock_rate - o_.min_clock_rate) * static_cast<double>(rng_.below(16)) / 15.0;
        c_.set_clock_rate(n, rate);
        event("clock of node " + std::to_string(n) + " runs at " + std::to_string(rate));
        break;
      }
      case 9:  // a crash a supervisor restarts at once, while messages to it are in flight
        if (c_.is_up(n) && up_count() > 1) {
          count_elections(n);
          c_.crash(n);
          restarts_.push_back({c_.now() + pick(duration{0}, std::chrono::milliseconds(100)), n});
          event("crash node " + std::to_string(n) + " (restarts soon)");
        }
        break;
      case 8: {
        const auto d = std::chrono::microseconds(200 + rng_.below(50'000));
        if constexpr (requires { c_.store(n).set_write_delay(d); }) {
          c_.store(n).set_write_delay(d);
          event("disk of node " + std::to_string(n) + " takes " + std::to_string(d.count()) + "us");
        }
        break;
      }
    }
  }

  void restart_due() {
    for (auto it = restarts_.begin(); it != restarts_.end();) {
      if (it->first <= c_.now()) {
        if (!c_.is_up(it->second)) {
          c_.restart(it->second);
          event("restart node " + std::to_string(it->second));
        }
        it = restarts_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Ends every fault: heal, resume, restart, normal clocks and disks, no message loss.
  void calm() {
    restarts_.clear();
    faults_on_ = false;
    c_.heal();
    for (node_id id : c_.ids()) {
      c_.resume(id);
      c_.restart(id);
      c_.set_clock_rate(id, 1.0);
      if constexpr (requires { c_.store(id).set_write_delay(duration{}); })
        c_.store(id).set_write_delay(std::chrono::microseconds(200));
    }
    event("faults stop: network healed, every node running");
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
    const auto roll = rng_.below(10);
    cl.op = roll < 4 ? op_kind::get : roll < 7 ? op_kind::put : op_kind::append;
    cl.key_slot = rng_.below(key_slots_.size());
    cl.key_id = take_key(cl.key_slot);
    cl.key = "k" + std::to_string(cl.key_id);
    cl.value = cl.op == op_kind::get ? std::string() : "c" + std::to_string(i) + "-" + std::to_string(cl.count);
    ++cl.count;
    cl.busy = true;
    cl.call = c_.now();
    cl.deadline = c_.now() + o_.op_timeout;
    const std::uint64_t gen = ++cl.generation;
    if (o_.trace) event("client " + std::to_string(i) + " " + std::string(to_string(cl.op)) + " " + cl.key + " " + cl.value + " via node " + std::to_string(target));
    const shared_bytes cmd = encode_kv(cl.op, cl.key, cl.value);
    if (cl.op == op_kind::get && o_.read_index_reads) {
      const auto way = rng_.below(3);  // 0: the log, 1: ReadIndex, 2: the lease (else ReadIndex)
      if (way != 0) {
        const bool lease = way == 2 && leases_on(o_);
        return c_.node(target).read_index(
            [this, i, gen, target, cmd, lease](std::error_code ec, index_t at) {
              finish_read(i, gen, ec, at, target, cmd, lease);
            },
            lease ? read_consistency::lease : read_consistency::linearizable);
      }
    }
    c_.node(target).propose(cmd.bytes(), [this, i, gen, cmd](std::error_code ec, const kv_result& res) {
      finish(i, gen, ec, res, cmd);
    });
  }

  /// A read answered without the log: query the replica that answered, now that it has
  /// applied up to the read index. A failed read changed nothing: it is left out.
  void finish_read(std::size_t i, std::uint64_t gen, std::error_code ec, index_t at, node_id on,
                   const shared_bytes& cmd, bool lease) {
    client& cl = clients_[i];
    if (!cl.busy || cl.generation != gen) return;
    cl.busy = false;
    cl.next_start = c_.now() + pick(std::chrono::microseconds(0), std::chrono::milliseconds(20));
    if (ec) {
      ++r_.stats.ops_failed;
      if (o_.trace) event("client " + std::to_string(i) + " read " + cl.key + " failed: " + ec.message());
      return;
    }
    ++r_.stats.ops_ok;
    ++(lease ? r_.stats.reads_lease : r_.stats.reads_index);
    const kv_result res = c_.node(on).state_machine().query(cmd.bytes());
    const std::size_t id = record(i, cl);
    r_.hist.complete(id, c_.now().time_since_epoch().count(), res.output);
    if (o_.trace) event("client " + std::to_string(i) + (lease ? " lease" : " index") + " read " + cl.key + " at index " + std::to_string(at) + " on node " + std::to_string(on) + ": '" + res.output + "'");
  }

  /// Adds node `id`'s election counters (before a crash resets them, and at the end).
  void count_elections(node_id id) {
    if (!c_.is_up(id)) return;
    const auto& k = c_.node(id).counters();
    r_.stats.elections += k.elections;
    r_.stats.elections_won += k.elections_won;
    r_.stats.pre_votes += k.pre_votes;
    r_.stats.max_term = std::max(r_.stats.max_term, c_.node(id).term());
  }

  void finish(std::size_t i, std::uint64_t gen, std::error_code ec, const kv_result& res,
              const shared_bytes& cmd) {
    client& cl = clients_[i];
    if (!cl.busy || cl.generation != gen) return;  // already given up on
    cl.busy = false;
    cl.next_start = c_.now() + pick(std::chrono::microseconds(0), std::chrono::milliseconds(20));
    if (!ec) {
      ++r_.stats.ops_ok;
      if (cl.op == op_kind::get) ++r_.stats.reads_log;
      const std::size_t id = record(i, cl);
      r_.hist.complete(id, c_.now().time_since_epoch().count(), res.output);
      if (o_.trace) event("client " + std::to_string(i) + " " + std::string(to_string(cl.op)) + " " + cl.key + " ok at index " + std::to_string(res.index));
      if (auto bad = checker_.acknowledged(res.index, cmd.bytes())) fail("invariant: " + *bad);
    } else {
      if (o_.trace) event("client " + std::to_string(i) + " " + std::string(to_string(cl.op)) + " " + cl.key + " " + cl.value + " failed: " + ec.message());
      if (!may_have_applied(ec)) {
        ++r_.stats.ops_failed;  // definitely not applied: not part of the history
      } else {
        record_unknown(i, cl);
      }
    }
  }

  void record_unknown(std::size_t i, client& cl) {
    ++r_.stats.ops_unknown;
    const std::size_t id = record(i, cl);
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

  // The key of the next operation in key slot `k`: the slot moves on to a fresh key once
  // ops_per_key operations on its key are in the history. Operations refused outright
  // (not part of the history) do not count, and those in flight when the slot moves
  // still land on the old key, so a key's history holds at most about ops_per_key +
  // clients operations.
  std::uint64_t take_key(std::size_t k) {
    key_slot& slot = key_slots_[k];
    if (o_.ops_per_key > 0 && slot.recorded >= o_.ops_per_key) {
      slot.id = next_key_++;
      slot.recorded = 0;
      slot.used = false;
    }
    if (!slot.used) ++keys_used_;
    slot.used = true;
    return slot.id;
  }

  // Records client `i`'s current operation in the history; returns its history id.
  std::size_t record(std::size_t i, const client& cl) {
    key_slot& slot = key_slots_[cl.key_slot];
    if (slot.id == cl.key_id) ++slot.recorded;
    return r_.hist.invoke(i, cl.op, cl.key, cl.value, cl.call.time_since_epoch().count());
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
  cluster<kv_store, Storage> c_;
  invariant_checker<kv_store, Storage> checker_;
  raftkit::detail::splitmix64 rng_;
  raftkit::detail::splitmix64 net_rng_;
  std::vector<client> clients_;
  struct key_slot {
    std::uint64_t id = 0;      // the key is "k<id>"
    std::size_t recorded = 0;  // operations on it in the history
    bool used = false;         // some operation has taken it
  };
  std::vector<key_slot> key_slots_;
  std::uint64_t next_key_ = 0;
  std::uint64_t keys_used_ = 0;
  std::vector<std::pair<time_point, node_id>> restarts_;
  bool faults_on_ = false;
  bool stop_clients_ = false;
  node_id last_leader_ = no_node;
  term_t last_term_ = 0;
  run_result r_;
  std::ostringstream trace_;
};

}  // namespace detail

/// Runs one seeded simulation (see file comment).
inline run_result run(const run_options& o) {
  if (o.file_log_root.empty()) return detail::simulation<memory_storage>(o, memory_storage{}).run();
  file_storage fs;
  fs.root = o.file_log_root;
  fs.options.segment_size = 64 << 10;  // small segments: rolling happens in short runs
  return detail::simulation<file_storage>(o, std::move(fs)).run();
}

}  // namespace raftkit::sim
