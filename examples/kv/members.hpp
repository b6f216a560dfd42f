#pragma once
// raftkit-kv's side of membership change: where each member listens, kept in step with the
// configuration, and what a data directory records about the node it belongs to.
//
// A member's addresses travel in its `member_info::context`, as JSON
// (`{"raft":"host:port","http":"host:port"}`), so every node learns a new member's
// addresses from the configuration entry that adds it. The initial members (from
// --cluster) have empty contexts: their Raft addresses come from --cluster, and a node that
// joins later is told them by the leader that adds it (PUT /admin/peers, see
// http_handler.hpp). `directory` holds what a node knows and makes its transport's peers
// the configuration's members: set_peer for each one it has an address for, remove_peer
// for each one no longer listed.
//
// `node_record` is the file DIR/kv-member.json: this node's id, the initial members of the
// cluster it belongs to (none for a node that joined a running cluster) and the address
// book. It is written on the first start and whenever the book changes, and checked on
// every start (`reconcile`): a data directory is never used by another node id or with
// another initial cluster.

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "raftkit/membership.hpp"
#include "raftkit/types.hpp"

namespace kv {

/// Where a member listens: "host:port" each; empty when not known.
struct addresses {
  std::string raft;
  std::string http;
  friend bool operator==(const addresses&, const addresses&) = default;
};

inline boost::json::object to_json(const addresses& a) {
  boost::json::object o;
  o["raft"] = a.raft.empty() ? boost::json::value(nullptr) : boost::json::value(a.raft);
  o["http"] = a.http.empty() ? boost::json::value(nullptr) : boost::json::value(a.http);
  return o;
}

/// Whether `s` is host:port with a non-empty host and a port in 1..65535.
inline bool valid_address(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size() || s.size() - colon > 6) return false;
  unsigned port = 0;
  for (char c : s.substr(colon + 1)) {
    if (c < '0' || c > '9') return false;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  return port >= 1 && port <= 65535;
}

/// A string member of `o`, or "" when absent or not a string.
inline std::string string_at(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

/// The context a member is added with.
inline std::string encode_context(const addresses& a) { return boost::json::serialize(to_json(a)); }

/// The addresses in a member's context, or nullopt when it holds none (an initial member).
inline std::optional<addresses> decode_context(std::string_view context) {
  if (context.empty()) return std::nullopt;
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(context, ec);
  if (ec || !v.is_object()) return std::nullopt;
  addresses a{string_at(v.as_object(), "raft"), string_at(v.as_object(), "http")};
  if (a.raft.empty()) return std::nullopt;
  return a;
}

/// What a node knows of the members' addresses, and its transport's peers made to follow
/// the configuration. Thread-safe (the HTTP sessions and the node's strand both use it).
class directory {
 public:
  /// Called for a peer to add (or whose address changed) and for one to remove; `save`
  /// after the book changed (to persist it). Any may be empty.
  std::function<void(raftkit::node_id, const std::string& raft)> set_peer;
  std::function<void(raftkit::node_id)> remove_peer;
  std::function<void(const std::map<raftkit::node_id, addresses>&)> save;

  directory(raftkit::node_id self, std::map<raftkit::node_id, addresses> book) : self_(self), book_(std::move(book)) {
    for (const auto& [id, a] : book_)
      if (id != self_ && !a.raft.empty()) peers_[id] = a.raft;  // the transport starts with these
  }

  raftkit::node_id self() const noexcept { return self_; }

  /// Member `id`'s addresses: from its context, else from the book (either may be empty).
  addresses of(const raftkit::membership& m, raftkit::node_id id) const {
    if (const auto* info = m.find(id))
      if (auto a = decode_context(info->context)) return *a;
    std::lock_guard lk(mu_);
    const auto it = book_.find(id);
    return it == book_.end() ? addresses{} : it->second;
  }

  /// Records addresses the leader told a joining node (PUT /admin/peers) and makes those
  /// members its peers, before it has a configuration of its own.
  void introduce(const std::map<raftkit::node_id, addresses>& members) {
    std::unique_lock lk(mu_);
    bool changed = false;
    for (const auto& [id, a] : members) changed = learn(id, a) || changed;
    std::map<raftkit::node_id, std::string> add;
    for (const auto& [id, a] : members)
      if (id != self_ && !a.raft.empty()) add[id] = a.raft;
    apply(std::move(lk), changed, add, {});
  }

  /// Makes the transport's peers `m`'s members (all of C_new, C_old and the learners),
  /// learning addresses from the contexts. A node with no configuration (joining, not yet
  /// added) keeps what it has.
  ///
  /// A peer is removed only when it leaves: it was in the configuration this node followed
  /// before and is not in `m`, and it is not the `leader` this node hears from. A node's
  /// latest configuration can be an old one (a new node replaying the log from the start
  /// goes through every configuration the cluster had), and dropping a member it does not
  /// list yet, the leader that is sending it the log among them, would refuse that leader's
  /// connections and leave the node stuck in the past. For the same reason a restarted
  /// node removes nothing until a configuration drops a member. A leader that left is
  /// dropped by the next call once another node leads (call again on a change of leader).
  void follow(const raftkit::membership& m, raftkit::node_id leader = raftkit::no_node) {
    if (m.voters.empty()) return;
    std::unique_lock lk(mu_);
    bool changed = false;
    for (const auto* list : {&m.voters, &m.learners, &m.outgoing})
      for (const auto& info : *list)
        if (auto a = decode_context(info.context)) changed = learn(info.id, *a) || changed;
    std::map<raftkit::node_id, std::string> want;
    for (raftkit::node_id id : m.ids()) {
      if (id == self_) continue;
      const auto it = book_.find(id);
      if (it != book_.end() && !it->second.raft.empty()) want[id] = it->second.raft;
    }
    std::vector<raftkit::node_id> drop;
    auto followed = m.ids();
    for (raftkit::node_id id : followed_) {
      if (m.contains(id) || id == self_ || !peers_.contains(id)) continue;
      if (id == leader) followed.push_back(id);  // dropped once another leads (follow again then)
      else drop.push_back(id);
    }
    followed_ = std::move(followed);
    apply(std::move(lk), changed, want, drop);
  }

  /// The transport's peers now (id to Raft address).
  std::map<raftkit::node_id, std::string> peers() const {
    std::lock_guard lk(mu_);
    return peers_;
  }
  std::map<raftkit::node_id, addresses> book() const {
    std::lock_guard lk(mu_);
    return book_;
  }

 private:
  /// Takes what a context or an introduction says (a known http address is kept when the
  /// news has none); true if the book changed. Under mu_.
  bool learn(raftkit::node_id id, addresses a) {
    auto& slot = book_[id];
    if (a.http.empty()) a.http = slot.http;
    if (a.raft.empty()) a.raft = slot.raft;
    if (slot == a) return false;
    slot = std::move(a);
    return true;
  }

  /// Sets the peers in `add` that are new or moved and removes those in `drop`; the
  /// callbacks run outside the lock.
  void apply(std::unique_lock<std::mutex> lk, bool changed, const std::map<raftkit::node_id, std::string>& add,
             const std::vector<raftkit::node_id>& drop) {
    std::vector<std::pair<raftkit::node_id, std::string>> set;
    for (const auto& [id, raft] : add) {
      auto it = peers_.find(id);
      if (it != peers_.end() && it->second == raft) continue;
      peers_[id] = raft;
      set.emplace_back(id, raft);
    }
    for (raftkit::node_id id : drop) peers_.erase(id);
    const auto snapshot = changed ? std::optional(book_) : std::nullopt;
    lk.unlock();
    for (const auto& [id, raft] : set)
      if (set_peer) set_peer(id, raft);
    for (raftkit::node_id id : drop)
      if (remove_peer) remove_peer(id);
    if (snapshot && save) save(*snapshot);
  }

  const raftkit::node_id self_;
  mutable std::mutex mu_;
  std::map<raftkit::node_id, addresses> book_;
  std::map<raftkit::node_id, std::string> peers_;  // what the transport holds besides this node
  std::vector<raftkit::node_id> followed_;          // the members of the configuration followed last
};

/// The members of `m` as JSON for GET /admin/members: voters, learners and outgoing, each
/// member with its id and addresses, and the index of the entry that set the configuration.
inline boost::json::object members_json(const raftkit::membership& m, const directory& d) {
  boost::json::object o;
  o["index"] = m.index;
  o["joint"] = m.joint();
  auto list = [&](const std::vector<raftkit::member_info>& v) {
    boost::json::array a;
    for (const auto& info : v) {
      boost::json::object e = to_json(d.of(m, info.id));
      e["id"] = info.id;
      a.push_back(std::move(e));
    }
    return a;
  };
  o["voters"] = list(m.voters);
  o["learners"] = list(m.learners);
  o["outgoing"] = list(m.outgoing);
  return o;
}

/// The body of PUT /admin/peers: the node it is for and every member's addresses.
inline std::string introduction(raftkit::node_id to, const std::map<raftkit::node_id, addresses>& members) {
  boost::json::object o;
  o["to"] = to;
  boost::json::array a;
  for (const auto& [id, addr] : members) {
    boost::json::object e = to_json(addr);
    e["id"] = id;
    a.push_back(std::move(e));
  }
  o["members"] = std::move(a);
  return boost::json::serialize(o);
}

/// A member id in JSON (a positive integer), or 0.
inline raftkit::node_id id_at(const boost::json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() > 0) return static_cast<raftkit::node_id>(v->as_int64());
  return 0;
}

/// A member id in decimal (positive), or 0.
inline raftkit::node_id parse_id(std::string_view s) {
  raftkit::node_id id = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), id);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size() ? id : 0;
}

/// What a data directory records about its node (see the file comment).
struct node_record {
  raftkit::node_id id = 0;
  std::vector<raftkit::node_id> initial;  ///< the cluster's initial members; empty: joined a running cluster
  std::map<raftkit::node_id, addresses> book;

  static constexpr const char* file_name = "kv-member.json";

  std::string to_string() const {
    boost::json::object o;
    o["id"] = id;
    boost::json::array init;
    for (auto m : initial) init.push_back(m);
    o["initial_members"] = std::move(init);
    boost::json::object b;
    for (const auto& [m, a] : book) b[std::to_string(m)] = to_json(a);
    o["addresses"] = std::move(b);
    return boost::json::serialize(o) + "\n";
  }

  /// Parses the file's text, or nullopt if it is not a record.
  static std::optional<node_record> parse(std::string_view text) {
    boost::system::error_code ec;
    const boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& o = v.as_object();
    node_record r;
    r.id = id_at(o, "id");
    const auto* init = o.if_contains("initial_members");
    const auto* book = o.if_contains("addresses");
    if (r.id == 0 || !init || !init->is_array() || !book || !book->is_object()) return std::nullopt;
    for (const auto& m : init->as_array()) {
      if (!m.is_uint64() && !m.is_int64()) return std::nullopt;
      r.initial.push_back(m.to_number<raftkit::node_id>());
    }
    for (const auto& [key, a] : book->as_object()) {
      if (!a.is_object()) return std::nullopt;
      const raftkit::node_id m = parse_id(key);
      if (m == 0) return std::nullopt;
      r.book[m] = {string_at(a.as_object(), "raft"), string_at(a.as_object(), "http")};
    }
    return r;
  }

  /// Reads DIR's record: nullopt when there is none; throws std::runtime_error when the
  /// file exists and is not a record.
  static std::optional<node_record> load(const std::filesystem::path& dir) {
    std::ifstream in(dir / file_name);
    if (!in) return std::nullopt;
    std::stringstream text;
    text << in.rdbuf();
    auto r = parse(text.str());
    if (!r) throw std::runtime_error((dir / file_name).string() + " is not a raftkit-kv member record");
    return r;
  }

  /// Writes the record to DIR atomically (a temporary file, fsync, rename, fsync of DIR);
  /// throws std::system_error on failure.
  void save(const std::filesystem::path& dir) const {
    const std::filesystem::path tmp = dir / (std::string(file_name) + ".tmp");
    const std::string text = to_string();
    auto fail = [&](const char* what) { throw std::system_error(errno, std::generic_category(), what + tmp.string()); };
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create ");
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) fail("cannot write ");
    std::filesystem::rename(tmp, dir / file_name);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
};

/// How a node was asked to start (the flags that bear on its record).
struct start_request {
  raftkit::node_id id = 0;
  bool join = false;
  /// --cluster's members and Raft addresses (empty without --cluster).
  std::map<raftkit::node_id, std::string> cluster;
  std::string raft;  ///< --raft (this node's Raft address), or empty
  std::string http;  ///< --http
};

/// What `reconcile` found refused: the one line to print.
struct record_conflict {
  std::string why;
};

/// The record a node starts with, given the one on disk (if any) and how it was asked to
/// start; or the conflict that refuses the start:
///  - first start (no record): with --cluster (naming --id) the initial members are its
///    ids; with --join there are none and --raft says where this node listens;
///  - later: --id must be the recorded id; --cluster must list the recorded initial
///    members (its addresses replace the recorded ones), and is refused for a node that
///    joined a running cluster (its members come from its log); --join is refused for a
///    node that belongs to a cluster from its start; a node that joined (or is still
///    waiting to) resumes with what its log holds; with neither, the record says
///    everything (--raft may move this node).
inline std::variant<node_record, record_conflict> reconcile(const std::optional<node_record>& on_disk,
                                                            const start_request& s) {
  auto ids = [](const std::map<raftkit::node_id, std::string>& c) {
    std::vector<raftkit::node_id> v;
    for (const auto& [id, a] : c) v.push_back(id);
    return v;
  };
  auto list = [](const std::vector<raftkit::node_id>& v) {
    std::string out;
    for (auto id : v) out += (out.empty() ? "" : ",") + std::to_string(id);
    return out;
  };
  node_record r;
  if (on_disk) {
    r = *on_disk;
    if (r.id != s.id)
      return record_conflict{"the data directory belongs to node " + std::to_string(r.id) + ", not --id " +
                             std::to_string(s.id)};
    if (s.join && !r.initial.empty())
      return record_conflict{"--join: the data directory already belongs to the cluster of members " + list(r.initial) +
                             "; restart without --join"};
    if (!s.cluster.empty() && r.initial.empty())
      return record_conflict{"--cluster: node " + std::to_string(s.id) +
                             " joined a running cluster and takes its members from its log; restart it without "
                             "--cluster"};
    if (!s.cluster.empty() && ids(s.cluster) != r.initial)
      return record_conflict{"--cluster lists members " + list(ids(s.cluster)) +
                             " but the data directory belongs to the cluster of members " + list(r.initial)};
  } else {
    r.id = s.id;
    if (s.cluster.empty() && !s.join) return record_conflict{"a first start needs --cluster (a new cluster) or --join"};
    r.initial = s.join ? std::vector<raftkit::node_id>{} : ids(s.cluster);
  }
  for (const auto& [id, raft] : s.cluster) r.book[id].raft = raft;
  if (!s.raft.empty()) r.book[s.id].raft = s.raft;
  r.book[s.id].http = s.http;
  if (r.book[s.id].raft.empty()) return record_conflict{"say where this node listens for Raft peers: --raft HOST:PORT"};
  return r;
}

}  // namespace kv
