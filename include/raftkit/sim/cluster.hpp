#pragma once
/// \file sim::cluster: a whole Raft cluster in one thread over the in-memory policies.
///
/// Virtual time moves from event to event (a message due, a node's deadline, a write
/// completing), so a simulated minute takes milliseconds. Every node has its own
/// manual_clock, which lets a test fire one node's election timer on purpose and lets
/// the fault model run clocks at different rates. Faults (partitions, crashes, pauses,
/// loss, delay) are set from outside: by a test step by step, or by sim::runner from a
/// seed.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/assert.hpp"
#include "raftkit/config.hpp"
#include "raftkit/manual_clock.hpp"
#include "raftkit/memory/log_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"
#include "raftkit/memory/transport.hpp"
#include "raftkit/node.hpp"

namespace raftkit::sim {

/// The default storage of simulated nodes: memory::log_store, whose durable and unsynced
/// parts let a crash lose exactly the unsynced writes, with a configurable write delay,
/// and memory::snapshot_store, whose unfinished snapshots a crash loses. A storage policy
/// without `snapshot_type` runs nodes without snapshots.
/// A storage policy tells the cluster how to make, lend, crash and reopen a node's
/// store; sim/file_storage.hpp has one over file::log_store.
struct memory_storage {
  using store_type = memory::log_store;  ///< what the cluster keeps across crashes
  using node_store = memory::log_store;  ///< what the node holds (a handle to it)
  memory::log_store_options options;

  store_type make(node_id) const { return store_type(options); }
  static node_store lend(store_type& s) { return s; }
  static memory::log_store& disk(store_type& s) { return s; }
  static void crash(store_type& s) { s.crash(); }
  static void reopen(store_type&, node_id) {}
  static bool is_open(const store_type&) { return true; }

  using snapshot_type = memory::snapshot_store;  ///< copies are handles to one store
  static snapshot_type make_snapshots(node_id) { return {}; }
  static void crash_snapshots(snapshot_type& s) { s.crash(); }
};

namespace detail {
template <class Storage>
struct snapshot_policy_of {
  using type = no_snapshots;
};
template <class Storage>
  requires requires { typename Storage::snapshot_type; }
struct snapshot_policy_of<Storage> {
  using type = typename Storage::snapshot_type;
};
}  // namespace detail

/// How a simulated cluster is set up.
struct cluster_options {
  std::size_t nodes = 3;
  std::uint64_t seed = 1;
  duration latency = std::chrono::microseconds(100);  ///< base one-way latency
  memory::log_store_options store;
  node_config node;  ///< template: id, members and seed are filled per node
  /// Spare servers, ids nodes+1 .. nodes+spares: they start with node_config::join (no
  /// configuration) and take part once a membership change adds them.
  std::size_t spares = 0;
  /// How long writing a snapshot takes (virtual time, from taking it to its commit); a
  /// crash meanwhile loses it. 0 writes it inline, at once.
  duration snapshot_write_delay{0};
};

/// A simulated cluster of `basic_node`s running StateMachine over Storage.
template <class StateMachine, class Storage = memory_storage>
class cluster {
 public:
  using storage_type = Storage;
  using snapshot_type = typename detail::snapshot_policy_of<Storage>::type;
  static constexpr bool has_snapshots = !std::is_same_v<snapshot_type, no_snapshots>;
  using node_type =
      basic_node<memory::transport, typename Storage::node_store, StateMachine, manual_clock, snapshot_type>;

  /// Makes the state machine of a node at each start (the first, and every restart
  /// after a crash): called with the node's id.
  using state_machine_factory = std::function<StateMachine(node_id)>;

  /// With the default storage, `opts.store` configures it; another storage policy is
  /// passed in `storage`. Every node starts with a value-initialized StateMachine.
  explicit cluster(cluster_options opts, Storage storage = make_default_storage<Storage>())
    requires std::is_default_constructible_v<StateMachine>
      : cluster(std::move(opts), [](node_id) { return StateMachine{}; }, std::move(storage)) {}

  /// As above, with each node's state machine made by `make` (so StateMachine needs no
  /// default constructor, and a test can give each replica what it needs).
  cluster(cluster_options opts, state_machine_factory make,
          Storage storage = make_default_storage<Storage>())
      : opts_(std::move(opts)),
        storage_(std::move(storage)),
        make_state_machine_(std::move(make)),
        net_(std::make_shared<memory::network>(opts_.latency)) {
    RAFTKIT_ASSERT(static_cast<bool>(make_state_machine_), "a cluster needs a state machine factory");
    RAFTKIT_ASSERT(opts_.nodes >= 1, "a cluster needs a node");
    for (std::size_t i = 1; i <= opts_.nodes + opts_.spares; ++i) ids_.push_back(i);
    for (std::size_t i = 1; i <= opts_.nodes; ++i) initial_members_.push_back(i);
    for (std::size_t i = 0; i < ids_.size(); ++i) slots_.push_back(std::make_unique<slot>());
    for (node_id id : ids_) at(id).joiner = id > opts_.nodes;
    for (node_id id : ids_) {
      if constexpr (std::is_same_v<Storage, memory_storage>) storage_.options = opts_.store;
      slot& s = at(id);
      s.store.emplace(storage_.make(id));
      if constexpr (has_snapshots) s.snaps.emplace(Storage::make_snapshots(id));
      start(id);
    }
    net_->set_fault_hook([this](const message& m) { return route(m); });
  }
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  // ------------------------------------------------------------ access

  /// Every node, spares included.
  const std::vector<node_id>& ids() const noexcept { return ids_; }
  /// The initial configuration's voters (ids 1 to options().nodes).
  const std::vector<node_id>& initial_members() const noexcept { return initial_members_; }
  /// Whether `id` starts with node_config::join (a spare).
  bool is_joiner(node_id id) const { return at(id).joiner; }
  /// How the cluster was set up (its seed included).
  const cluster_options& options() const noexcept { return opts_; }
  bool is_up(node_id id) const { return at(id).node.has_value(); }
  bool is_paused(node_id id) const { return at(id).paused; }
  node_type& node(node_id id) {
    RAFTKIT_ASSERT(is_up(id), "node is down");
    return *at(id).node;
  }
  /// The node's "disk": memory::log_store& by default. Valid while has_store(id).
  auto& store(node_id id) { return Storage::disk(*at(id).store); }
  /// Whether `id`'s store can be read now (a file store is closed while its node is down).
  bool has_store(node_id id) const { return Storage::is_open(*at(id).store); }
  manual_clock& clock(node_id id) { return at(id).clock; }
  memory::network& net() noexcept { return *net_; }
  time_point now() const noexcept { return now_; }
  /// The node's snapshot store (with a storage policy that has one).
  snapshot_type& snapshots(node_id id)
    requires has_snapshots
  {
    return *at(id).snaps;
  }
  /// How many times `id` has been started (1 for a node never restarted).
  unsigned incarnation(node_id id) const { return at(id).incarnation; }
  /// The applied index `id` started its current incarnation at (its snapshot's, or 0).
  index_t applied_at_start(node_id id) const { return at(id).applied_at_start; }

  /// A state machine made afresh by the cluster's factory, as a node gets at a start (for
  /// a check that restores a snapshot into one).
  StateMachine make_state_machine(node_id id) const { return make_state_machine_(id); }

  /// Crashes that lost a snapshot being written (taken, not yet durable).
  std::uint64_t snapshot_writes_lost() const noexcept { return writes_lost_; }
  /// Crashes of a node that was being sent a snapshot: it had received chunks of one
  /// above its commit index and had not installed it.
  std::uint64_t snapshot_installs_lost() const noexcept { return installs_lost_; }

  /// The leader of the highest term among running nodes, or no_node.
  node_id leader() const {
    node_id best = no_node;
    term_t best_term = 0;
    for (node_id id : ids_) {
      const slot& s = at(id);
      if (s.node && !s.paused && s.node->is_leader() && s.node->term() >= best_term) {
        best = id;
        best_term = s.node->term();
      }
    }
    return best;
  }

  // ------------------------------------------------------------ faults

  /// Cuts both directions between `a` and `b`.
  void cut(node_id a, node_id b) { cut_one_way(a, b); cut_one_way(b, a); }
  /// Drops messages from `a` to `b` only.
  void cut_one_way(node_id a, node_id b) { blocked_.insert({a, b}); }
  /// Cuts `id` off from every other node.
  void isolate(node_id id) {
    for (node_id o : ids_)
      if (o != id) cut(id, o);
  }
  /// Splits the cluster: nodes in different groups cannot talk.
  void partition(const std::vector<std::vector<node_id>>& groups) {
    heal();
    for (std::size_t g = 0; g < groups.size(); ++g)
      for (std::size_t h = 0; h < groups.size(); ++h)
        if (g != h)
          for (node_id a : groups[g])
            for (node_id b : groups[h]) cut_one_way(a, b);
  }
  /// Removes every cut.
  void heal() { blocked_.clear(); }
  /// Removes every cut to or from `id` (the end of its isolation); other cuts stay.
  void rejoin(node_id id) {
    std::erase_if(blocked_, [id](const std::pair<node_id, node_id>& c) { return c.first == id || c.second == id; });
  }
  bool blocked(node_id from, node_id to) const { return blocked_.count({from, to}) != 0; }

  /// Extra per-message faults (loss, delay, duplication), applied after the cuts.
  void set_fault_model(std::function<memory::delivery(const message&)> f) { faults_ = std::move(f); }

  /// Crashes `id`: its process stops, its unsent messages and unsynced writes are lost.
  /// Messages to it that arrive while it is down are lost; ones still in the network
  /// when it restarts reach the new incarnation (a datagram network, the harsher case).
  void crash(node_id id) {
    slot& s = at(id);
    if (!s.node) return;
    if constexpr (has_snapshots) {
      if (s.installing > s.node->commit_index()) ++installs_lost_;
      s.installing = 0;
    }
    s.node->stop();
    s.node.reset();
    s.paused = false;
    storage_.crash(*s.store);
    if constexpr (has_snapshots) {
      // A snapshot being written dies with the process.
      writes_lost_ += static_cast<std::uint64_t>(
          std::erase_if(snapshot_jobs_, [&](const snapshot_job_entry& j) { return j.node == id; }));
      Storage::crash_snapshots(*s.snaps);
    }
    net_->drop_in_flight(id, false);
  }
  /// Starts `id` again from what its store made durable, with a fresh state machine (from
  /// the factory).
  void restart(node_id id) {
    if (is_up(id)) return;
    start(id);
  }
  /// Pauses `id` (a stopped process or a long GC): it neither runs timers nor receives;
  /// messages to it wait in the network until it resumes.
  void pause(node_id id) { at(id).paused = true; }
  void resume(node_id id) {
    slot& s = at(id);
    if (!s.paused) return;
    s.paused = false;
    s.clock.advance(duration(static_cast<std::int64_t>(static_cast<double>(s.missed.count()) * s.rate)));
    s.missed = duration{0};
    for (auto& m : s.held) deliver_to(id, std::move(m));
    s.held.clear();
  }
  /// Makes `id`'s clock run at `rate` times real speed (clock drift).
  void set_clock_rate(node_id id, double rate) { at(id).rate = rate; }

  /// Fires `id`'s election timer now (a test's way to pick who runs first).
  void expire_election_timer(node_id id) {
    slot& s = at(id);
    s.clock.advance(std::chrono::hours(1));
    s.node->tick();
    settle();
  }

  // ------------------------------------------------------------ running

  /// Processes everything due now: messages, ticks and store completions, until quiet.
  void settle() {
    for (int rounds = 0; rounds < 1'000'000; ++rounds) {
      bool any = net_->deliver_one();
      if constexpr (has_snapshots) any = run_snapshot_jobs() || any;
      for (node_id id : ids_) {
        slot& s = at(id);
        if (!s.node || s.paused) continue;
        if (s.node->next_deadline() <= s.clock.now()) {
          s.node->tick();
          any = true;
        }
      }
      if (!any) any = sync_storage();
      if (!any) return;
    }
    RAFTKIT_ASSERT(false, "cluster did not settle (livelock)");
  }

  /// Advances to the next event (or by at most `max_step`) and processes it.
  void step(duration max_step = std::chrono::milliseconds(10)) {
    time_point next = now_ + max_step;
    time_point t;
    if (net_->next_delivery(t)) next = std::min(next, std::max(t, now_));
    for (node_id id : ids_) {
      slot& s = at(id);
      if (!s.node || s.paused) continue;
      next = std::min(next, global_time_for(s, s.node->next_deadline()));
      if constexpr (requires { store(id).next_completion(t); }) {
        if (store(id).next_completion(t)) next = std::min(next, global_time_for(s, t));
      }
    }
    if constexpr (has_snapshots)
      for (const auto& j : snapshot_jobs_) next = std::min(next, std::max(j.due, now_));
    advance_to(std::max(next, now_));
    settle();
  }

  /// Runs for `d` of virtual time.
  void run_for(duration d) {
    const time_point end = now_ + d;
    while (now_ < end) step(std::min<duration>(end - now_, std::chrono::milliseconds(10)));
  }

  /// Runs until `pred()` holds or `budget` of virtual time passed; returns pred().
  template <class Pred>
  bool run_until(Pred&& pred, duration budget) {
    const time_point end = now_ + budget;
    while (!pred()) {
      if (now_ >= end) return false;
      step(std::min<duration>(end - now_, std::chrono::milliseconds(10)));
    }
    return true;
  }

  /// Runs until some node leads and has committed its whole log (so a majority knows
  /// it); returns that leader, or no_node if the budget ran out.
  node_id elect(duration budget = std::chrono::seconds(10)) {
    run_until([&] {
      const node_id l = leader();
      return l != no_node && node(l).commit_index() == store(l).last_index();
    }, budget);
    return leader();
  }

  /// Fires `id`'s election timer and runs until that election is decided (or `budget`
  /// passed); true if `id` won.
  bool campaign(node_id id, duration budget = std::chrono::milliseconds(50)) {
    expire_election_timer(id);
    run_until([&] {
      if (!is_up(id)) return true;
      const role r = node(id).role_now();
      return r != role::candidate && r != role::pre_candidate;  // a pre-vote, then the election
    }, budget);
    return is_up(id) && node(id).is_leader();
  }

  /// Called with every message the network accepts, before faults; a test may inspect
  /// or record it. Return false to drop it.
  void set_observer(std::function<bool(const message&)> f) { observer_ = std::move(f); }

  /// Delivers `m` to its addressee now, bypassing the network (for stale-message tests).
  void inject(message m) {
    const node_id to = m.to;
    deliver_to(to, std::move(m));
    settle();
  }

 private:
  struct snapshot_job_entry {
    time_point due{};
    node_id node = no_node;
    std::uint64_t id = 0;
    typename node_type::snapshot_job job;
  };
  struct no_snapshot_slot {};
  struct slot {
    std::optional<typename Storage::store_type> store;
    std::optional<std::conditional_t<has_snapshots, snapshot_type, no_snapshot_slot>> snaps;
    manual_clock clock;
    std::optional<node_type> node;
    bool paused = false;
    double rate = 1.0;
    duration missed{0};  // virtual time that passed while paused
    unsigned incarnation = 0;
    bool joiner = false;  // starts with node_config::join
    std::vector<message> held;
    index_t installing = 0;  // the snapshot whose chunks it was last sent
    index_t applied_at_start = 0;
  };

  slot& at(node_id id) {
    RAFTKIT_ASSERT(id >= 1 && id <= slots_.size(), "unknown node id");
    return *slots_[id - 1];
  }
  const slot& at(node_id id) const {
    RAFTKIT_ASSERT(id >= 1 && id <= slots_.size(), "unknown node id");
    return *slots_[id - 1];
  }

  void start(node_id id) {
    slot& s = at(id);
    node_config c = opts_.node;
    c.id = id;
    c.join = s.joiner;  // a spare
    c.members = c.join ? std::vector<node_id>{} : initial_members_;
    c.seed = opts_.seed * 1000003u + s.incarnation;
    ++s.incarnation;
    storage_.reopen(*s.store, id);
    if constexpr (has_snapshots) {
      s.node.emplace(std::move(c), memory::transport(net_, id), Storage::lend(*s.store), make_state_machine_(id), s.clock,
                     *s.snaps);
      if (opts_.snapshot_write_delay.count() > 0) {
        s.node->set_snapshot_executor([this, id](std::uint64_t job_id, typename node_type::snapshot_job job) {
          snapshot_jobs_.push_back({now_ + opts_.snapshot_write_delay, id, job_id, std::move(job)});
        });
      }
    } else {
      s.node.emplace(std::move(c), memory::transport(net_, id), Storage::lend(*s.store), make_state_machine_(id), s.clock);
    }
    s.applied_at_start = s.node->applied_index();
    net_->attach(id, [this, id](message&& m) { deliver_to(id, std::move(m)); });
  }

  void deliver_to(node_id id, message&& m) {
    slot& s = at(id);
    if (!s.node) return;
    if (s.paused) {
      s.held.push_back(std::move(m));
      return;
    }
    if (m.type == message_type::install_snapshot) s.installing = m.log_index;
    s.node->receive(std::move(m));
  }

  memory::delivery route(const message& m) {
    if (observer_ && !observer_(m)) return {true};
    if (blocked(m.from, m.to)) return {true};
    return faults_ ? faults_(m) : memory::delivery{};
  }

  /// The global time at which a node's local clock reads `local`.
  time_point global_time_for(const slot& s, time_point local) const {
    if (local == time_point::max()) return time_point::max();  // nothing to do (a stopped node)
    const auto ahead = local - s.clock.now();
    if (ahead.count() <= 0) return now_;
    return now_ + duration(static_cast<std::int64_t>(static_cast<double>(ahead.count()) / s.rate) + 1);
  }

  void advance_to(time_point t) {
    const duration d = t - now_;
    now_ = t;
    net_->advance_to(t);
    for (node_id id : ids_) {
      slot& s = at(id);
      if (s.paused) {  // a paused process sees the jump in time when it resumes
        s.missed += d;
        continue;
      }
      s.clock.advance(duration(static_cast<std::int64_t>(static_cast<double>(d.count()) * s.rate)));
      if (!s.node) continue;
      auto& disk = store(id);
      const index_t before = disk.durable_index();
      if constexpr (requires { disk.poll(s.clock.now()); }) disk.poll(s.clock.now());
      if (s.node && disk.durable_index() != before) s.node->notify_durable();
    }
  }

  /// Finishes the snapshot writes that are due: each runs, then its node hears the result.
  bool run_snapshot_jobs() {
    bool any = false;
    for (std::size_t i = 0; i < snapshot_jobs_.size();) {
      if (snapshot_jobs_[i].due > now_) {
        ++i;
        continue;
      }
      snapshot_job_entry j = std::move(snapshot_jobs_[i]);
      snapshot_jobs_.erase(snapshot_jobs_.begin() + static_cast<std::ptrdiff_t>(i));
      const std::error_code ec = j.job();
      if (is_up(j.node)) node(j.node).snapshot_written(j.id, ec);
      any = true;
    }
    return any;
  }

  /// A storage whose durability runs on its own threads (files) is brought to a
  /// deterministic point when the cluster is quiet: everything appended is made
  /// durable and the node told. Returns whether any node's durability moved.
  bool sync_storage() {
    bool moved = false;
    if constexpr (requires(typename Storage::store_type& st) { Storage::sync(st); }) {
      for (node_id id : ids_) {
        slot& s = at(id);
        if (!s.node || s.paused) continue;
        const index_t before = store(id).durable_index();
        Storage::sync(*s.store);
        if (store(id).durable_index() != before) {
          s.node->notify_durable();
          moved = true;
        }
      }
    }
    return moved;
  }

  template <class S>
  static S make_default_storage() {
    return S{};
  }

  cluster_options opts_;
  Storage storage_;
  state_machine_factory make_state_machine_;
  std::shared_ptr<memory::network> net_;
  std::vector<node_id> ids_;              // every server, spares included
  std::vector<node_id> initial_members_;  // the first configuration's voters: 1 .. nodes
  std::vector<std::unique_ptr<slot>> slots_;
  std::set<std::pair<node_id, node_id>> blocked_;
  std::function<memory::delivery(const message&)> faults_;
  std::function<bool(const message&)> observer_;
  std::vector<snapshot_job_entry> snapshot_jobs_;  // snapshot writes in progress, oldest first
  std::uint64_t writes_lost_ = 0;
  std::uint64_t installs_lost_ = 0;
  time_point now_{};
};

}  // namespace raftkit::sim
