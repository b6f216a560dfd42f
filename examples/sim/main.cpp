// raftkit-sim: runs seeded simulations of a raftkit cluster under faults, or checks a
// history file for linearizability.
//
//   raftkit-sim --seed 1                      one run with every fault kind on
//   raftkit-sim --seeds 1-1000 --nodes 5      a sweep
//   raftkit-sim --seed 7 --crashes --loss 0.1 only the faults named
//   raftkit-sim --check-history h.jsonl       exit 0 linearizable, 1 not, 2 malformed,
//                                             3 inconclusive
//
// A run or sweep exits 1 if any seed failed. A seed whose linearizability check could not
// decide is inconclusive, not failed: it gets its own line and a warning, and the exit
// code stays 0 unless --strict (then 3). Bad usage exits 2.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// An engine assertion inside a simulation becomes a reported failure with its seed,
// not an abort: RAFTKIT_ASSERT is the user's to redefine.
#define RAFTKIT_ASSERT(cond, msg) \
  ((cond) ? static_cast<void>(0) : throw std::logic_error(std::string(#cond) + " (" + (msg) + ")"))

#include <CLI/CLI.hpp>

#include "raftkit/sim/history.hpp"
#include "raftkit/sim/linearizability.hpp"
#include "raftkit/sim/runner.hpp"

namespace {

/// Parses "50ms", "2s", "100us", "1000000ns" or a bare number of milliseconds.
raftkit::duration parse_duration(const std::string& s) {
  std::size_t pos = 0;
  const double v = std::stod(s, &pos);
  const std::string unit = s.substr(pos);
  double ns = 0;
  if (unit.empty() || unit == "ms") ns = v * 1e6;
  else if (unit == "s") ns = v * 1e9;
  else if (unit == "us") ns = v * 1e3;
  else if (unit == "ns") ns = v;
  else throw CLI::ValidationError("--delay", "unknown unit '" + unit + "' (use ns, us, ms or s)");
  if (v < 0) throw CLI::ValidationError("--delay", "must not be negative");
  return raftkit::duration(static_cast<std::int64_t>(ns));
}

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;
constexpr int exit_inconclusive = 3;

int check_history(const std::string& path, const raftkit::sim::check_options& options) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "raftkit-sim: cannot open %s\n", path.c_str());
    return exit_usage;
  }
  const auto parsed = raftkit::sim::parse_jsonl(in);
  if (parsed.error) {
    std::fprintf(stderr, "raftkit-sim: %s: malformed history: %s\n", path.c_str(), parsed.error->what().c_str());
    return exit_usage;
  }
  const auto r = raftkit::sim::check_linearizability(parsed.ops, options);
  if (r.verdict == raftkit::sim::check_verdict::linearizable) {
    std::printf("%s: linearizable (%zu operations, %zu keys)\n", path.c_str(), parsed.ops.size(), r.keys);
    return 0;
  }
  if (r.verdict == raftkit::sim::check_verdict::invalid_history) {
    std::fprintf(stderr, "%s: malformed history: %s\n", path.c_str(), r.explanation.c_str());
    return exit_usage;
  }
  std::printf("%s: %s\n%s\n", path.c_str(), std::string(to_string(r.verdict)).c_str(), r.explanation.c_str());
  return r.verdict == raftkit::sim::check_verdict::not_linearizable ? exit_failed : exit_inconclusive;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"raftkit-sim: deterministic simulation of a raftkit cluster under faults"};
  raftkit::sim::run_options o;
  std::uint64_t seed = 1;
  std::string seeds, delay = "20ms", history_path, check_path;
  double seconds = 10;
  o.loss = 0.02;
  o.dup = 0.01;
  bool drift = false, slow_disk = false;
  app.add_option("--seed", seed, "run this seed");
  app.add_option("--seeds", seeds, "run a sweep of seeds A-B (inclusive)");
  app.add_option("--nodes", o.nodes, "cluster size (1-9)")->check(CLI::Range(1, 9));
  app.add_option("--time", seconds, "virtual seconds of faults and client load")->check(CLI::PositiveNumber);
  app.add_option("--loss", o.loss, "probability a message is lost")->check(CLI::Range(0.0, 1.0));
  app.add_option("--dup", o.dup, "probability a message is duplicated")->check(CLI::Range(0.0, 1.0));
  app.add_option("--delay", delay, "largest extra delay of a message, such as 50ms");
  auto* reorder = app.add_flag("--reorder", o.reorder, "random per-message delays that reorder messages");
  auto* parts = app.add_flag("--partitions", o.partitions, "symmetric and one-way partitions, isolation");
  auto* crashes = app.add_flag("--crashes", o.crashes, "crash and restart nodes (unsynced writes lost)");
  auto* pauses = app.add_flag("--pauses", o.pauses, "pause and resume nodes");
  auto* drift_f = app.add_flag("--drift", drift, "clocks running 0.5x to 2x");
  auto* slow_f = app.add_flag("--slow-disk", slow_disk, "slow write completions");
  app.add_option("--clients", o.clients, "concurrent simulated clients");
  app.add_option("--keys", o.keys, "keys the clients use at a time")->check(CLI::PositiveNumber);
  app.add_option("--ops-per-key", o.ops_per_key,
                 "operations on a key before the clients move to a fresh one (0: the same keys all run)")
      ->capture_default_str();
  app.add_option("--history", history_path, "write the client history (JSON lines) to FILE");
  app.add_option("--check-history", check_path,
                 "only check a history file: exit 0 linearizable, 1 not, 2 malformed, 3 inconclusive");
  std::string checker = "auto";
  app.add_option("--checker", checker,
                 "auto: decide from the values, search what they leave open; search: search every key")
      ->check(CLI::IsMember({"auto", "search"}))
      ->capture_default_str();
  app.add_option("--max-steps", o.check.max_steps_per_key,
                 "search steps per key before the check is inconclusive")
      ->capture_default_str();
  bool strict = false;
  app.add_flag("--strict", strict, "an inconclusive seed makes the exit code 3 instead of a warning");
  app.add_flag("--trace", o.trace, "print a readable event log");
  bool file_log = false;
  app.add_flag("--file-log", file_log, "keep node logs in file::log_store directories (a temp dir per seed)");
  CLI11_PARSE(app, argc, argv);
  if (checker == "search") o.check.method = raftkit::sim::check_method::search;

  if (!check_path.empty()) return check_history(check_path, o.check);

  o.clock_drift = drift;
  o.slow_disk = slow_disk;
  const bool named = reorder->count() || parts->count() || crashes->count() || pauses->count() ||
                     drift_f->count() || slow_f->count();
  if (!named) {
    const double loss = o.loss, dup = o.dup;  // --loss and --dup given with no switch still count
    o.all_faults();
    o.loss = loss;
    o.dup = dup;
  }
  try {
    o.delay = parse_duration(delay);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raftkit-sim: --delay: %s\n", e.what());
    return exit_usage;
  }
  o.time = raftkit::duration(static_cast<std::int64_t>(seconds * 1e9));

  std::uint64_t first = seed, last = seed;
  if (!seeds.empty()) {
    const auto dash = seeds.find('-');
    try {
      first = std::stoull(seeds.substr(0, dash));
      last = dash == std::string::npos ? first : std::stoull(seeds.substr(dash + 1));
    } catch (const std::exception&) {
      std::fprintf(stderr, "raftkit-sim: --seeds wants A-B, got '%s'\n", seeds.c_str());
      return exit_usage;
    }
    if (last < first) std::swap(first, last);
  }

  // The command that replays one seed with these exact settings.
  auto replay = [&](std::uint64_t s) {
    std::ostringstream cmd;
    cmd << argv[0] << " --seed " << s << " --nodes " << o.nodes << " --time " << seconds << " --loss " << o.loss
        << " --dup " << o.dup << " --delay " << delay << " --clients " << o.clients << " --keys " << o.keys
        << " --ops-per-key " << o.ops_per_key;
    if (o.reorder) cmd << " --reorder";
    if (o.partitions) cmd << " --partitions";
    if (o.crashes) cmd << " --crashes";
    if (o.pauses) cmd << " --pauses";
    if (o.clock_drift) cmd << " --drift";
    if (o.slow_disk) cmd << " --slow-disk";
    if (file_log) cmd << " --file-log";
    if (checker != "auto") cmd << " --checker " << checker;
    if (o.check.max_steps_per_key != raftkit::sim::check_options{}.max_steps_per_key)
      cmd << " --max-steps " << o.check.max_steps_per_key;
    return cmd.str();
  };

  const auto wall_start = std::chrono::steady_clock::now();
  std::uint64_t failed = 0, ok_ops = 0, unknown_ops = 0;
  std::vector<std::uint64_t> inconclusive;
  double virtual_s = 0;
  for (std::uint64_t s = first; s <= last; ++s) {
    o.seed = s;
    std::string root;
    if (file_log) {
      char tmpl[] = "/tmp/raftkit-sim-XXXXXX";
      if (!::mkdtemp(tmpl)) {
        std::perror("raftkit-sim: mkdtemp");
        return exit_usage;
      }
      root = o.file_log_root = tmpl;
    }
    const auto r = raftkit::sim::run(o);
    if (!root.empty()) std::filesystem::remove_all(root);
    virtual_s += static_cast<double>(r.stats.virtual_ns) / 1e9;
    ok_ops += r.stats.ops_ok;
    unknown_ops += r.stats.ops_unknown;
    if (o.trace) std::cout << r.trace;
    if (!history_path.empty()) {
      std::ofstream out(history_path);
      r.hist.write_jsonl(out);
    }
    if (r.verdict == raftkit::sim::run_verdict::failed) {
      ++failed;
      std::printf("FAIL seed %llu: %s\n  replay: %s --trace\n", static_cast<unsigned long long>(s),
                  r.failure.c_str(), replay(s).c_str());
    } else if (r.verdict == raftkit::sim::run_verdict::inconclusive) {
      inconclusive.push_back(s);
      std::printf("INCONCLUSIVE seed %llu: %s\n  replay: %s --trace\n", static_cast<unsigned long long>(s),
                  r.failure.c_str(), replay(s).c_str());
    } else if (first == last) {
      std::printf("seed %llu passed: %llu steps, %.1f virtual s, %llu leaders, %llu faults, %llu ops ok, %llu unknown, %llu keys, %llu messages\n",
                  static_cast<unsigned long long>(s), static_cast<unsigned long long>(r.stats.steps),
                  static_cast<double>(r.stats.virtual_ns) / 1e9, static_cast<unsigned long long>(r.stats.leaders),
                  static_cast<unsigned long long>(r.stats.faults), static_cast<unsigned long long>(r.stats.ops_ok),
                  static_cast<unsigned long long>(r.stats.ops_unknown), static_cast<unsigned long long>(r.stats.keys),
                  static_cast<unsigned long long>(r.stats.messages));
    }
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (first != last)
    std::printf("%llu seeds, %llu failed, %zu inconclusive; %.1f virtual s in %.2f wall s (%.0fx); %llu ops ok, %llu unknown\n",
                static_cast<unsigned long long>(last - first + 1), static_cast<unsigned long long>(failed),
                inconclusive.size(), virtual_s, wall, wall > 0 ? virtual_s / wall : 0.0,
                static_cast<unsigned long long>(ok_ops), static_cast<unsigned long long>(unknown_ops));
  if (!inconclusive.empty()) {
    std::string list;
    for (std::size_t i = 0; i < inconclusive.size() && i < 20; ++i) list += " " + std::to_string(inconclusive[i]);
    if (inconclusive.size() > 20) list += " ...";
    std::printf("%s: %zu inconclusive seed%s (no violation found, none ruled out):%s\n",
                strict ? "error" : "warning", inconclusive.size(), inconclusive.size() == 1 ? "" : "s",
                list.c_str());
  }
  if (failed) return exit_failed;
  return strict && !inconclusive.empty() ? exit_inconclusive : 0;
}
