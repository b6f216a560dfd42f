#pragma once
/// \file sim::main: a command line for a scenario, so a user's test program is a few
/// lines and gets all raftkit-sim has:
///
///     #include <raftkit/sim/main.hpp>   // first: engine assertions then fail the seed
///     #include "my_scenario.hpp"
///     int main(int argc, char** argv) { return raftkit::sim::main(argc, argv, my_scenario{}); }
///
///     my-sim --seed 7                        one run, every fault kind on
///     my-sim --seeds 1-10000 --jobs 2        a sweep on two cores
///     my-sim --seed 7 --crashes --loss 0.1   only the faults named
///     my-sim --seed 7 --timeline t.html      the run as a page (sim/timeline.hpp)
///     my-sim --check-history h.jsonl         check a history file against the model
///
/// `scenario` is a sim::scenario value, copied for every seed, or a callable that makes
/// one from the run's options. A failing seed prints the command that replays it. A
/// sweep runs its seeds on `--jobs` threads (all cores by default); each seed is a run of
/// its own from its own seed, so the verdicts are those of a serial run, and they are
/// printed in seed order. On a terminal a progress line shows seeds done, failures,
/// seeds/s and the time left; a summary ends every run (simulated time and its speed-up
/// over real time, operations, elections, faults injected by kind).
///
/// Exit codes: 0 passed, 1 a seed failed (or a history is not linearizable), 2 bad usage
/// or a malformed history, 3 inconclusive (with --strict, or for --check-history).
///
/// Unless RAFTKIT_ASSERT is already defined, this header defines it to throw
/// std::logic_error, which sim::run reports as that seed's failure: include it before
/// any other raftkit header.

#include <stdexcept>
#include <string>
#include <string_view>

namespace raftkit::sim::detail {
[[noreturn]] inline void throw_assertion(const char* expr, std::string_view msg) {
  throw std::logic_error(std::string(expr) + " (" + std::string(msg) + ")");
}
}  // namespace raftkit::sim::detail

#ifndef RAFTKIT_ASSERT
#define RAFTKIT_ASSERT(cond, msg) \
  ((cond) ? static_cast<void>(0) : ::raftkit::sim::detail::throw_assertion(#cond, (msg)))
#endif

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "raftkit/sim/model.hpp"
#include "raftkit/sim/runner.hpp"
#include "raftkit/sim/scenario.hpp"
#include "raftkit/sim/timeline.hpp"

namespace raftkit::sim {

/// Exit codes of sim::main.
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_inconclusive = 3;

/// What a sim::main command line asks for besides the run options.
struct main_settings {
  run_options run;
  std::uint64_t first = 1, last = 1;  ///< the seeds
  unsigned jobs = 0;                  ///< threads; 0: one per core
  std::string history_path, timeline_path, check_path, verdicts_path;
  std::string seconds = "10", delay = "20ms";  ///< as given, for the replay command
  std::string snapshot_write_delay, isolation;  ///< as given (empty: the default), for the replay command
  std::string checker = "auto";
  bool strict = false;
  bool file_log = false;
  bool progress = true;
};

/// One seed's outcome in a sweep.
struct seed_outcome {
  std::uint64_t seed = 0;
  run_verdict verdict = run_verdict::passed;
  std::string failure;
  run_stats stats;
  std::uint64_t fingerprint = 0;  ///< of the history, to compare runs (--verdicts)
  std::string trace;
};

namespace detail {

/// Parses "50ms", "2s", "100us", "1000000ns" or a bare number of milliseconds.
inline std::optional<duration> parse_duration(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return std::nullopt;
  const std::string unit(end);
  double ns = 0;
  if (unit.empty() || unit == "ms") ns = v * 1e6;
  else if (unit == "s") ns = v * 1e9;
  else if (unit == "us") ns = v * 1e3;
  else if (unit == "ns") ns = v;
  else return std::nullopt;
  return duration(static_cast<std::int64_t>(ns));
}

template <class T>
std::optional<T> parse_unsigned(const std::string& s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

inline std::optional<double> parse_real(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') return std::nullopt;
  return v;
}

/// The command line: options with values (--name VALUE or --name=VALUE) and flags.
class command_line {
 public:
  using setter = std::function<std::optional<std::string>(const std::string&)>;

  void value(std::string name, std::string meta, std::string help, setter set) {
    opts_.push_back({std::move(name), std::move(meta), std::move(help), std::move(set), false});
  }
  void flag(std::string name, std::string help, std::function<void()> set) {
    opts_.push_back({std::move(name), {}, std::move(help), [f = std::move(set)](const std::string&) {
                       f();
                       return std::optional<std::string>();
                     }, true});
  }
  bool given(std::string_view name) const { return std::find(given_.begin(), given_.end(), name) != given_.end(); }

  /// Parses argv; an error message on bad usage, "help" for --help.
  std::optional<std::string> parse(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") return std::string("help");
      if (a.rfind("--", 0) != 0) return "unexpected argument '" + a + "'";
      std::string name = a, val;
      bool inline_value = false;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        val = a.substr(eq + 1);
        inline_value = true;
      }
      auto it = std::find_if(opts_.begin(), opts_.end(), [&](const opt& o) { return o.name == name; });
      if (it == opts_.end()) return "unknown option " + name + " (see --help)";
      if (it->is_flag) {
        if (inline_value) return name + " takes no value";
      } else if (!inline_value) {
        if (i + 1 >= argc) return name + " needs a value (" + it->meta + ")";
        val = argv[++i];
      }
      if (auto err = it->set(val)) return name + ": " + *err;
      given_.push_back(name);
    }
    return std::nullopt;
  }

  void usage(std::ostream& os, std::string_view program, std::string_view about) const {
    os << about << "\n\nUsage: " << program << " [options]\n\nOptions:\n";
    for (const auto& o : opts_) {
      std::string left = "  " + o.name + (o.is_flag ? "" : " " + o.meta);
      os << left << std::string(left.size() < 28 ? 28 - left.size() : 1, ' ') << o.help << "\n";
    }
  }

 private:
  struct opt {
    std::string name, meta, help;
    setter set;
    bool is_flag;
  };
  std::vector<opt> opts_;
  std::vector<std::string> given_;
};

/// Builds the command line of sim::main into `s`.
inline command_line make_command_line(main_settings& s, bool& fault_named) {
  command_line cl;
  run_options& o = s.run;
  auto count = [](auto& target, std::uint64_t min, std::uint64_t max) {
    return [&target, min, max](const std::string& v) -> std::optional<std::string> {
      auto n = parse_unsigned<std::uint64_t>(v);
      if (!n || *n < min || *n > max)
        return "wants a whole number from " + std::to_string(min) + " to " + std::to_string(max) + ", got '" + v + "'";
      target = static_cast<std::remove_reference_t<decltype(target)>>(*n);
      return std::nullopt;
    };
  };
  auto probability = [](double& target) {
    return [&target](const std::string& v) -> std::optional<std::string> {
      auto p = parse_real(v);
      if (!p || *p < 0 || *p > 1) return "wants a probability from 0 to 1, got '" + v + "'";
      target = *p;
      return std::nullopt;
    };
  };
  auto text = [](std::string& target) {
    return [&target](const std::string& v) -> std::optional<std::string> {
      target = v;
      return std::nullopt;
    };
  };
  constexpr auto big = std::numeric_limits<std::uint64_t>::max();
  cl.value("--seed", "N", "run this seed", [&s](const std::string& v) -> std::optional<std::string> {
    auto n = parse_unsigned<std::uint64_t>(v);
    if (!n) return "wants a seed number, got '" + v + "'";
    s.first = s.last = *n;
    return std::nullopt;
  });
  cl.value("--seeds", "A-B", "run a sweep of seeds A to B (inclusive)", [&s](const std::string& v) -> std::optional<std::string> {
    const auto dash = v.find('-');
    auto a = parse_unsigned<std::uint64_t>(v.substr(0, dash));
    auto b = dash == std::string::npos ? a : parse_unsigned<std::uint64_t>(v.substr(dash + 1));
    if (!a || !b) return "wants A-B, got '" + v + "'";
    s.first = std::min(*a, *b);
    s.last = std::max(*a, *b);
    return std::nullopt;
  });
  cl.value("--jobs", "N", "seeds run at once, one per thread (default: one per core)", count(s.jobs, 1, 1024));
  cl.value("--nodes", "N", "cluster size (1-9)", count(o.nodes, 1, 9));
  cl.value("--time", "SECONDS", "virtual seconds of faults and client load", [&s, &o](const std::string& v) -> std::optional<std::string> {
    auto t = parse_real(v);
    if (!t || *t <= 0) return "wants a positive number of seconds, got '" + v + "'";
    o.time = duration(static_cast<std::int64_t>(*t * 1e9));
    s.seconds = v;
    return std::nullopt;
  });
  cl.value("--loss", "P", "probability a message is lost (default 0.02)", probability(o.loss));
  cl.value("--dup", "P", "probability a message is duplicated (default 0.01)", probability(o.dup));
  cl.value("--delay", "TIME", "largest extra delay of a message, such as 50ms (default 20ms)",
           [&s, &o](const std::string& v) -> std::optional<std::string> {
             auto d = parse_duration(v);
             if (!d) return "wants a time such as 50ms, 2s, 100us or 1000ns, got '" + v + "'";
             o.delay = *d;
             s.delay = v;
             return std::nullopt;
           });
  auto fault = [&fault_named](bool& target) {
    return [&target, &fault_named] {
      target = true;
      fault_named = true;
    };
  };
  cl.flag("--reorder", "random per-message delays that reorder messages", fault(o.reorder));
  cl.flag("--partitions", "symmetric and one-way partitions, isolation", fault(o.partitions));
  cl.flag("--crashes", "crash and restart nodes (unsynced writes lost)", fault(o.crashes));
  cl.flag("--pauses", "pause and resume nodes", fault(o.pauses));
  cl.flag("--drift", "clocks running 0.5x to 2x", fault(o.clock_drift));
  cl.flag("--slow-disk", "slow write completions", fault(o.slow_disk));
  cl.flag("--membership", "membership changes: spares join, voters and learners come and go, the leader too",
          fault(o.membership));
  cl.value("--spares", "N", "with --membership: nodes started to join (default 2)", count(o.spares, 0, 8));
  auto time_of = [](duration& target, std::string& given) {
    return [&target, &given](const std::string& v) -> std::optional<std::string> {
      auto d = parse_duration(v);
      if (!d) return "wants a time such as 50ms, 2s, 100us or 1000ns, got '" + v + "'";
      target = *d;
      given = v;
      return std::nullopt;
    };
  };
  cl.flag("--no-snapshots", "keep whole logs: no snapshots, no compaction, no InstallSnapshot",
          [&o] { o.snapshots = false; });
  cl.value("--snapshot-interval", "N", "applied entries between snapshots (default: the seed picks 4 to 64)",
           count(o.snapshot_interval, 1, big));
  cl.value("--snapshot-trailing", "N", "entries kept behind a snapshot (default: the seed picks)",
           [&o](const std::string& v) -> std::optional<std::string> {
             auto n = parse_unsigned<std::uint64_t>(v);
             if (!n) return "wants a whole number, got '" + v + "'";
             o.snapshot_trailing = *n;
             return std::nullopt;
           });
  cl.value("--snapshot-chunk", "BYTES", "InstallSnapshot chunk size (default: the seed picks 16 to 1024)",
           count(o.snapshot_chunk_bytes, 1, std::uint64_t{1} << 30));
  cl.value("--snapshot-write-delay", "TIME", "longest snapshot write, which a crash interrupts (default 40ms)",
           time_of(o.snapshot_write_delay, s.snapshot_write_delay));
  cl.value("--isolation", "TIME", "longest isolation of a follower, so it needs a snapshot (default 2s)",
           time_of(o.isolation, s.isolation));
  cl.value("--clients", "N", "concurrent simulated clients (default 3)", count(o.clients, 1, 1000));
  cl.value("--keys", "N", "keys (partitions) the clients use at a time (default 3)", count(o.keys, 1, big));
  cl.value("--ops-per-key", "N", "operations on a key before the clients move to a fresh one (0: the same keys all run; default 100)",
           count(o.ops_per_key, 0, big));
  cl.value("--history", "FILE", "write the client history (JSON lines) of the seed (in a sweep: the first failing one)",
           text(s.history_path));
  cl.value("--timeline", "FILE.html", "write the run as an HTML page (in a sweep: the first failing seed)", text(s.timeline_path));
  cl.value("--check-history", "FILE", "only check a history file: exit 0 linearizable, 1 not, 2 malformed, 3 inconclusive",
           text(s.check_path));
  cl.value("--checker", "auto|search", "auto: the model's own checker where it has one; search: search every key",
           [&s, &o](const std::string& v) -> std::optional<std::string> {
             if (v != "auto" && v != "search") return "wants auto or search, got '" + v + "'";
             s.checker = v;
             o.check.method = v == "search" ? check_method::search : check_method::automatic;
             return std::nullopt;
           });
  cl.value("--max-steps", "N", "search steps per key before the check is inconclusive", count(o.check.max_steps_per_key, 1, big));
  cl.flag("--no-digests", "do not compare the replicas' state digests", [&o] { o.compare_digests = false; });
  cl.flag("--strict", "an inconclusive seed makes the exit code 3 instead of a warning", [&s] { s.strict = true; });
  cl.flag("--trace", "print a readable event log", [&o] { o.trace = true; });
  cl.flag("--file-log", "keep node logs in file::log_store directories (a temp dir per seed)", [&s] { s.file_log = true; });
  cl.value("--verdicts", "FILE", "write one line per seed: verdict, counters and a fingerprint of its history",
           text(s.verdicts_path));
  cl.flag("--no-progress", "no progress line, even on a terminal", [&s] { s.progress = false; });
  return cl;
}

/// The command that replays seed `seed` with these settings.
inline std::string replay_command(std::string_view program, const main_settings& s, std::uint64_t seed) {
  const run_options& o = s.run;
  std::ostringstream cmd;
  cmd << program << " --seed " << seed << " --nodes " << o.nodes << " --time " << s.seconds << " --loss " << o.loss
      << " --dup " << o.dup << " --delay " << s.delay << " --clients " << o.clients << " --keys " << o.keys
      << " --ops-per-key " << o.ops_per_key;
  if (o.reorder) cmd << " --reorder";
  if (o.partitions) cmd << " --partitions";
  if (o.crashes) cmd << " --crashes";
  if (o.pauses) cmd << " --pauses";
  if (o.clock_drift) cmd << " --drift";
  if (o.slow_disk) cmd << " --slow-disk";
  if (o.membership) cmd << " --membership";
  if (o.membership && o.spares != run_options{}.spares) cmd << " --spares " << o.spares;
  if (!o.snapshots) cmd << " --no-snapshots";
  if (o.snapshot_interval) cmd << " --snapshot-interval " << o.snapshot_interval;
  if (o.snapshot_trailing) cmd << " --snapshot-trailing " << *o.snapshot_trailing;
  if (o.snapshot_chunk_bytes) cmd << " --snapshot-chunk " << o.snapshot_chunk_bytes;
  if (!s.snapshot_write_delay.empty()) cmd << " --snapshot-write-delay " << s.snapshot_write_delay;
  if (!s.isolation.empty()) cmd << " --isolation " << s.isolation;
  if (s.file_log) cmd << " --file-log";
  if (!o.compare_digests) cmd << " --no-digests";
  if (s.checker != "auto") cmd << " --checker " << s.checker;
  if (o.check.max_steps_per_key != check_options{}.max_steps_per_key) cmd << " --max-steps " << o.check.max_steps_per_key;
  return cmd.str();
}

/// FNV-1a over a history's clients, times and outcomes (and their text, where the model
/// has one): equal for equal runs.
template <class Result, class Model>
std::uint64_t history_fingerprint(const Result& r, const Model* m) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto add = [&h](std::uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  };
  auto add_text = [&](const std::string& t) {
    add(t.size());
    for (char c : t) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  };
  for (const auto& o : r.hist.operations()) {
    add(o.client);
    add(static_cast<std::uint64_t>(o.call));
    add(static_cast<std::uint64_t>(o.ret));
    if constexpr (!std::is_void_v<Model>) {
      if constexpr (model_has_text<Model>) {
        add_text(m->input_text(o.input));
        if (o.completed()) add_text(m->output_text(o.output));
      }
    }
  }
  add(r.stats.steps);
  add(r.stats.messages);
  return h;
}

inline std::string seconds_text(double s) {
  char b[32];
  if (s >= 3600) std::snprintf(b, sizeof b, "%.1fh", s / 3600);
  else if (s >= 60) std::snprintf(b, sizeof b, "%.0fm%02.0fs", s / 60 - 0.5, s - 60 * static_cast<int>(s / 60));
  else std::snprintf(b, sizeof b, "%.1fs", s);
  return b;
}

/// "in progress 3, catch-up failed 1": the failed membership changes by error.
inline std::string change_failures_text(const run_stats& t) {
  std::string s;
  for (std::size_t k = 0; k < change_error_slots; ++k) {
    if (t.changes_failed_by[k] == 0) continue;
    if (!s.empty()) s += ", ";
    s += (k == 0 ? std::string("other") : raftkit_category().message(static_cast<int>(k))) + " " +
         std::to_string(t.changes_failed_by[k]);
  }
  return s;
}

/// The lines that end a run or sweep.
inline void print_summary(std::FILE* out, const run_stats& t, std::uint64_t seeds, unsigned jobs, double wall) {
  const double virt = static_cast<double>(t.virtual_ns) / 1e9;
  std::fprintf(out, "  simulated %.1f s in %.2f s of real time on %u job%s: %.0fx real time, %.1f seeds/s\n", virt, wall,
               jobs, jobs == 1 ? "" : "s", wall > 0 ? virt / wall : 0.0, wall > 0 ? static_cast<double>(seeds) / wall : 0.0);
  std::fprintf(out, "  operations: %llu ok (reads: %llu through the log, %llu ReadIndex, %llu lease), %llu unknown, %llu failed\n",
               static_cast<unsigned long long>(t.ops_ok), static_cast<unsigned long long>(t.reads_log),
               static_cast<unsigned long long>(t.reads_index), static_cast<unsigned long long>(t.reads_lease),
               static_cast<unsigned long long>(t.ops_unknown), static_cast<unsigned long long>(t.ops_failed));
  std::fprintf(out, "  elections: %llu started, %llu won, %llu pre-vote rounds; highest term %llu\n",
               static_cast<unsigned long long>(t.elections), static_cast<unsigned long long>(t.elections_won),
               static_cast<unsigned long long>(t.pre_votes), static_cast<unsigned long long>(t.max_term));
  std::string kinds;
  for (std::size_t k = 0; k < fault_kinds; ++k) {
    if (t.faults_by_kind[k] == 0) continue;
    kinds += (kinds.empty() ? "" : ", ") + std::string(to_string(static_cast<fault_kind>(k))) + " " +
             std::to_string(t.faults_by_kind[k]);
  }
  std::fprintf(out, "  faults injected: %s; messages lost %llu, duplicated %llu (of %llu sent)\n",
               kinds.empty() ? "none" : kinds.c_str(), static_cast<unsigned long long>(t.messages_lost),
               static_cast<unsigned long long>(t.messages_duplicated), static_cast<unsigned long long>(t.messages));
  std::fprintf(out, "  snapshots: %llu taken, %llu installed (%llu chunk bytes sent), %llu failed; crashes lost %llu being written and %llu being installed; logs compacted up to index %llu\n",
               static_cast<unsigned long long>(t.snapshots_taken), static_cast<unsigned long long>(t.snapshots_installed),
               static_cast<unsigned long long>(t.snapshot_bytes_sent), static_cast<unsigned long long>(t.snapshot_failures),
               static_cast<unsigned long long>(t.snapshot_writes_lost), static_cast<unsigned long long>(t.snapshot_installs_lost),
               static_cast<unsigned long long>(t.max_compacted));
  if (t.changes_started > 0)
    std::fprintf(out, "  membership: %llu changes started, %llu completed, %llu failed (%s), %llu unanswered; removed nodes stopped for good: %llu\n",
                 static_cast<unsigned long long>(t.changes_started), static_cast<unsigned long long>(t.changes_completed),
                 static_cast<unsigned long long>(t.changes_failed), t.changes_failed ? change_failures_text(t).c_str() : "none",
                 static_cast<unsigned long long>(t.changes_unanswered), static_cast<unsigned long long>(t.nodes_stopped));
}

/// Runs `make(seed)` for every seed on `jobs` threads; `on_done` is called on the calling
/// thread for each outcome in seed order, `on_progress` about five times a second.
template <class Make>
void sweep(std::uint64_t first, std::uint64_t last, unsigned jobs, Make make,
           const std::function<void(const seed_outcome&)>& on_done,
           const std::function<void(std::uint64_t done, std::uint64_t failed, std::uint64_t inconclusive)>& on_progress) {
  const std::uint64_t n = last - first + 1;
  std::vector<std::optional<seed_outcome>> results(static_cast<std::size_t>(n));
  std::atomic<std::uint64_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t finished = 0, failed = 0, inconclusive = 0;
  auto work = [&] {
    for (;;) {
      const std::uint64_t k = next.fetch_add(1);
      if (k >= n) return;
      seed_outcome r = make(first + k);
      std::lock_guard lock(mu);
      failed += r.verdict == run_verdict::failed ? 1 : 0;
      inconclusive += r.verdict == run_verdict::inconclusive ? 1 : 0;
      results[static_cast<std::size_t>(k)] = std::move(r);
      ++finished;
      cv.notify_one();
    }
  };
  jobs = static_cast<unsigned>(std::min<std::uint64_t>(std::max(jobs, 1u), n));
  std::vector<std::thread> threads;
  for (unsigned j = 1; j < jobs; ++j) threads.emplace_back(work);
  if (jobs == 1) {
    // One job: run on this thread, reporting as we go.
    for (std::uint64_t k = 0; k < n; ++k) {
      seed_outcome r = make(first + k);
      failed += r.verdict == run_verdict::failed ? 1 : 0;
      inconclusive += r.verdict == run_verdict::inconclusive ? 1 : 0;
      on_done(r);
      on_progress(k + 1, failed, inconclusive);
    }
    return;
  }
  std::uint64_t printed = 0;
  std::unique_lock lock(mu);
  while (printed < n) {
    cv.wait_for(lock, std::chrono::milliseconds(200));
    while (printed < n && results[static_cast<std::size_t>(printed)]) {
      seed_outcome r = std::move(*results[static_cast<std::size_t>(printed)]);
      results[static_cast<std::size_t>(printed)].reset();
      ++printed;
      lock.unlock();
      on_done(r);
      lock.lock();
    }
    const std::uint64_t d = finished, f = failed, i = inconclusive;
    lock.unlock();
    on_progress(d, f, i);
    lock.lock();
  }
  lock.unlock();
  for (auto& t : threads) t.join();
}

template <class S, bool = scenario_has_model<S>>
struct model_of_scenario {
  using type = void;
};
template <class S>
struct model_of_scenario<S, true> {
  using type = typename S::model_type;
};

template <class Factory>
auto make_scenario(const Factory& f, const run_options& o) {
  if constexpr (std::is_invocable_v<const Factory&, const run_options&>) return f(o);
  else return Factory(f);
}

template <class Factory>
using made_scenario_t = decltype(make_scenario(std::declval<const Factory&>(), std::declval<const run_options&>()));

}  // namespace detail

/// The command line of a scenario (see the file comment). `scenario` is a sim::scenario,
/// copied for every seed, or a callable making one from the run's options; `about` heads
/// --help.
template <class Factory>
int main(int argc, char** argv, Factory scenario,
         std::string_view about = "Seeded fault simulation of a replicated service on raftkit") {
  using S = detail::made_scenario_t<Factory>;
  static_assert(sim::scenario<S>, "sim::main wants a sim::scenario, or a callable returning one from run_options");
  using model_t = typename detail::model_of_scenario<S>::type;
  const std::string program = argc > 0 ? argv[0] : "sim";

  main_settings s;
  s.run.loss = 0.02;
  s.run.dup = 0.01;
  bool fault_named = false;
  detail::command_line cl = detail::make_command_line(s, fault_named);
  if (auto err = cl.parse(argc, argv)) {
    if (*err == "help") {
      cl.usage(std::cout, program, about);
      return 0;
    }
    std::fprintf(stderr, "%s: %s\n", program.c_str(), err->c_str());
    return exit_usage;
  }
  if (!fault_named) {
    const double loss = s.run.loss, dup = s.run.dup;  // --loss and --dup given with no switch still count
    s.run.all_faults();
    s.run.membership = true;
    s.run.loss = loss;
    s.run.dup = dup;
  }

  if (!s.check_path.empty()) {
    if constexpr (scenario_has_model<S> && model_has_history_files<model_t>) {
      std::ifstream in(s.check_path);
      if (!in) {
        std::fprintf(stderr, "%s: cannot open %s\n", program.c_str(), s.check_path.c_str());
        return exit_usage;
      }
      const model_t m{};
      const auto parsed = parse_history_jsonl(in, m);
      if (parsed.error) {
        std::fprintf(stderr, "%s: %s: malformed history: %s\n", program.c_str(), s.check_path.c_str(),
                     parsed.error->what().c_str());
        return exit_usage;
      }
      const check_result r = s.run.check.method == check_method::search
                                 ? search_linearizability(std::span(parsed.ops), m, s.run.check)
                                 : check_linearizability(std::span(parsed.ops), m, s.run.check);
      if (r.verdict == check_verdict::linearizable) {
        std::printf("%s: linearizable (%zu operations, %zu keys)\n", s.check_path.c_str(), parsed.ops.size(), r.keys);
        return 0;
      }
      if (r.verdict == check_verdict::invalid_history) {
        std::fprintf(stderr, "%s: malformed history: %s\n", s.check_path.c_str(), r.explanation.c_str());
        return exit_usage;
      }
      std::printf("%s: %s\n%s\n", s.check_path.c_str(), std::string(to_string(r.verdict)).c_str(), r.explanation.c_str());
      return r.verdict == check_verdict::not_linearizable ? exit_failed : exit_inconclusive;
    } else {
      std::fprintf(stderr, "%s: --check-history needs a model that reads history files\n", program.c_str());
      return exit_usage;
    }
  }
  if (!s.history_path.empty()) {
    if constexpr (!(scenario_has_model<S> && model_has_history_files<model_t>)) {
      std::fprintf(stderr, "%s: --history needs a model that writes history files\n", program.c_str());
      return exit_usage;
    }
  }

  // One run of `seed`; the caller gives file logs a directory.
  auto one = [&](std::uint64_t seed, bool timeline, std::string& err) -> std::optional<scenario_result_t<S>> {
    run_options o = s.run;
    o.seed = seed;
    o.timeline = timeline;
    std::string root;
    if (s.file_log) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "raftkit-sim-XXXXXX").string();
      if (!::mkdtemp(tmpl.data())) {
        err = "mkdtemp failed";
        return std::nullopt;
      }
      root = o.file_log_root = tmpl;
    }
    auto r = run(detail::make_scenario(scenario, o), o);
    if (!root.empty()) std::filesystem::remove_all(root);
    return r;
  };
  const model_t* model_ptr = nullptr;
  std::optional<std::conditional_t<std::is_void_v<model_t>, int, model_t>> model_store;
  if constexpr (!std::is_void_v<model_t>) model_ptr = &model_store.emplace();

  const bool single = s.first == s.last;
  const unsigned jobs = s.jobs ? s.jobs : std::max(1u, std::thread::hardware_concurrency());
  const bool tty = s.progress && ::isatty(2) && !single;
  std::ofstream verdicts;
  if (!s.verdicts_path.empty()) {
    verdicts.open(s.verdicts_path);
    if (!verdicts) {
      std::fprintf(stderr, "%s: cannot write %s\n", program.c_str(), s.verdicts_path.c_str());
      return exit_usage;
    }
  }

  const auto wall_start = std::chrono::steady_clock::now();
  run_stats total;
  std::uint64_t failed = 0;
  std::vector<std::uint64_t> inconclusive;
  std::optional<std::uint64_t> first_bad;
  bool usage_error = false;
  auto make = [&](std::uint64_t seed) {
    seed_outcome out;
    out.seed = seed;
    std::string err;
    auto r = one(seed, false, err);
    if (!r) {
      out.verdict = run_verdict::failed;
      out.failure = "could not run: " + err;
      return out;
    }
    out.verdict = r->verdict;
    out.failure = std::move(r->failure);
    out.stats = r->stats;
    out.fingerprint = detail::history_fingerprint(*r, model_ptr);
    out.trace = std::move(r->trace);
    return out;
  };
  auto on_done = [&](const seed_outcome& r) {
    if (tty) std::fprintf(stderr, "\r\033[K");
    total += r.stats;
    if (s.run.trace) std::cout << r.trace << std::flush;
    if (verdicts)
      verdicts << r.seed << ' ' << to_string(r.verdict) << " steps " << r.stats.steps << " ok " << r.stats.ops_ok
               << " unknown " << r.stats.ops_unknown << " failed " << r.stats.ops_failed << " snapshots "
               << r.stats.snapshots_taken << '/' << r.stats.snapshots_installed << " history " << std::hex
               << r.fingerprint << std::dec << '\n';
    const auto seed = static_cast<unsigned long long>(r.seed);
    if (r.verdict == run_verdict::failed) {
      ++failed;
      if (!first_bad) first_bad = r.seed;
      const std::string cmd = detail::replay_command(program, s, r.seed);
      std::printf("FAIL seed %llu: %s\n  replay: %s --trace\n  see it: %s --timeline seed-%llu.html\n", seed,
                  r.failure.c_str(), cmd.c_str(), cmd.c_str(), seed);
    } else if (r.verdict == run_verdict::inconclusive) {
      inconclusive.push_back(r.seed);
      if (!first_bad) first_bad = r.seed;
      std::printf("INCONCLUSIVE seed %llu: %s\n  replay: %s --trace\n", seed, r.failure.c_str(),
                  detail::replay_command(program, s, r.seed).c_str());
    } else if (single) {
      const auto& t = r.stats;
      std::printf("seed %llu passed: %llu steps, %.1f virtual s, %llu leaders, %llu faults, %llu ops ok, %llu unknown, %llu keys, %llu messages, %llu snapshots taken, %llu installed\n",
                  seed, static_cast<unsigned long long>(t.steps), static_cast<double>(t.virtual_ns) / 1e9,
                  static_cast<unsigned long long>(t.leaders), static_cast<unsigned long long>(t.faults),
                  static_cast<unsigned long long>(t.ops_ok), static_cast<unsigned long long>(t.ops_unknown),
                  static_cast<unsigned long long>(t.keys), static_cast<unsigned long long>(t.messages),
                  static_cast<unsigned long long>(t.snapshots_taken), static_cast<unsigned long long>(t.snapshots_installed));
    }
    std::fflush(stdout);
  };
  const std::uint64_t n = s.last - s.first + 1;
  auto last_progress = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto on_progress = [&](std::uint64_t done, std::uint64_t f, std::uint64_t i) {
    if (!tty) return;
    const auto now = std::chrono::steady_clock::now();
    if (done < n && now - last_progress < std::chrono::milliseconds(200)) return;
    last_progress = now;
    const double el = std::chrono::duration<double>(now - wall_start).count();
    const double rate = el > 0 ? static_cast<double>(done) / el : 0;
    std::fprintf(stderr, "\r\033[K[%llu/%llu seeds] %llu failed, %llu inconclusive, %.1f seeds/s, ETA %s",
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(n),
                 static_cast<unsigned long long>(f), static_cast<unsigned long long>(i), rate,
                 rate > 0 ? detail::seconds_text(static_cast<double>(n - done) / rate).c_str() : "?");
  };
  detail::sweep(s.first, s.last, single ? 1 : jobs, make, on_done, on_progress);
  if (tty) std::fprintf(stderr, "\r\033[K");
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!single)
    std::printf("%llu seeds, %llu failed, %zu inconclusive; %.1f virtual s in %.2f wall s (%.0fx); %llu ops ok, %llu unknown\n",
                static_cast<unsigned long long>(n), static_cast<unsigned long long>(failed), inconclusive.size(),
                static_cast<double>(total.virtual_ns) / 1e9, wall,
                wall > 0 ? static_cast<double>(total.virtual_ns) / 1e9 / wall : 0.0,
                static_cast<unsigned long long>(total.ops_ok), static_cast<unsigned long long>(total.ops_unknown));
  detail::print_summary(stdout, total, n, single ? 1 : jobs, wall);
  if (!inconclusive.empty()) {
    std::string list;
    for (std::size_t i = 0; i < inconclusive.size() && i < 20; ++i) list += " " + std::to_string(inconclusive[i]);
    if (inconclusive.size() > 20) list += " ...";
    std::printf("%s: %zu inconclusive seed%s (no violation found, none ruled out):%s\n", s.strict ? "error" : "warning",
                inconclusive.size(), inconclusive.size() == 1 ? "" : "s", list.c_str());
  }

  // The history and timeline of one seed: the first that did not pass, else the last.
  if (!s.history_path.empty() || !s.timeline_path.empty()) {
    const std::uint64_t seed = first_bad ? *first_bad : s.last;
    std::string err;
    auto r = one(seed, !s.timeline_path.empty(), err);
    if (!r) {
      std::fprintf(stderr, "%s: seed %llu: %s\n", program.c_str(), static_cast<unsigned long long>(seed), err.c_str());
      return exit_usage;
    }
    if (!s.history_path.empty()) {
      if constexpr (scenario_has_model<S> && model_has_history_files<model_t>) {
        std::ofstream out(s.history_path);
        write_history_jsonl(out, *model_ptr, std::span(r->hist.operations()));
        if (!out) {
          std::fprintf(stderr, "%s: cannot write %s\n", program.c_str(), s.history_path.c_str());
          usage_error = true;
        }
      }
    }
    if (!s.timeline_path.empty() && r->tl) {
      r->tl->title = "seed " + std::to_string(seed);
      r->tl->replay = detail::replay_command(program, s, seed);
      std::ofstream out(s.timeline_path);
      write_timeline_html(out, *r->tl);
      if (!out) {
        std::fprintf(stderr, "%s: cannot write %s\n", program.c_str(), s.timeline_path.c_str());
        usage_error = true;
      } else {
        std::printf("timeline of seed %llu (%s): %s\n", static_cast<unsigned long long>(seed),
                    std::string(to_string(r->verdict)).c_str(), s.timeline_path.c_str());
      }
    }
  }
  if (usage_error) return exit_usage;
  if (failed) return exit_failed;
  return s.strict && !inconclusive.empty() ? exit_inconclusive : 0;
}

}  // namespace raftkit::sim
