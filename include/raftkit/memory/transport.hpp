#pragma once
/// \file memory::network and memory::transport: messages between nodes of one process.
///
/// The network holds every message in flight in one queue ordered by delivery time and
/// then by send order, so delivery is deterministic. A fault hook decides per message
/// whether it is dropped, delayed or duplicated; the simulator plugs its seeded fault
/// model in there. Nothing here reads a clock: the driver moves the network's time.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "raftkit/detail/unique_function.hpp"
#include "raftkit/transport.hpp"

namespace raftkit::memory {

/// What the fault hook decides for one message.
struct delivery {
  bool drop = false;      ///< lose the message
  duration delay{0};      ///< extra latency on top of the network's base latency
  unsigned copies = 1;    ///< 2 or more duplicates the message (each copy gets `delay`)
  duration dup_delay{0};  ///< extra latency of the duplicates
};

/// Counters of a network.
struct network_stats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t duplicated = 0;
};

/// A simulated network connecting in-process nodes (see file comment).
class network {
 public:
  using receiver = detail::unique_function<void(message&&)>;
  using fault_hook = std::function<delivery(const message&)>;

  /// Every message takes at least `latency`.
  explicit network(duration latency = duration{0}) : latency_(latency) { queue_.reserve(1024); }

  /// Delivers messages addressed to `id` to `r` (replacing any earlier receiver).
  void attach(node_id id, receiver r) { receivers_[id] = std::move(r); }
  /// A detached (crashed) node's messages are dropped on delivery.
  void detach(node_id id) { receivers_.erase(id); }
  bool attached(node_id id) const { return receivers_.count(id) != 0; }

  /// Installs the fault model; an empty hook delivers everything once.
  void set_fault_hook(fault_hook h) { fault_ = std::move(h); }
  void set_latency(duration d) noexcept { latency_ = d; }

  /// Queues `m` for delivery.
  void send(message&& m) {
    ++stats_.sent;
    delivery d;
    if (fault_) d = fault_(m);
    if (d.drop || d.copies == 0) {
      ++stats_.dropped;
      return;
    }
    for (unsigned c = 1; c < d.copies; ++c) {
      ++stats_.duplicated;
      push(message(m), now_ + latency_ + d.delay + d.dup_delay);
    }
    push(std::move(m), now_ + latency_ + d.delay);
  }

  /// The network's current time; messages due at or before it can be delivered.
  time_point now() const noexcept { return now_; }
  void advance_to(time_point t) noexcept { now_ = std::max(now_, t); }

  /// When the next message is due, if any.
  bool next_delivery(time_point& t) const noexcept {
    if (queue_.empty()) return false;
    t = queue_.front().at;
    return true;
  }
  std::size_t in_flight() const noexcept { return queue_.size(); }

  /// Delivers the next due message; false if none is due.
  bool deliver_one() {
    if (queue_.empty() || queue_.front().at > now_) return false;
    std::pop_heap(queue_.begin(), queue_.end(), later);
    item it = std::move(queue_.back());
    queue_.pop_back();
    auto r = receivers_.find(it.msg.to);
    if (r == receivers_.end()) {
      ++stats_.dropped;
      return true;
    }
    ++stats_.delivered;
    r->second(std::move(it.msg));
    return true;
  }
  /// Delivers due messages until none is due (including ones sent meanwhile with no delay).
  std::size_t deliver_all() {
    std::size_t n = 0;
    while (deliver_one()) ++n;
    return n;
  }
  /// Drops every message in flight from `id` (a crashed process's unsent output), and
  /// with `and_to` also every message to it (as a TCP connection reset would).
  void drop_in_flight(node_id id, bool and_to = true) {
    auto keep = std::remove_if(queue_.begin(), queue_.end(), [&](const item& it) {
      return (and_to && it.msg.to == id) || it.msg.from == id;
    });
    stats_.dropped += static_cast<std::uint64_t>(queue_.end() - keep);
    queue_.erase(keep, queue_.end());
    std::make_heap(queue_.begin(), queue_.end(), later);
  }

  const network_stats& stats() const noexcept { return stats_; }

 private:
  struct item {
    time_point at{};
    std::uint64_t seq = 0;
    message msg;
  };
  static bool later(const item& a, const item& b) noexcept {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
  void push(message&& m, time_point at) {
    queue_.push_back(item{at, next_seq_++, std::move(m)});
    std::push_heap(queue_.begin(), queue_.end(), later);
  }

  duration latency_;
  time_point now_{};
  std::uint64_t next_seq_ = 0;
  std::vector<item> queue_;
  std::map<node_id, receiver> receivers_;
  fault_hook fault_;
  network_stats stats_;
};

/// The transport policy over a memory::network: a handle naming the network and the
/// sending node.
class transport {
 public:
  transport(std::shared_ptr<network> net, node_id self) : net_(std::move(net)), self_(self) {}

  void send(message&& m) {
    m.from = self_;
    net_->send(std::move(m));
  }
  network& net() const noexcept { return *net_; }

 private:
  std::shared_ptr<network> net_;
  node_id self_;
};

static_assert(raftkit::transport<transport>);

}  // namespace raftkit::memory
