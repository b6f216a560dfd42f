#pragma once
// Test doubles for raftkit-kv's HTTP side, shared by test_handler.cpp and the fuzzer
// (tests/fuzz/fuzz_kv.cpp): an in-memory stream that hands a byte string to
// serve_connection in chunks and keeps what it writes, and a node that applies proposals
// to a kv::machine at once (or fails them as told). No sockets, no threads: run the
// io_context and read the output.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "http_handler.hpp"
#include "kv_machine.hpp"
#include "raftkit/config.hpp"
#include "raftkit/membership.hpp"

namespace kv::testing {

/// An Asio stream over a byte string: reads hand out `input` (at most `chunk` bytes at a
/// time, 0 for no limit) and then end of file; writes append to output().
class memory_stream {
 public:
  using executor_type = boost::asio::any_io_executor;

  memory_stream(executor_type ex, std::string input, std::size_t chunk = 0)
      : ex_(std::move(ex)), in_(std::move(input)), chunk_(chunk) {}

  executor_type get_executor() const noexcept { return ex_; }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          boost::system::error_code ec;
          std::size_t n = 0;
          if (pos_ >= in_.size()) {
            ec = boost::asio::error::eof;
          } else {
            const std::size_t left = in_.size() - pos_;
            n = boost::asio::buffer_copy(b, boost::asio::buffer(in_.data() + pos_, chunk_ ? std::min(left, chunk_) : left));
            pos_ += n;
          }
          complete(std::move(handler), ec, n);
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          boost::system::error_code ec;
          std::size_t n = 0;
          if (send_shut_) {
            ec = boost::asio::error::broken_pipe;
          } else {
            for (auto it = boost::asio::buffer_sequence_begin(b); it != boost::asio::buffer_sequence_end(b); ++it) {
              const boost::asio::const_buffer piece(*it);
              out_.append(static_cast<const char*>(piece.data()), piece.size());
              n += piece.size();
            }
          }
          complete(std::move(handler), ec, n);
        },
        token, buffers);
  }

  /// Everything written so far.
  const std::string& output() const noexcept { return out_; }
  /// Whether every input byte was read.
  bool input_consumed() const noexcept { return pos_ >= in_.size(); }
  /// Whether the server shut its sending side (it closes every connection that way).
  bool send_shut() const noexcept { return send_shut_; }
  void shut_send() noexcept { send_shut_ = true; }

 private:
  template <class Handler>
  void complete(Handler h, boost::system::error_code ec, std::size_t n) {
    auto ex = boost::asio::get_associated_executor(h, ex_);
    boost::asio::post(ex, [h = std::move(h), ec, n]() mutable { std::move(h)(ec, n); });
  }

  executor_type ex_;
  std::string in_;
  std::size_t chunk_;
  std::size_t pos_ = 0;
  std::string out_;
  bool send_shut_ = false;
};

// An in-memory stream has no time limits (nothing in it waits on time).
inline void set_deadline(memory_stream&, milliseconds) {}
inline void clear_deadline(memory_stream&) {}
inline void shutdown_send(memory_stream& s) { s.shut_send(); }

/// A node over kv::machine that answers at once, through the caller's executor: each
/// proposal (and read) is applied, unless `fail` returns an error for its number (0, 1,
/// ...), or is never answered when `silent`.
class fake_node {
 public:
  using result_type = kv::result;

  explicit fake_node(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// The error for proposal number n, or none to apply it.
  std::function<std::error_code(std::size_t n)> fail;
  /// Never answer (the handler's request timeout must).
  bool silent = false;
  /// Every command that reached the node, in order.
  std::vector<std::vector<std::byte>> commands;

  template <class Handler>
  void propose(std::vector<std::byte> command, Handler&& handler) {
    const std::size_t n = commands.size();
    commands.push_back(std::move(command));
    if (silent) return;
    const std::error_code ec = fail ? fail(n) : std::error_code{};
    kv::result r;
    raftkit::index_t index = 0;
    if (!ec) {
      index = ++applied_;
      r = machine_.apply(index, commands.back());
    }
    auto ex = boost::asio::get_associated_executor(handler, ex_);
    boost::asio::post(ex, [h = std::forward<Handler>(handler), ec, index, r = std::move(r)]() mutable {
      std::move(h)(ec, index, std::move(r));
    });
  }

  /// The consistency of every read, in order.
  std::vector<raftkit::read_consistency> reads;
  /// Every transfer's target, in order, and what transfers complete with.
  std::vector<raftkit::node_id> transfers;
  std::error_code transfer_error;

  /// A read is recorded as a command too (and fails as `fail` says), but is answered by
  /// kv::machine::query, as the real node answers it.
  template <class Handler>
  void read(std::vector<std::byte> command, raftkit::read_consistency c, Handler&& handler) {
    const std::size_t n = commands.size();
    commands.push_back(std::move(command));
    reads.push_back(c);
    if (silent) return;
    const std::error_code ec = fail ? fail(n) : std::error_code{};
    kv::result r;
    if (!ec) r = machine_.query(commands.back());
    auto ex = boost::asio::get_associated_executor(handler, ex_);
    boost::asio::post(ex, [h = std::forward<Handler>(handler), ec, i = applied_, r = std::move(r)]() mutable {
      std::move(h)(ec, i, std::move(r));
    });
  }

  template <class Token>
  auto transfer_leadership(raftkit::node_id to, Token&& token) {
    return boost::asio::async_initiate<Token, void(std::error_code)>(
        [this, to](auto handler) {
          transfers.push_back(to);
          auto ex = boost::asio::get_associated_executor(handler, ex_);
          boost::asio::post(ex, [h = std::move(handler), ec = transfer_error]() mutable { std::move(h)(ec); });
        },
        token);
  }

  /// The configuration members() answers with; every change asked for, in order; and
  /// what a change completes with (on success the configuration is changed as asked).
  raftkit::membership config = initial_config();
  std::vector<raftkit::member_change> changes;
  std::error_code change_error;
  /// The role status() reports, and the leader it names.
  raftkit::role role = raftkit::role::leader;
  raftkit::node_id leader = 1;

  static raftkit::membership initial_config() {
    raftkit::membership m;
    for (raftkit::node_id id = 1; id <= 3; ++id) m.voters.push_back({id, {}});
    return m;
  }

  template <class Handler>
  void change_membership(std::vector<raftkit::member_change> asked, Handler&& handler) {
    raftkit::index_t at = 0;
    if (!change_error) {
      at = config.index = ++applied_;
      for (const auto& c : asked) apply_change(c);
    }
    for (auto& c : asked) changes.push_back(std::move(c));
    auto ex = boost::asio::get_associated_executor(handler, ex_);
    boost::asio::post(ex, [h = std::forward<Handler>(handler), ec = change_error, at]() mutable { std::move(h)(ec, at); });
  }

  template <class Token>
  auto members(Token&& token) {
    return boost::asio::async_initiate<Token, void(raftkit::membership)>(
        [this](auto handler) {
          auto ex = boost::asio::get_associated_executor(handler, ex_);
          boost::asio::post(ex, [h = std::move(handler), m = config]() mutable { std::move(h)(std::move(m)); });
        },
        token);
  }

  template <class Token>
  auto status(Token&& token) {
    return boost::asio::async_initiate<Token, void(raftkit::node_status)>(
        [this](auto handler) {
          raftkit::node_status st;
          st.id = 1;
          st.role = role;
          st.leader = leader;
          st.commit_index = st.applied_index = st.last_log_index = st.durable_index = applied_;
          auto ex = boost::asio::get_associated_executor(handler, ex_);
          boost::asio::post(ex, [h = std::move(handler), st]() mutable { std::move(h)(st); });
        },
        token);
  }

  raftkit::node_counters counters() const { return {}; }
  raftkit::asio::tcp_stats transport_stats() const { return {}; }

 private:
  void apply_change(const raftkit::member_change& c) {
    auto drop = [&](std::vector<raftkit::member_info>& v) {
      std::erase_if(v, [&](const raftkit::member_info& m) { return m.id == c.id; });
    };
    switch (c.type) {
      case raftkit::member_change_type::add_voter: config.voters.push_back({c.id, c.context}); break;
      case raftkit::member_change_type::add_learner: config.learners.push_back({c.id, c.context}); break;
      case raftkit::member_change_type::promote: {
        const auto* m = config.find(c.id);
        raftkit::member_info info = m ? *m : raftkit::member_info{c.id, {}};
        drop(config.learners);
        config.voters.push_back(std::move(info));
        break;
      }
      case raftkit::member_change_type::remove:
        drop(config.voters);
        drop(config.learners);
        break;
    }
  }

  boost::asio::any_io_executor ex_;
  kv::machine machine_;
  raftkit::index_t applied_ = 0;
};

/// One connection served in memory: `input` in, what the server wrote out.
struct session_run {
  std::string output;
  bool input_consumed = false;
  bool send_shut = false;
};

/// Serves `input` (read `chunk` bytes at a time, 0 for all at once) as one connection
/// to `node`, running `io` until the connection ends.
inline session_run serve_bytes(boost::asio::io_context& io, handler<fake_node>& h, std::string input,
                               std::size_t chunk = 0) {
  memory_stream stream(io.get_executor(), std::move(input), chunk);
  boost::asio::co_spawn(io, serve_connection(stream, h), boost::asio::detached);
  io.restart();
  io.run();
  return {stream.output(), stream.input_consumed(), stream.send_shut()};
}

/// Splits a server's output into responses; `clean` is false if bytes are left over that
/// are not a whole response.
inline std::vector<response> parse_responses(std::string_view bytes, bool& clean) {
  std::vector<response> out;
  clean = true;
  while (!bytes.empty()) {
    http::response_parser<http::string_body> p;
    p.eager(true);
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    boost::system::error_code ec;
    std::size_t used = 0;
    while (!ec && !p.is_done() && used < bytes.size()) {
      const std::size_t n = p.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
      used += n;
      if (n == 0) break;
    }
    if (ec || !p.is_done()) {
      clean = false;
      break;
    }
    out.push_back(p.release());
    bytes.remove_prefix(used);
  }
  return out;
}

}  // namespace kv::testing
