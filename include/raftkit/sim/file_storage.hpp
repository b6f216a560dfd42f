#pragma once
/// \file sim::file_storage: simulated nodes on real files (file::log_store), one
/// directory per node under a root the caller owns.
///
/// A crash closes the store (the process dies; what it wrote reaches the file system)
/// and a restart reopens and recovers the directory. Durability runs on the store's
/// threads, so the cluster syncs each store when it is quiet: runs stay deterministic.
/// Snapshots are kept in a memory::snapshot_store per node (a crash loses one being
/// written), so the file log is compacted and reset behind them.

#include <memory>
#include <string>

#include "raftkit/file/log_store.hpp"
#include "raftkit/log_store.hpp"
#include "raftkit/memory/snapshot_store.hpp"
#include "raftkit/sim/cluster.hpp"

namespace raftkit::sim {

/// Storage policy of sim::cluster over file::log_store.
struct file_storage {
  using store_type = std::unique_ptr<file::log_store>;
  using node_store = log_store_ref<file::log_store>;

  std::string root;       ///< each node uses root/node-<id>
  file::options options;  ///< small segments exercise rolling

  store_type make(node_id id) const { return std::make_unique<file::log_store>(dir(id), options); }
  static node_store lend(store_type& s) { return node_store(*s); }
  static file::log_store& disk(store_type& s) { return *s; }
  static void sync(store_type& s) { s->flush(); }
  static void crash(store_type& s) { s.reset(); }
  static bool is_open(const store_type& s) { return s != nullptr; }
  void reopen(store_type& s, node_id id) const {
    if (!s) s = make(id);
  }

  using snapshot_type = memory::snapshot_store;  ///< copies are handles to one store
  static snapshot_type make_snapshots(node_id) { return {}; }
  static void crash_snapshots(snapshot_type& s) { s.crash(); }

 private:
  std::string dir(node_id id) const { return root + "/node-" + std::to_string(id); }
};

}  // namespace raftkit::sim
