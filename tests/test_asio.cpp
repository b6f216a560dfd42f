// Tests for the wire codec (raftkit/wire.hpp) and the TCP transport
// (raftkit/asio/tcp_transport.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <span>
#include <thread>
#include <map>
#include <set>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/wire.hpp"

namespace {

using raftkit::entry;
using raftkit::entry_type;
using raftkit::errc;
using raftkit::message;
using raftkit::message_type;
using raftkit::shared_bytes;
namespace wire = raftkit::wire;

constexpr std::uint64_t test_cluster = 0xC1u;

std::span<const std::byte> as_span(const std::vector<std::byte>& v) { return {v.data(), v.size()}; }

/// A message of `type` with every field set to something distinct, and for the types
/// that carry entries, a batch with empty and non-empty payloads.
message sample_message(message_type type) {
  message m;
  m.type = type;
  m.from = 3;
  m.to = 5;
  m.term = 0x1122334455667788ull;
  m.log_index = 41;
  m.log_term = 7;
  m.commit = 40;
  m.reject = true;
  m.flags = raftkit::message_flags::pre_vote;
  m.hint_index = 12;
  m.hint_term = 6;
  m.request_id = 0xABCDEFull;
  m.boot_id = 0x0102030405060708ull;
  m.received_index = 39;
  m.code = 4;
  m.context = 77;
  m.snapshot_offset = 1 << 20;
  m.snapshot_size = 3 << 20;
  m.snapshot_crc = 0xDEADBEEF;
  m.data = shared_bytes::copy_of("chunk");
  m.config = shared_bytes::copy_of("cfg");
  if (type == message_type::append_entries || type == message_type::forward_proposal) {
    m.entries.push_back({7, 42, entry_type::noop, {}});
    m.entries.push_back({7, 43, entry_type::normal, shared_bytes::copy_of("set x=1")});
    m.entries.push_back({8, 44, entry_type::config, shared_bytes::copy_of(std::string(1000, 'z'))});
  }
  return m;
}

std::vector<message_type> all_types() {
  std::vector<message_type> v;
  for (std::uint8_t t = 1; t <= raftkit::max_message_type; ++t) v.push_back(static_cast<message_type>(t));
  return v;
}

std::vector<std::byte> frame_of(const message& m, std::uint64_t cluster = test_cluster) {
  std::vector<std::byte> out;
  wire::encode_frame(m, cluster, out);
  return out;
}

std::error_code decode(const std::vector<std::byte>& bytes, message& out,
                       std::uint32_t max_frame = wire::default_max_frame_size) {
  return wire::decode_frame(as_span(bytes), wire::decode_options{test_cluster, max_frame}, out);
}

/// Rewrites the header CRC after a test edits header bytes, so the check under test is
/// the one that fires rather than the header checksum.
void reseal_header(std::vector<std::byte>& f) {
  wire::detail::put_le<std::uint32_t>(f.data() + 24, raftkit::detail::crc32c({f.data(), 24}));
}

/// Replaces a frame's body with `body`, fixing length and both CRCs: a well-formed frame
/// whose body is whatever the test wants the decoder to face.
void replace_body(std::vector<std::byte>& f, std::span<const std::byte> body) {
  f.resize(wire::header_size);
  f.insert(f.end(), body.begin(), body.end());
  wire::detail::put_le<std::uint32_t>(f.data() + 16, static_cast<std::uint32_t>(body.size()));
  wire::detail::put_le<std::uint32_t>(f.data() + 20, raftkit::detail::crc32c(body));
  reseal_header(f);
}

// --- transport helpers ------------------------------------------------------------

using namespace std::chrono_literals;
using boost::asio::io_context;
using boost::asio::ip::tcp;
using raftkit::node_id;
using raftkit::asio::cluster_map;
using raftkit::asio::peer_address;
using raftkit::asio::tcp_options;
using raftkit::asio::tcp_transport;

/// Fast backoff so reconnect tests take milliseconds; nothing asserts on time.
tcp_options test_options() {
  tcp_options o;
  o.reconnect_min = 2ms;
  o.reconnect_max = 20ms;
  o.connect_timeout = 5s;
  o.seed = 42;
  return o;
}

/// Runs the io_context one handler at a time until `done` holds. The deadline only
/// stops a broken test from hanging; no test asserts on how long anything took.
template <class F>
bool run_until(io_context& io, F done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(20ms);
  }
  return true;
}

/// A transport plus the messages it has received.
struct test_node {
  std::vector<message> inbox;
  std::unique_ptr<tcp_transport> t;
};

std::unique_ptr<test_node> make_node(io_context& io, node_id id, std::uint64_t cluster, cluster_map map,
                                     tcp_options opt = test_options()) {
  auto n = std::make_unique<test_node>();
  n->t = std::make_unique<tcp_transport>(io.get_executor(), id, cluster, std::move(map),
                                         [n = n.get()](message&& m) { n->inbox.push_back(std::move(m)); },
                                         opt);
  return n;
}

/// Nodes `ids` of one cluster on 127.0.0.1, each on a port the kernel picked; every
/// node learns every other's port after binding.
std::vector<std::unique_ptr<test_node>> make_cluster(io_context& io, std::vector<node_id> ids,
                                                     tcp_options opt = test_options()) {
  cluster_map map;
  for (node_id id : ids) map[id] = {"127.0.0.1", 0};
  std::vector<std::unique_ptr<test_node>> nodes;
  for (node_id id : ids) nodes.push_back(make_node(io, id, test_cluster, map, opt));
  for (auto& a : nodes)
    for (auto& b : nodes)
      if (a != b) a->t->set_peer(b->t->self(), {"127.0.0.1", b->t->local_port()});
  return nodes;
}

message numbered(node_id from, node_id to, std::uint64_t i, std::size_t payload = 16) {
  message m = sample_message(message_type::append_entries);
  m.from = from;
  m.to = to;
  m.request_id = i;
  m.entries.clear();
  m.entries.push_back({1, i, entry_type::normal, shared_bytes::copy_of(std::string(payload, static_cast<char>('a' + i % 26)))});
  return m;
}

/// A port nothing listens on (until a test binds it).
std::uint16_t unused_port(io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

/// A raw client that writes `bytes` to `port` and reads until the server closes.
struct raw_client {
  tcp::socket socket;
  std::string sink;
  bool closed = false;
  raw_client(io_context& io, std::uint16_t port, std::vector<std::byte> bytes) : socket(io) {
    socket.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    boost::asio::write(socket, boost::asio::buffer(bytes));
    boost::asio::async_read(socket, boost::asio::dynamic_buffer(sink),
                            [this](boost::system::error_code, std::size_t) { closed = true; });
  }
};

/// A peer that speaks the protocol by hand, with blocking calls on its own thread, so a
/// test decides when it answers the handshake and when it reads: the transport under test
/// dials it as node `id`.
struct raw_peer {
  io_context io;  // never run: blocking calls only
  tcp::acceptor acceptor{io};
  std::vector<std::unique_ptr<tcp::socket>> sockets;  ///< every connection accepted, kept open; the last is current
  node_id id;
  explicit raw_peer(node_id self, int receive_buffer = 0) : id(self) {
    acceptor.open(tcp::v4());
    if (receive_buffer > 0) acceptor.set_option(boost::asio::socket_base::receive_buffer_size(receive_buffer));
    acceptor.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    acceptor.listen();
  }
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }

  tcp::socket& socket() { return *sockets.back(); }

  /// Accepts the next connection and reads its handshake (it must be `from` -> us).
  void accept_handshake(node_id from) {
    sockets.push_back(std::make_unique<tcp::socket>(acceptor.accept()));
    std::vector<std::byte> f(wire::header_size + wire::handshake_body_size);
    boost::asio::read(socket(), boost::asio::buffer(f));
    wire::handshake h;
    REQUIRE_FALSE(wire::decode_frame(as_span(f), {test_cluster}, h));
    REQUIRE(h == wire::handshake{from, id});
  }
  void reply_handshake(node_id to) {
    std::vector<std::byte> f;
    wire::encode_handshake({id, to}, test_cluster, f);
    boost::asio::write(socket(), boost::asio::buffer(f));
  }
  /// Wakes the peer's thread from any blocking call (accept, read), so a failing test can
  /// join it instead of hanging or terminating.
  void abort() {
    ::shutdown(acceptor.native_handle(), SHUT_RDWR);
    for (auto& s : sockets) ::shutdown(s->native_handle(), SHUT_RDWR);
  }
  /// Reads one message frame; false when the connection ends.
  bool read_message(message& out) {
    std::array<std::byte, wire::header_size> h{};
    boost::system::error_code ec;
    boost::asio::read(socket(), boost::asio::buffer(h), ec);
    if (ec) return false;
    wire::frame_header fh;
    if (wire::decode_header(h, {test_cluster}, fh)) return false;
    std::vector<std::byte> body(fh.body_length);
    boost::asio::read(socket(), boost::asio::buffer(body), ec);
    return !ec && !wire::decode_body(fh, body, out);
  }
};

/// Joins a raw peer's thread however the test ends: on an early exit (a failed REQUIRE)
/// it first releases the thread's waits and wakes its blocking calls.
struct peer_joiner {
  raw_peer& peer;
  std::thread& thread;
  std::vector<std::promise<void>*> releases;
  bool done = false;
  void join() {
    done = true;
    thread.join();
  }
  ~peer_joiner() {
    if (done || !thread.joinable()) return;
    for (auto* p : releases) {
      try {
        p->set_value();
      } catch (const std::future_error&) {  // already released
      }
    }
    peer.abort();
    thread.join();
  }
};

/// Runs `f` on the transport's strand and every handler that became ready, so `f`'s
/// sends act at once and their writes start before this returns.
template <class F>
void on_strand(io_context& io, tcp_transport& t, F f) {
  boost::asio::post(t.get_executor(), f);
  io.restart();
  while (io.poll() > 0) {
  }
}

/// A heartbeat: an AppendEntries without entries, so a control message.
message heartbeat(node_id from, node_id to, std::uint64_t marker) {
  message m;
  m.type = message_type::append_entries;
  m.from = from;
  m.to = to;
  m.request_id = marker;
  return m;
}

}  // namespace

TEST_SUITE("asio") {

TEST_CASE("wire: a handshake body has its fixed size and a header claiming another is refused") {
  std::vector<std::byte> f;
  CHECK(wire::encode_handshake({4, 9}, test_cluster, f) == wire::header_size + wire::handshake_body_size);
  wire::frame_header h;
  REQUIRE_FALSE(wire::decode_header(as_span(f), {test_cluster}, h));
  for (std::uint32_t len : {0u, wire::handshake_body_size - 1, wire::handshake_body_size + 1,
                            (16u << 20) - std::uint32_t{wire::header_size}}) {
    CAPTURE(len);
    auto g = f;
    wire::detail::put_le<std::uint32_t>(g.data() + 16, len);
    reseal_header(g);
    CHECK(wire::decode_header(as_span(g), {test_cluster}, h) == errc::bad_message);
  }
}

TEST_CASE("wire: every message type round-trips with its entries and payloads") {
  for (message_type t : all_types()) {
    CAPTURE(raftkit::to_string(t));
    const message m = sample_message(t);
    const auto f = frame_of(m);
    message r;
    std::size_t consumed = 0;
    REQUIRE_FALSE(wire::decode_frame(as_span(f), {test_cluster}, r, &consumed));
    CHECK(consumed == f.size());
    CHECK(r == m);
  }
}

TEST_CASE("wire: default-constructed message and empty payloads round-trip") {
  message m;
  m.entries.push_back({1, 1, entry_type::normal, {}});
  const auto f = frame_of(m);
  message r;
  REQUIRE_FALSE(decode(f, r));
  CHECK(r == m);
  CHECK(r.entries[0].payload.empty());
}

TEST_CASE("wire: frames appended to one buffer decode one after another") {
  std::vector<std::byte> buf;
  const auto types = all_types();
  for (message_type t : types) CHECK(wire::encode_frame(sample_message(t), test_cluster, buf) > wire::header_size);
  std::span<const std::byte> rest = as_span(buf);
  for (message_type t : types) {
    message r;
    std::size_t used = 0;
    REQUIRE_FALSE(wire::decode_frame(rest, {test_cluster}, r, &used));
    CHECK(r == sample_message(t));
    rest = rest.subspan(used);
  }
  CHECK(rest.empty());
}

TEST_CASE("wire: handshake round-trips and is not a message") {
  std::vector<std::byte> f;
  wire::encode_handshake({4, 9}, test_cluster, f);
  wire::handshake h;
  REQUIRE_FALSE(wire::decode_frame(as_span(f), {test_cluster}, h));
  CHECK(h == wire::handshake{4, 9});
  message m;
  CHECK(decode(f, m) == errc::bad_message);
  wire::handshake h2;
  CHECK(wire::decode_frame(as_span(frame_of(sample_message(message_type::request_vote))), {test_cluster}, h2) ==
        errc::bad_message);
}

TEST_CASE("wire: decoded payloads own their bytes") {
  auto f = frame_of(sample_message(message_type::append_entries));
  message r;
  REQUIRE_FALSE(decode(f, r));
  std::fill(f.begin(), f.end(), std::byte{0});
  CHECK(r.entries[1].payload.view() == "set x=1");
  CHECK(r.entries[1].payload.use_count() == 1);
}

TEST_CASE("wire: decoder rejects each kind of bad frame") {
  const message m = sample_message(message_type::append_entries);
  const auto good = frame_of(m);
  message r;
  REQUIRE_FALSE(decode(good, r));

  SUBCASE("bad magic") {
    auto f = good;
    f[0] ^= std::byte{1};
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("header checksum") {
    auto f = good;
    f[9] ^= std::byte{0x40};  // cluster id bit, header CRC left stale
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("unknown version") {
    auto f = good;
    wire::detail::put_le<std::uint16_t>(f.data() + 4, wire::protocol_version + 1);
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("unknown type") {
    for (std::uint8_t t : {std::uint8_t{0}, std::uint8_t{raftkit::max_message_type + 1}, std::uint8_t{200}}) {
      auto f = good;
      f[6] = std::byte{t};
      reseal_header(f);
      CHECK(decode(f, r) == errc::bad_message);
    }
  }
  SUBCASE("header type disagrees with body type") {
    auto f = good;
    f[6] = std::byte{static_cast<std::uint8_t>(message_type::request_vote)};
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("unknown flags or reserved bits") {
    auto f = good;
    f[7] = std::byte{1};
    reseal_header(f);
    CHECK(decode(f, r) == errc::bad_message);
    f = good;
    f[30] = std::byte{1};
    CHECK(decode(f, r) == errc::bad_message);  // not covered by the header CRC, checked anyway
  }
  SUBCASE("foreign cluster id") {
    const auto f = frame_of(m, test_cluster + 1);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("too large") {
    CHECK(decode(good, r, static_cast<std::uint32_t>(good.size())) == std::error_code{});
    CHECK(decode(good, r, static_cast<std::uint32_t>(good.size() - 1)) == errc::too_large);
    CHECK(decode(good, r, 0) == errc::too_large);
    auto f = good;
    wire::detail::put_le<std::uint32_t>(f.data() + 16, 0xFFFFFFFFu);
    reseal_header(f);
    CHECK(decode(f, r) == errc::too_large);
  }
  SUBCASE("body checksum mismatch") {
    auto f = good;
    f[wire::header_size + 5] ^= std::byte{0x10};
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("truncated header or body") {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, wire::header_size - 1, wire::header_size,
                          good.size() - 1}) {
      const std::vector<std::byte> f(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
      CHECK(decode(f, r) == errc::bad_message);
    }
  }
  SUBCASE("body shorter than its fields, with a valid checksum") {
    auto f = good;
    const std::vector<std::byte> body(good.begin() + wire::header_size, good.end() - 10);
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("trailing bytes after the body") {
    auto f = good;
    std::vector<std::byte> body(good.begin() + wire::header_size, good.end());
    body.push_back(std::byte{0});
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("garbage body with a valid checksum") {
    auto f = good;
    std::vector<std::byte> body(64, std::byte{0xFF});
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("bool out of range") {
    // The reject flag sits after the endianness byte, type, five u64 fields.
    auto f = good;
    std::vector<std::byte> body(good.begin() + wire::header_size, good.end());
    const std::size_t reject_at = 1 + 1 + 6 * 8;
    REQUIRE(body[reject_at] == std::byte{1});
    body[reject_at] = std::byte{2};
    replace_body(f, body);
    CHECK(decode(f, r) == errc::bad_message);
  }
  SUBCASE("payload or entry count larger than the body") {
    // A huge size field must be refused before it is allocated (the sanitizer build
    // would abort on a 2^60-byte request).
    message one;
    one.entries.push_back({1, 1, entry_type::normal, shared_bytes::copy_of("abc")});
    auto f = frame_of(one);
    std::vector<std::byte> body(f.begin() + wire::header_size, f.end());
    const std::size_t count_at = body.size() - (8 + 8 + 8 + 1 + 8 + 3);
    const std::size_t payload_size_at = body.size() - (8 + 3);
    REQUIRE(wire::detail::get_le<std::uint64_t>(body.data() + count_at) == 1);
    REQUIRE(wire::detail::get_le<std::uint64_t>(body.data() + payload_size_at) == 3);
    auto big_count = body;
    wire::detail::put_le<std::uint64_t>(big_count.data() + count_at, 1ull << 60);
    replace_body(f, big_count);
    CHECK(decode(f, r) == errc::bad_message);
    auto big_payload = body;
    wire::detail::put_le<std::uint64_t>(big_payload.data() + payload_size_at, 1ull << 60);
    replace_body(f, big_payload);
    CHECK(decode(f, r) == errc::bad_message);
    auto bad_entry_type = body;
    bad_entry_type[payload_size_at - 1] = std::byte{9};
    replace_body(f, bad_entry_type);
    CHECK(decode(f, r) == errc::bad_message);
  }
}

TEST_CASE("wire: random bytes and random mutations never crash; what decodes re-encodes") {
  std::mt19937_64 rng(20260611);
  std::uniform_int_distribution<int> byte(0, 255);
  message r;
  int accepted_random = 0;
  for (int i = 0; i < 10000; ++i) {
    std::vector<std::byte> buf(static_cast<std::size_t>(rng() % 200));
    for (auto& b : buf) b = static_cast<std::byte>(byte(rng));
    if (!decode(buf, r)) ++accepted_random;
  }
  CHECK(accepted_random == 0);  // random bytes cannot pass magic plus two CRCs

  std::vector<std::vector<std::byte>> seeds;
  for (message_type t : all_types()) seeds.push_back(frame_of(sample_message(t)));
  int rejected = 0;
  for (int i = 0; i < 10000; ++i) {
    auto f = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0: f[rng() % f.size()] ^= static_cast<std::byte>(1 + rng() % 255); break;
        case 1: f.resize(rng() % (f.size() + 1)); if (f.empty()) f.push_back(std::byte{0}); break;
        case 2: f.insert(f.begin() + static_cast<std::ptrdiff_t>(rng() % f.size()), static_cast<std::byte>(byte(rng))); break;
        default: {
          // Corrupt the body but keep the checksums valid, so the body decoder itself
          // faces the damage.
          if (f.size() > wire::header_size) {
            std::vector<std::byte> body(f.begin() + wire::header_size, f.end());
            body[rng() % body.size()] = static_cast<std::byte>(byte(rng));
            replace_body(f, body);
          }
        }
      }
    }
    message out;
    if (decode(f, out)) {
      ++rejected;
    } else {
      // Whatever the decoder accepts is a well-formed message: it encodes to a frame that
      // decodes to the same value.
      message again;
      REQUIRE_FALSE(decode(frame_of(out), again));
      CHECK(again == out);
    }
  }
  CHECK(rejected > 5000);
}

TEST_CASE("tcp: reconnect backoff doubles to its cap, with seeded jitter in [d/2, d]") {
  tcp_options opt;
  opt.reconnect_min = 10ms;
  opt.reconnect_max = 1000ms;
  std::mt19937_64 a(5), b(5);
  std::vector<std::chrono::milliseconds> first, second;
  for (unsigned f = 0; f < 12; ++f) {
    const std::chrono::milliseconds::rep d = std::min<std::chrono::milliseconds::rep>(10 << f, 1000);
    const auto wait = raftkit::asio::detail::backoff_delay(opt, f, a);
    CAPTURE(f);
    CHECK(wait.count() >= d / 2);
    CHECK(wait.count() <= d);
    first.push_back(wait);
    second.push_back(raftkit::asio::detail::backoff_delay(opt, f, b));
  }
  CHECK(first == second);  // same seed, same schedule
  std::set<std::chrono::milliseconds::rep> at_cap;
  for (int i = 0; i < 50; ++i) at_cap.insert(raftkit::asio::detail::backoff_delay(opt, 40, a).count());
  CHECK(at_cap.size() > 1);  // jittered, not a fixed value
  CHECK(*at_cap.begin() >= 500);
  CHECK(*at_cap.rbegin() <= 1000);
  opt.reconnect_min = 0ms;  // degenerate options still give a positive wait
  CHECK(raftkit::asio::detail::backoff_delay(opt, 0, a).count() >= 0);
  CHECK(raftkit::asio::detail::backoff_delay(opt, 3, a).count() <= 8);
}

TEST_CASE("tcp: accept backoff doubles from accept_backoff_min to accept_backoff_max") {
  tcp_options opt;  // 10 ms to 1 s by default
  std::vector<std::chrono::milliseconds::rep> got;
  for (unsigned f = 1; f <= 9; ++f) got.push_back(raftkit::asio::detail::accept_delay(opt, f).count());
  CHECK(got == std::vector<std::chrono::milliseconds::rep>{10, 20, 40, 80, 160, 320, 640, 1000, 1000});
}

TEST_CASE("tcp: three transports exchange messages in order with their payloads") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2, 3});
  constexpr std::uint64_t per_pair = 50;
  for (std::uint64_t i = 0; i < per_pair; ++i)
    for (auto& a : nodes)
      for (auto& b : nodes)
        if (a != b) a->t->send(numbered(a->t->self(), b->t->self(), i));
  REQUIRE(run_until(io, [&] {
    return std::all_of(nodes.begin(), nodes.end(), [](auto& n) { return n->inbox.size() == 2 * per_pair; });
  }));
  for (auto& n : nodes) {
    CAPTURE(n->t->self());
    std::map<node_id, std::uint64_t> next;
    for (const message& m : n->inbox) {
      CHECK(m.to == n->t->self());
      CHECK(m.request_id == next[m.from]++);  // one connection per pair keeps order
      CHECK(m == numbered(m.from, m.to, m.request_id));
    }
    const auto st = n->t->stats();
    CHECK(st.messages_sent == 2 * per_pair);
    CHECK(st.messages_received == 2 * per_pair);
    CHECK(st.bytes_received > 0);
    CHECK(st.connects == 2);
    CHECK(st.accepted == 2);
    CHECK(st.dropped == 0);
    CHECK(st.bad_frames == 0);
    CHECK(st.refused == 0);
  }
}

TEST_CASE("tcp: a peer named by host name is resolved") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2});
  nodes[0]->t->set_peer(2, {"localhost", nodes[1]->t->local_port()});
  nodes[0]->t->send(numbered(1, 2, 0));
  REQUIRE(run_until(io, [&] { return nodes[1]->inbox.size() == 1; }));
  CHECK(nodes[0]->t->stats().connects == 1);
}

TEST_CASE("tcp: a burst is coalesced into few writes") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2});
  // All 1000 are queued in one strand turn while the connection is being set up, so
  // they leave in the first write after the handshake.
  for (std::uint64_t i = 0; i < 1000; ++i) nodes[0]->t->send(numbered(1, 2, i));
  REQUIRE(run_until(io, [&] { return nodes[1]->inbox.size() == 1000; }));
  const auto st = nodes[0]->t->stats();
  CHECK(st.messages_sent == 1000);
  CHECK(st.writes >= 1);
  CHECK(st.writes <= 2);
  CHECK(st.bytes_sent == nodes[1]->t->stats().bytes_received);
}

TEST_CASE("tcp: send from another thread is posted to the strand") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2});
  std::thread sender([&] {
    for (std::uint64_t i = 0; i < 100; ++i) nodes[0]->t->send(numbered(1, 2, i));
  });
  REQUIRE(run_until(io, [&] { return nodes[1]->inbox.size() == 100; }));
  sender.join();
  for (std::uint64_t i = 0; i < 100; ++i) CHECK(nodes[1]->inbox[i].request_id == i);
}

TEST_CASE("tcp: a peer that starts late is reached after reconnecting with backoff") {
  io_context io;
  const std::uint16_t port2 = unused_port(io);
  cluster_map map{{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", port2}}};
  auto n1 = make_node(io, 1, test_cluster, map);
  for (std::uint64_t i = 0; i < 5; ++i) n1->t->send(numbered(1, 2, i));
  REQUIRE(run_until(io, [&] { return n1->t->stats().connect_failures >= 3; }));
  CHECK(n1->t->stats().connects == 0);

  map[1].port = n1->t->local_port();
  auto n2 = make_node(io, 2, test_cluster, map);
  REQUIRE(n2->t->local_port() == port2);
  REQUIRE(run_until(io, [&] { return n2->inbox.size() == 5; }));  // queued while it was away
  for (std::uint64_t i = 0; i < 5; ++i) CHECK(n2->inbox[i].request_id == i);
  CHECK(n1->t->stats().connects == 1);
  CHECK(n1->t->stats().dropped == 0);
}

TEST_CASE("tcp: a restarted peer is reached again") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2});
  nodes[0]->t->send(numbered(1, 2, 0));
  REQUIRE(run_until(io, [&] { return nodes[1]->inbox.size() == 1; }));
  const std::uint16_t port2 = nodes[1]->t->local_port();
  nodes[1]->t.reset();  // the peer goes away; its sockets close
  REQUIRE(run_until(io, [&] { return nodes[0]->t->stats().connect_failures >= 2; }));
  cluster_map map{{1, {"127.0.0.1", nodes[0]->t->local_port()}}, {2, {"127.0.0.1", port2}}};
  auto again = make_node(io, 2, test_cluster, map);
  nodes[0]->t->send(numbered(1, 2, 1));
  REQUIRE(run_until(io, [&] { return again->inbox.size() == 1; }));
  CHECK(again->inbox[0].request_id == 1);
  CHECK(nodes[0]->t->stats().connects == 2);
}

TEST_CASE("tcp: a removed peer is sent nothing, its connections close, it is refused, and set_peer adds it back") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2, 3});
  auto& one = *nodes[0];
  auto& two = *nodes[1];
  one.t->send(numbered(1, 2, 0));
  two.t->send(numbered(2, 1, 0));
  REQUIRE(run_until(io, [&] { return one.inbox.size() == 1 && two.inbox.size() == 1; }));
  const auto before = one.t->stats();

  one.t->remove_peer(2);
  one.t->send(numbered(1, 2, 1));  // dropped: not a peer any more
  one.t->send(numbered(1, 3, 0));  // other peers are untouched
  // Node 1 closed node 2's connection to it; node 2 redials and is refused as unknown.
  REQUIRE(run_until(io, [&] {
    return one.t->stats().refusals[static_cast<std::size_t>(raftkit::asio::refusal::unknown_node)] >= 1 && nodes[2]->inbox.size() == 1;
  }));
  two.t->send(numbered(2, 1, 1));
  REQUIRE(run_until(io, [&] { return two.t->stats().connect_failures >= 2; }));
  CHECK(one.inbox.size() == 1);  // nothing from node 2 since
  CHECK(two.inbox.size() == 1);  // nothing to it since
  CHECK(one.t->stats().dropped == before.dropped + 1);
  const auto peers = one.t->peer_connections();
  CHECK(std::none_of(peers.begin(), peers.end(), [](const raftkit::asio::peer_connection& p) { return p.id == 2; }));
  one.t->remove_peer(2);  // again: nothing
  one.t->remove_peer(1);  // itself: nothing
  one.t->remove_peer(7);  // never a peer: nothing

  one.t->set_peer(2, {"127.0.0.1", two.t->local_port()});
  one.t->send(numbered(1, 2, 2));
  REQUIRE(run_until(io, [&] { return two.inbox.size() == 2 && one.inbox.size() == 2; }));  // and node 2's redial passes
  CHECK(two.inbox[1].request_id == 2);
  CHECK(one.inbox[1].request_id == 1);
}

TEST_CASE("tcp: a foreign cluster is refused and counted") {
  io_context io;
  cluster_map map{{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", 0}}};
  auto ours = make_node(io, 2, test_cluster, map);
  map[2].port = ours->t->local_port();
  auto foreign = make_node(io, 1, test_cluster + 1, map);
  foreign->t->send(numbered(1, 2, 0));
  REQUIRE(run_until(io, [&] {
    return ours->t->stats().refused >= 2 && foreign->t->stats().connect_failures >= 2;
  }));
  CHECK(ours->inbox.empty());
  CHECK(ours->t->stats().accepted == 0);
  CHECK(foreign->t->stats().connects == 0);
  CHECK(foreign->t->stats().messages_sent == 0);
}

TEST_CASE("tcp: an unknown node id is refused and counted") {
  io_context io;
  cluster_map map{{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", 0}}};
  auto n2 = make_node(io, 2, test_cluster, map);
  // Node 9 knows node 2, but node 2's map has no node 9.
  cluster_map stranger_map{{9, {"127.0.0.1", 0}}, {2, {"127.0.0.1", n2->t->local_port()}}};
  auto stranger = make_node(io, 9, test_cluster, stranger_map);
  stranger->t->send(numbered(9, 2, 0));
  REQUIRE(run_until(io, [&] { return n2->t->stats().refused >= 2; }));
  CHECK(n2->inbox.empty());
  CHECK(n2->t->stats().accepted == 0);
  CHECK(stranger->t->stats().connects == 0);
}

TEST_CASE("tcp: a node answering for another id is refused by the dialler") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2, 3});
  // Misconfigure node 1: it believes node 2 lives at node 3's port. Node 3 refuses the
  // handshake addressed to node 2.
  nodes[0]->t->set_peer(2, {"127.0.0.1", nodes[2]->t->local_port()});
  nodes[0]->t->send(numbered(1, 2, 0));
  REQUIRE(run_until(io, [&] { return nodes[2]->t->stats().refused >= 2; }));
  CHECK(nodes[2]->inbox.empty());
  CHECK(nodes[1]->inbox.empty());
  CHECK(nodes[0]->t->stats().connects == 0);
}

TEST_CASE("tcp: garbage, oversized and forged frames close the connection and are counted") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2});
  test_node& n1 = *nodes[0];
  std::vector<std::byte> hello;
  wire::encode_handshake({2, 1}, test_cluster, hello);
  std::uint64_t expect_bad = 0;

  SUBCASE("random garbage instead of a handshake") {
    std::mt19937_64 rng(7);
    std::vector<std::byte> junk(200);
    for (auto& b : junk) b = static_cast<std::byte>(rng());
    raw_client c(io, n1.t->local_port(), junk);
    REQUIRE(run_until(io, [&] { return c.closed; }));
    expect_bad = 1;
  }
  SUBCASE("an oversized length after a valid handshake") {
    auto bytes = hello;
    std::vector<std::byte> f = frame_of(numbered(2, 1, 0));
    wire::detail::put_le<std::uint32_t>(f.data() + 16, 0xFFFFFF00u);
    reseal_header(f);
    bytes.insert(bytes.end(), f.begin(), f.begin() + wire::header_size);
    raw_client c(io, n1.t->local_port(), bytes);
    REQUIRE(run_until(io, [&] { return c.closed; }));
    expect_bad = 1;
  }
  SUBCASE("a body that fails its checksum") {
    auto bytes = hello;
    auto f = frame_of(numbered(2, 1, 0));
    f.back() ^= std::byte{1};
    bytes.insert(bytes.end(), f.begin(), f.end());
    raw_client c(io, n1.t->local_port(), bytes);
    REQUIRE(run_until(io, [&] { return c.closed; }));
    expect_bad = 1;
  }
  SUBCASE("a message forged as from another node") {
    auto bytes = hello;
    auto f = frame_of(numbered(3, 1, 0));
    bytes.insert(bytes.end(), f.begin(), f.end());
    raw_client c(io, n1.t->local_port(), bytes);
    REQUIRE(run_until(io, [&] { return c.closed; }));
    expect_bad = 1;
  }
  SUBCASE("a good message, then a second handshake") {
    auto bytes = hello;
    auto f = frame_of(numbered(2, 1, 0));
    bytes.insert(bytes.end(), f.begin(), f.end());
    bytes.insert(bytes.end(), hello.begin(), hello.end());
    raw_client c(io, n1.t->local_port(), bytes);
    REQUIRE(run_until(io, [&] { return c.closed; }));
    REQUIRE(n1.inbox.size() == 1);  // what preceded the bad frame was valid and delivered
    n1.inbox.clear();
    expect_bad = 1;
  }
  CHECK(n1.t->stats().bad_frames == expect_bad);
  CHECK(n1.inbox.empty());
  // The transport survives and still serves its real peer.
  nodes[1]->t->send(numbered(2, 1, 5));
  REQUIRE(run_until(io, [&] { return n1.inbox.size() == 1; }));
  CHECK(n1.inbox[0].request_id == 5);
}

TEST_CASE("tcp: a full queue drops the newest messages and counts them") {
  io_context io;
  tcp_options opt = test_options();
  opt.reconnect_min = opt.reconnect_max = 1000ms;  // the peer stays absent for the test
  const std::uint16_t port2 = unused_port(io);

  SUBCASE("bounded in messages") {
    opt.max_queue_messages = 10;
    auto n1 = make_node(io, 1, test_cluster, {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", port2}}}, opt);
    for (std::uint64_t i = 0; i < 25; ++i) n1->t->send(numbered(1, 2, i));
    REQUIRE(run_until(io, [&] { return n1->t->stats().dropped == 15; }));
  }
  SUBCASE("bounded in bytes") {
    const std::size_t frame = frame_of(numbered(1, 2, 0, 100)).size();
    opt.max_queue_bytes = 4 * frame;
    auto n1 = make_node(io, 1, test_cluster, {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", port2}}}, opt);
    for (std::uint64_t i = 0; i < 10; ++i) n1->t->send(numbered(1, 2, i, 100));
    REQUIRE(run_until(io, [&] { return n1->t->stats().dropped == 6; }));
  }
  SUBCASE("a frame over the maximum size, an unknown peer and this node") {
    opt.max_frame_size = 256;
    auto n1 = make_node(io, 1, test_cluster, {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", port2}}}, opt);
    n1->t->send(numbered(1, 2, 0, 1000));
    n1->t->send(numbered(1, 7, 0));
    n1->t->send(numbered(1, 1, 0));
    REQUIRE(run_until(io, [&] { return n1->t->stats().dropped == 3; }));
  }
}

TEST_CASE("tcp: a receive handler that closes the transport gets no more messages") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2});
  int calls = 0;
  cluster_map map{{1, {"127.0.0.1", nodes[0]->t->local_port()}}, {3, {"127.0.0.1", 0}}};
  tcp_transport* self_ptr = nullptr;
  tcp_transport closer(io.get_executor(), 3, test_cluster, map, [&](message&&) {
    ++calls;
    self_ptr->close();
  }, test_options());
  self_ptr = &closer;
  nodes[0]->t->set_peer(3, {"127.0.0.1", closer.local_port()});
  for (std::uint64_t i = 0; i < 20; ++i) nodes[0]->t->send(numbered(1, 3, i));
  REQUIRE(run_until(io, [&] { return calls >= 1 && nodes[0]->t->stats().messages_sent == 20; }));
  // Let the sender notice the closed connection; nothing more may be delivered.
  REQUIRE(run_until(io, [&] { return nodes[0]->t->stats().connect_failures >= 1; }));
  CHECK(calls == 1);
  closer.send(numbered(3, 1, 0));
  CHECK(closer.stats().dropped == 1);
}

TEST_CASE("tcp: close cancels all work so the io_context runs dry") {
  io_context io;
  auto nodes = make_cluster(io, {1, 2, 3});
  nodes[0]->t->set_peer(3, {"127.0.0.1", unused_port(io)});  // one peer stays in backoff
  nodes[0]->t->send(numbered(1, 2, 0));
  nodes[0]->t->send(numbered(1, 3, 0));
  REQUIRE(run_until(io, [&] {
    return nodes[1]->inbox.size() == 1 && nodes[0]->t->stats().connect_failures >= 1;
  }));
  for (auto& n : nodes) n->t->close();
  io.restart();
  io.run_for(20s);  // returns at once if nothing is left: no timer, read or accept
  CHECK(io.stopped());
  nodes[1]->t->send(numbered(2, 1, 0));
  CHECK(nodes[1]->t->stats().dropped == 1);
}

TEST_CASE("tcp: a control message is neither dropped nor delayed behind a full bulk queue") {
  // Bulk frames fill node 1's queue for peer 2 (a raw peer on loopback) until the queue
  // drops; then a heartbeat is sent. The peer then reads everything, and the order it
  // reads the frames in shows where the heartbeat was written.
  io_context io;
  tcp_options opt = test_options();
  opt.max_queue_bytes = 256u << 10;
  opt.max_write_bytes = 32u << 10;
  opt.write_timeout = 0ms;  // the peer stalls on purpose
  bool stalled_write = false;
  SUBCASE("a write is stuck in flight") {
    stalled_write = true;  // the peer answers the handshake but does not read
  }
  SUBCASE("the connection is not up yet") {
    stalled_write = false;  // the peer answers the handshake only after the heartbeat
  }
  raw_peer peer(2, 8 << 10);
  auto n1 = make_node(io, 1, test_cluster, {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", peer.port()}}}, opt);
  std::promise<void> answer, read;
  std::vector<message> got;
  std::thread peer_thread([&] {
    peer.accept_handshake(1);
    if (!stalled_write) answer.get_future().wait();
    peer.reply_handshake(1);
    read.get_future().wait();
    message m;
    while (peer.read_message(m)) got.push_back(m);
  });
  peer_joiner joiner{peer, peer_thread, {&answer, &read}};
  std::uint64_t next = 0;
  on_strand(io, *n1->t, [&] { n1->t->send(numbered(1, 2, next++, 2000)); });
  if (stalled_write) REQUIRE(run_until(io, [&] { return n1->t->stats().connects == 1; }));
  // Fill the kernel's buffers, then the write in flight, then the queue, until it drops.
  for (int i = 0; i < 100000 && n1->t->stats().dropped == 0; ++i)
    on_strand(io, *n1->t, [&] { n1->t->send(numbered(1, 2, next++, 2000)); });
  REQUIRE(n1->t->stats().dropped == 1);
  const std::uint64_t dropped_id = next - 1;
  std::uint64_t written_before = 0;
  on_strand(io, *n1->t, [&] {
    written_before = n1->t->stats().messages_sent;
    n1->t->send(heartbeat(1, 2, 1u << 30));
    n1->t->send(numbered(1, 2, next++, 2000));  // the bulk queue is still full
  });
  CHECK(n1->t->stats().dropped == 2);
  CHECK(n1->t->stats().control_dropped == 0);
  answer.set_value();
  read.set_value();
  const std::uint64_t bulk_kept = next - 2;
  REQUIRE(run_until(io, [&] { return n1->t->stats().messages_sent == bulk_kept + 1; }));
  n1->t->close();
  io.restart();
  io.poll();
  joiner.join();

  REQUIRE(got.size() == bulk_kept + 1);
  std::size_t at = got.size();
  std::vector<std::uint64_t> bulk_ids;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (got[i].entries.empty()) {
      CHECK(got[i].request_id == 1u << 30);
      at = i;
    } else {
      bulk_ids.push_back(got[i].request_id);
    }
  }
  REQUIRE(at < got.size());
  // Bulk frames keep their order and only the two that found the queue full are missing.
  std::vector<std::uint64_t> want;
  for (std::uint64_t i = 0; i < next; ++i)
    if (i != dropped_id && i != next - 1) want.push_back(i);
  CHECK(bulk_ids == want);
  // Ahead of every queued bulk frame: behind only what had been written and the write
  // in flight (at most max_write_bytes of frames, plus one).
  const std::size_t frame = frame_of(numbered(1, 2, 0, 2000)).size();
  const std::size_t per_write = opt.max_write_bytes / frame + 1;
  CAPTURE(at);
  CAPTURE(written_before);
  CAPTURE(bulk_kept);
  CHECK(at <= written_before + per_write);
  if (!stalled_write) CHECK(at == 0);
  CHECK(bulk_kept - at > opt.max_queue_bytes / frame / 2);  // most of the queue was still behind it
}

TEST_CASE("tcp: a write that does not complete within write_timeout replaces the connection") {
  io_context io;
  tcp_options opt = test_options();
  opt.write_timeout = 200ms;
  raw_peer peer(2, 8 << 10);
  auto n1 = make_node(io, 1, test_cluster, {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", peer.port()}}}, opt);
  std::vector<message> got;
  std::thread peer_thread([&] {
    peer.accept_handshake(1);
    peer.reply_handshake(1);  // ... and never reads: the connection is stuck, not closed
    peer.accept_handshake(1);  // the replacement
    peer.reply_handshake(1);
    message m;
    while (peer.read_message(m)) got.push_back(m);
  });
  peer_joiner joiner{peer, peer_thread, {}};
  std::uint64_t next = 0;
  on_strand(io, *n1->t, [&] { n1->t->send(numbered(1, 2, next++, 2000)); });
  REQUIRE(run_until(io, [&] { return n1->t->stats().connects == 1; }));
  // Enough to fill the kernel's buffers, so a write is stuck in flight (until the queue
  // is full, or the timeout already fired).
  for (int i = 0; i < 100000 && n1->t->stats().dropped == 0 && n1->t->stats().write_timeouts == 0; ++i)
    on_strand(io, *n1->t, [&] { n1->t->send(numbered(1, 2, next++, 2000)); });
  REQUIRE(run_until(io, [&] { return n1->t->stats().write_timeouts == 1 && n1->t->stats().connects == 2; }));
  on_strand(io, *n1->t, [&] { n1->t->send(heartbeat(1, 2, 77)); });
  std::size_t backlog = 1;
  REQUIRE(run_until(io, [&] {
    on_strand(io, *n1->t, [&] { backlog = n1->t->backlog(); });
    return backlog == 0;
  }));
  n1->t->close();
  io.restart();
  io.poll();
  joiner.join();
  // The replacement carries the heartbeat and what was still queued behind the stuck write.
  CHECK(std::any_of(got.begin(), got.end(), [](const message& m) { return m.request_id == 77; }));
  CHECK(std::any_of(got.begin(), got.end(), [](const message& m) { return !m.entries.empty(); }));
  CHECK(n1->t->stats().write_timeouts == 1);
}

TEST_CASE("tcp: a handshake header claiming a large body is refused before any body is read") {
  io_context io;
  tcp_options opt = test_options();
  opt.connect_timeout = 3600s;  // so only the header check can close the connection in time
  auto nodes = make_cluster(io, {1, 2}, opt);
  std::vector<std::byte> hello;
  wire::encode_handshake({2, 1}, test_cluster, hello);
  hello.resize(wire::header_size);
  wire::detail::put_le<std::uint32_t>(hello.data() + 16, (16u << 20) - wire::header_size);
  reseal_header(hello);
  raw_client c(io, nodes[0]->t->local_port(), hello);  // header only: no body follows
  REQUIRE(run_until(io, [&] { return c.closed; }));
  CHECK(nodes[0]->t->stats().bad_frames == 1);
  CHECK(nodes[0]->t->stats().accepted == 0);
}

TEST_CASE("tcp: the accept loop backs off on EMFILE instead of spinning, and recovers") {
  // In a child process, whose descriptor limit is lowered and used up, so the rest of the
  // suite is untouched. The child reports by exit status (0: all held) and on stderr.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto fail = [](int code, const char* what) {
      std::fprintf(stderr, "accept backoff child: %s\n", what);
      std::fflush(stderr);
      ::_exit(code);
    };
    io_context io;
    tcp_options opt = test_options();
    tcp_transport t(io.get_executor(), 1, test_cluster, {{1, {"127.0.0.1", 0}}, {2, {"127.0.0.1", 1}}},
                    [](message&&) {}, opt);
    tcp::socket client(io);
    client.open(tcp::v4());  // its descriptor exists before the limit is reached
    const int probe = ::dup(0);
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = static_cast<rlim_t>(probe + 16);
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) fail(2, "setrlimit");
    std::vector<int> held{probe};
    for (int fd; (fd = ::dup(0)) >= 0;) held.push_back(fd);
    client.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), t.local_port()));
    std::vector<std::byte> hello;
    wire::encode_handshake({2, 1}, test_cluster, hello);
    boost::asio::write(client, boost::asio::buffer(hello));
    // A spinning loop fails an accept on every other handler; a backing-off one fails
    // once and then waits on a timer, so polling finds nothing to do.
    for (int i = 0; i < 1000; ++i) io.poll_one();
    const auto errors = t.stats().accept_errors;
    std::fprintf(stderr, "accept backoff child: %llu failed accepts in 1000 polls\n",
                 static_cast<unsigned long long>(errors));
    if (errors < 1) fail(3, "the accept did not fail: the descriptors were not used up");
    if (errors > 3) fail(4, "the accept loop spins on EMFILE");
    for (int fd : held) ::close(fd);
    if (!run_until(io, [&] { return t.stats().accepted == 1; })) fail(5, "no accept after descriptors were freed");
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

}  // TEST_SUITE("asio")
