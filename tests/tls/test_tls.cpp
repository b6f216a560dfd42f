// raftkit::asio::tls_transport: mutual TLS between peers, on real sockets on 127.0.0.1,
// with certificates made for this run by tests/tls/make-certs.sh (the `openssl` command;
// RAFTKIT_MAKE_CERTS names the script). Nothing asserts on time: every wait is for a
// condition, with a hang guard.

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "raftkit/asio/node.hpp"
#include "raftkit/asio/tls_transport.hpp"
#include "raftkit/file/log_store.hpp"
#include "raftkit/wire.hpp"

#include "../asio_waits.hpp"

namespace {

using namespace std::chrono_literals;
namespace ba = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = ba::ip::tcp;
using raftkit::message;
using raftkit::message_type;
using raftkit::node_id;
using raftkit::asio::cluster_map;
using raftkit::asio::pem_source;
using raftkit::asio::refusal;
using raftkit::asio::tcp_options;
using raftkit::asio::tcp_transport;
using raftkit::asio::tls_options;
using raftkit::asio::tls_transport;

constexpr std::uint64_t test_cluster = 193;  // the certificates name it

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << p);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  REQUIRE(out.good());
}

/// A directory removed at exit.
struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const std::string& what) {
    path = std::filesystem::temp_directory_path() /
           ("raftkit-tls-" + what + "-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// The certificates of this run, made once by make-certs.sh (see its comment for the files).
const std::filesystem::path& certs() {
  static temp_dir dir("certs");
  static const bool made = [] {
    const char* script = std::getenv("RAFTKIT_MAKE_CERTS");
    REQUIRE_MESSAGE(script, "RAFTKIT_MAKE_CERTS must name tests/tls/make-certs.sh");
    const std::string cmd = std::string("sh '") + script + "' '" + dir.path.string() + "' " +
                            std::to_string(test_cluster) + " 4";
    return std::system(cmd.c_str()) == 0;
  }();
  REQUIRE_MESSAGE(made, "make-certs.sh failed");
  return dir.path;
}

/// TLS options from the certificate files `name`.pem/.key, trusting `cas` (file stems).
tls_options files(const std::string& name, std::vector<std::string> cas = {"ca"}) {
  tls_options o;
  o.certificate_chain = pem_source::from_file((certs() / (name + ".pem")).string());
  o.private_key = pem_source::from_file((certs() / (name + ".key")).string());
  if (cas.size() == 1) {
    o.trusted_ca = pem_source::from_file((certs() / (cas[0] + ".pem")).string());
  } else {
    std::string bundle;
    for (const auto& c : cas) bundle += slurp(certs() / (c + ".pem"));
    o.trusted_ca = pem_source::from_memory(bundle);
  }
  return o;
}

/// The same, as in-memory PEM.
tls_options memory(const std::string& name, const std::string& ca = "ca") {
  tls_options o;
  o.certificate_chain = pem_source::from_memory(slurp(certs() / (name + ".pem")));
  o.private_key = pem_source::from_memory(slurp(certs() / (name + ".key")));
  o.trusted_ca = pem_source::from_memory(slurp(certs() / (ca + ".pem")));
  return o;
}

/// Fast reconnects; the connect timeout is a hang guard only.
tcp_options test_options() {
  tcp_options o;
  o.reconnect_min = 2ms;
  o.reconnect_max = 20ms;
  o.connect_timeout = 2s;
  o.seed = 7;
  return o;
}

/// Runs the io_context until `done` holds (false after the hang guard).
template <class F>
bool run_until(ba::io_context& io, F done) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(20ms);
  }
  return true;
}

message numbered(node_id from, node_id to, std::uint64_t i) {
  message m;
  m.type = message_type::append_entries;
  m.from = from;
  m.to = to;
  m.term = 1;
  m.request_id = i;
  m.entries.push_back({1, i + 1, raftkit::entry_type::normal, raftkit::shared_bytes::copy_of(std::string(16, 'x'))});
  return m;
}

/// A transport (TLS or plain) plus what it received.
template <class T>
struct peer {
  std::vector<message> inbox;
  std::unique_ptr<T> t;
};

template <class T, class... Extra>
std::unique_ptr<peer<T>> make_peer(ba::io_context& io, node_id id, const cluster_map& map, Extra&&... extra) {
  auto p = std::make_unique<peer<T>>();
  auto on_receive = [p = p.get()](message&& m) { p->inbox.push_back(std::move(m)); };
  if constexpr (std::is_same_v<T, tls_transport>)
    p->t = std::make_unique<T>(io.get_executor(), id, test_cluster, map, on_receive, std::forward<Extra>(extra)...,
                               test_options());
  else
    p->t = std::make_unique<T>(io.get_executor(), id, test_cluster, map, on_receive, test_options());
  return p;
}

cluster_map loopback(std::initializer_list<node_id> ids) {
  cluster_map m;
  for (node_id id : ids) m[id] = {"127.0.0.1", 0};
  return m;
}

/// A TLS client written by hand: dials `port`, handshakes with its own context, sends
/// raftkit's handshake {from, to} and reads; `saw` is the first error it met, the step
/// it met it in, and the OpenSSL reason when there is one.
struct raw_tls_client {
  ssl::context ctx;
  std::optional<ssl::stream<tcp::socket>> s;
  std::vector<std::byte> frame;
  std::array<std::byte, raftkit::wire::header_size> header{};
  bool done = false;
  bool tls_ok = false;
  std::string saw;

  explicit raw_tls_client(ssl::context c) : ctx(std::move(c)) {}

  void start(ba::io_context& io, std::uint16_t port, node_id from, node_id to, std::uint64_t cluster = test_cluster) {
    s.emplace(io, ctx);
    raftkit::wire::encode_handshake({from, to}, cluster, frame);
    s->lowest_layer().async_connect({ba::ip::make_address("127.0.0.1"), port}, [this](boost::system::error_code ec) {
      if (ec) return finish("connect", ec);
      s->async_handshake(ssl::stream_base::client, [this](boost::system::error_code e) {
        if (e) return finish("TLS handshake", e);
        tls_ok = true;
        ba::async_write(*s, ba::buffer(frame), [this](boost::system::error_code e2, std::size_t) {
          if (e2) return finish("write", e2);
          ba::async_read(*s, ba::buffer(header), [this](boost::system::error_code e3, std::size_t) {
            finish("read", e3);
          });
        });
      });
    });
  }

  void finish(const char* step, boost::system::error_code ec) {
    saw = std::string(step) + ": " + (ec ? ec.message() : std::string("answered"));
    done = true;
  }
};

/// A client context presenting `name`'s certificate (none when empty), trusting `ca`.
ssl::context client_context(const std::string& name, const std::string& ca = "ca",
                            raftkit::asio::tls_version max = raftkit::asio::tls_version::v1_3) {
  ssl::context c(max == raftkit::asio::tls_version::v1_2 ? ssl::context::tlsv12_client : ssl::context::tls_client);
  if (!name.empty()) {
    c.use_certificate_chain_file((certs() / (name + ".pem")).string());
    c.use_private_key_file((certs() / (name + ".key")).string(), ssl::context::pem);
  }
  c.load_verify_file((certs() / (ca + ".pem")).string());
  c.set_verify_mode(ssl::verify_peer);
  return c;
}

// ---------------------------------------------------------------- drivers over TLS

using asio_test::adder;
using asio_test::cmd;

using tls_node = raftkit::asio::node<raftkit::file::log_store, adder, tls_transport>;

/// Up to three asio::node over TLS with file log stores, on one io_context run by one
/// thread; members 1..3. A slot may be empty (an impostor, or a node down).
struct tls_cluster {
  ba::io_context io;
  ba::executor_work_guard<ba::io_context::executor_type> work{io.get_executor()};
  temp_dir data{"data"};
  cluster_map map = loopback({1, 2, 3});
  std::array<std::unique_ptr<tls_node>, 3> nodes;
  std::thread runner;

  tls_cluster() = default;
  ~tls_cluster() {
    for (auto& n : nodes) n.reset();
    work.reset();
    if (runner.joinable()) runner.join();
  }

  void start_node(node_id id, tls_options tls) {
    raftkit::node_config cfg;
    cfg.id = id;
    cfg.members = {1, 2, 3};
    cfg.election_timeout = 100ms;
    cfg.heartbeat_interval = 20ms;
    cfg.seed = 42 + id;
    const std::string dir = (data.path / std::to_string(id)).string();
    std::filesystem::create_directories(dir);
    nodes[id - 1] = std::make_unique<tls_node>(
        cfg, raftkit::asio::tls_factory(io.get_executor(), cfg, test_cluster, map, std::move(tls), test_options()),
        [&] { return raftkit::file::log_store(dir); }, adder{});
    map[id].port = nodes[id - 1]->local_port();
    for (auto& n : nodes)
      if (n)
        for (const auto& [peer_id, a] : map)
          if (peer_id != n->transport().self()) n->set_peer(peer_id, a);
    nodes[id - 1]->start();
  }

  void run() { runner = std::thread([this] { io.run(); }); }

  raftkit::node_status status(std::size_t i) {
    auto f = nodes[i]->status(ba::use_future);
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
  }

  void pause() {
    ba::steady_timer t(io, 5ms);
    auto f = t.async_wait(ba::use_future);
    f.wait_for(1s);
  }

  /// Waits until the running nodes agree on a leader among them; its index.
  std::size_t wait_leader() {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<std::size_t> leader;
      bool agree = true;
      for (std::size_t i = 0; i < 3; ++i) {
        if (!nodes[i]) continue;
        const auto s = status(i);
        if (s.role == raftkit::role::leader) leader = i;
        if (s.leader == raftkit::no_node) agree = false;
      }
      if (leader && agree) {
        for (std::size_t i = 0; i < 3; ++i)
          if (nodes[i]) agree = agree && status(i).leader == *leader + 1;
        if (agree) return *leader;
      }
      pause();
    }
    FAIL("no leader within 15 s");
    return 0;
  }

  /// Proposes through the leader (retrying across a change of leader); the index applied.
  raftkit::index_t replicate(std::int64_t d) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::size_t l = wait_leader();
      auto f = nodes[l]->propose(cmd(d), ba::use_future);
      REQUIRE(f.wait_for(10s) == std::future_status::ready);
      auto [ec, index, value] = f.get();
      if (!ec) return index;
    }
    FAIL("no proposal committed within 15 s");
    return 0;
  }

  /// Waits until every running node has applied `index`.
  void wait_applied(raftkit::index_t index) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    for (std::size_t i = 0; i < 3; ++i) {
      if (!nodes[i]) continue;
      while (status(i).applied_index < index) {
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "node " << i + 1 << " did not apply " << index);
        pause();
      }
    }
  }

  /// Waits (on the io thread's progress) until `done` holds.
  template <class F>
  bool eventually(F done) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pause();
    }
    return true;
  }
};

std::uint64_t refused_for(const tls_node& n, refusal r) { return n.transport().stats().refused_for(r); }

}  // namespace

TEST_SUITE("tls") {

TEST_CASE("tls: three transports exchange messages over mutual TLS, with PEM from files and from memory") {
  ba::io_context io;
  auto map = loopback({1, 2, 3});
  auto a = make_peer<tls_transport>(io, 1, map, files("node1"));
  auto b = make_peer<tls_transport>(io, 2, map, memory("node2"));
  auto c = make_peer<tls_transport>(io, 3, map, files("node3"));
  for (auto* x : {a.get(), b.get(), c.get()})
    for (auto* y : {a.get(), b.get(), c.get()})
      if (x != y) x->t->set_peer(y->t->self(), {"127.0.0.1", y->t->local_port()});
  for (std::uint64_t i = 0; i < 20; ++i) {
    a->t->send(numbered(1, 2, i));
    b->t->send(numbered(2, 3, i));
    c->t->send(numbered(3, 1, i));
  }
  REQUIRE(run_until(io, [&] { return a->inbox.size() == 20 && b->inbox.size() == 20 && c->inbox.size() == 20; }));
  for (std::uint64_t i = 0; i < 20; ++i) {
    CHECK(b->inbox[i].request_id == i);
    CHECK(b->inbox[i].from == 1);
    CHECK(b->inbox[i].entries[0].payload.size() == 16);
  }
  for (auto* x : {a.get(), b.get(), c.get()}) {
    const auto s = x->t->stats();
    CHECK(s.refused == 0);
    CHECK(s.connects == 1);
    CHECK(s.accepted == 1);
  }
}

TEST_CASE("tls: a cluster of asio::node over TLS elects a leader and replicates") {
  tls_cluster c;
  for (node_id id = 1; id <= 3; ++id) c.start_node(id, files("node" + std::to_string(id)));
  c.run();
  raftkit::index_t last = 0;
  for (std::int64_t i = 1; i <= 20; ++i) last = c.replicate(i);
  c.wait_applied(last);
  for (std::size_t i = 0; i < 3; ++i) CHECK(c.nodes[i]->transport().stats().refused == 0);
}

TEST_CASE("tls: a certificate that does not name the node, a key of another certificate, a missing file: tls_error") {
  ba::io_context io;
  auto map = loopback({1, 2});
  auto make = [&](tls_options o) {
    return tls_transport(io.get_executor(), 1, test_cluster, map, [](message&&) {}, std::move(o));
  };
  CHECK_THROWS_AS(make(files("node2")), raftkit::asio::tls_error);  // names node 2
  CHECK_THROWS_AS(make(files("other-cluster-node1")), raftkit::asio::tls_error);  // node 1 of cluster 194
  tls_options mismatched = files("node1");
  mismatched.private_key = pem_source::from_file((certs() / "node2.key").string());
  CHECK_THROWS_AS(make(mismatched), raftkit::asio::tls_error);
  tls_options missing = files("node1");
  missing.trusted_ca = pem_source::from_file((certs() / "no-such-ca.pem").string());
  CHECK_THROWS_AS(make(missing), raftkit::asio::tls_error);
  tls_options garbage = files("node1");
  garbage.trusted_ca = pem_source::from_memory("not a certificate");
  CHECK_THROWS_AS(make(garbage), raftkit::asio::tls_error);
  CHECK_NOTHROW(make(files("node1")));
}

// Each refusal below is shown twice: in a transport-level exchange (what the refused side
// saw, what the refusing side counted), then in a running cluster where the bad peer holds
// member 1's place and members 2 and 3 still elect and replicate.

TEST_CASE("tls refusal: a certificate from a foreign CA is refused as untrusted, in both directions") {
  ba::io_context io;
  auto map = loopback({1, 2});
  auto ours = make_peer<tls_transport>(io, 2, map, files("node2"));
  map[2].port = ours->t->local_port();
  // The impostor trusts our CA too, so only our side refuses.
  auto foreign = make_peer<tls_transport>(io, 1, map, files("foreign-node1", {"ca", "foreign-ca"}));
  ours->t->set_peer(1, {"127.0.0.1", foreign->t->local_port()});
  foreign->t->send(numbered(1, 2, 0));
  ours->t->send(numbered(2, 1, 0));
  REQUIRE(run_until(io, [&] {
    return ours->t->stats().refused_for(refusal::untrusted) >= 4 && foreign->t->stats().refused_by_peer >= 2;
  }));
  CHECK(ours->inbox.empty());
  CHECK(foreign->inbox.empty());
  CHECK(ours->t->stats().refused == ours->t->stats().refused_for(refusal::untrusted));
  CHECK(ours->t->stats().connects == 0);
  CHECK(ours->t->stats().accepted == 0);
  CHECK(foreign->t->stats().connects == 0);
  CHECK(foreign->t->stats().accepted == 0);

  // What a foreign-CA client sees: a TLS 1.3 client finishes its half of the handshake
  // before the server has checked its certificate, so the refusal arrives on the read.
  raw_tls_client raw(client_context("foreign-node1"));
  raw.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return raw.done; }));
  MESSAGE("foreign CA client saw: " << raw.saw);
  CHECK(raw.saw.find("unknown ca") != std::string::npos);
}

TEST_CASE("tls refusal: an expired certificate is refused as expired, in both directions") {
  ba::io_context io;
  auto map = loopback({1, 2});
  auto ours = make_peer<tls_transport>(io, 2, map, files("node2"));
  map[2].port = ours->t->local_port();
  auto expired = make_peer<tls_transport>(io, 1, map, files("expired-node1"));
  ours->t->set_peer(1, {"127.0.0.1", expired->t->local_port()});
  expired->t->send(numbered(1, 2, 0));
  ours->t->send(numbered(2, 1, 0));
  REQUIRE(run_until(io, [&] {
    return ours->t->stats().refused_for(refusal::expired) >= 4 && expired->t->stats().refused_by_peer >= 2;
  }));
  CHECK(ours->inbox.empty());
  CHECK(expired->inbox.empty());
  CHECK(ours->t->stats().refused == ours->t->stats().refused_for(refusal::expired));

  raw_tls_client raw(client_context("expired-node1"));
  raw.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return raw.done; }));
  MESSAGE("expired client saw: " << raw.saw);
  CHECK(raw.saw.find("certificate expired") != std::string::npos);
}

TEST_CASE("tls refusal: a valid certificate of another node or another cluster cannot claim node 1") {
  ba::io_context io;
  auto map = loopback({1, 2, 3});
  auto ours = make_peer<tls_transport>(io, 2, map, files("node2"));
  // Node 3's certificate, claiming to be node 1.
  raw_tls_client as_three(client_context("node3"));
  as_three.start(io, ours->t->local_port(), 1, 2);
  // Node 1 of cluster 194, signed by the same CA.
  raw_tls_client other_cluster(client_context("other-cluster-node1"));
  other_cluster.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return as_three.done && other_cluster.done; }));
  MESSAGE("node 3's certificate claiming node 1 saw: " << as_three.saw);
  MESSAGE("cluster 194's node 1 saw: " << other_cluster.saw);
  CHECK(as_three.tls_ok);  // TLS itself passed: the certificate is valid
  // The refusing side closes without a word: the client reads a TCP close where a TLS
  // close_notify should be.
  CHECK(as_three.saw == "read: stream truncated");
  CHECK(other_cluster.saw == "read: stream truncated");
  CHECK(ours->t->stats().refused_for(refusal::wrong_id) == 2);
  CHECK(ours->t->stats().accepted == 0);
  CHECK(ours->inbox.empty());

  // The dialling side: node 2 dials node 1's address, where node 3 answers with its own
  // (valid) certificate.
  auto three = make_peer<tls_transport>(io, 3, map, files("node3"));
  ours->t->set_peer(1, {"127.0.0.1", three->t->local_port()});
  ours->t->send(numbered(2, 1, 0));
  REQUIRE(run_until(io, [&] { return ours->t->stats().refused_for(refusal::wrong_id) >= 4; }));
  CHECK(ours->t->stats().connects == 0);
  CHECK(three->inbox.empty());
  CHECK(three->t->stats().accepted == 0);
}

TEST_CASE("tls refusal: a plaintext peer is refused as plaintext, and a TLS dialler by a plaintext node as unexpected_tls") {
  ba::io_context io;
  auto map = loopback({1, 2});
  auto ours = make_peer<tls_transport>(io, 2, map, files("node2"));
  map[2].port = ours->t->local_port();
  auto plain = make_peer<tcp_transport>(io, 1, map);
  ours->t->set_peer(1, {"127.0.0.1", plain->t->local_port()});
  plain->t->send(numbered(1, 2, 0));
  ours->t->send(numbered(2, 1, 0));
  REQUIRE(run_until(io, [&] {
    return ours->t->stats().refused_for(refusal::plaintext) >= 2 &&
           plain->t->stats().refused_for(refusal::unexpected_tls) >= 2 && ours->t->stats().connect_failures >= 2 &&
           plain->t->stats().connect_failures >= 2;
  }));
  CHECK(ours->inbox.empty());
  CHECK(plain->inbox.empty());
  CHECK(ours->t->stats().connects == 0);
  CHECK(plain->t->stats().connects == 0);
  // What each dialler saw: its connection closed during the handshake, nothing else.
  CHECK(ours->t->stats().refused == ours->t->stats().refused_for(refusal::plaintext));
  CHECK(plain->t->stats().refused == plain->t->stats().refused_for(refusal::unexpected_tls));
  CHECK(ours->t->stats().refused_by_peer == 0);
}

TEST_CASE("tls refusal: no client certificate, and a TLS 1.2 client against the TLS 1.3 default") {
  ba::io_context io;
  auto map = loopback({1, 2});
  auto ours = make_peer<tls_transport>(io, 2, map, files("node2"));
  raw_tls_client anonymous(client_context(""));
  anonymous.start(io, ours->t->local_port(), 1, 2);
  raw_tls_client old(client_context("node1", "ca", raftkit::asio::tls_version::v1_2));
  old.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return anonymous.done && old.done; }));
  MESSAGE("client without a certificate saw: " << anonymous.saw);
  MESSAGE("TLS 1.2 client saw: " << old.saw);
  CHECK(anonymous.saw.find("certificate required") != std::string::npos);
  CHECK(old.saw.find("protocol version") != std::string::npos);
  CHECK(ours->t->stats().refused_for(refusal::no_certificate) == 1);
  CHECK(ours->t->stats().refused_for(refusal::tls_failed) == 1);
  CHECK(ours->t->stats().accepted == 0);
}

TEST_CASE("tls: min_version v1_2 lets a TLS 1.2 peer in") {
  ba::io_context io;
  auto map = loopback({1, 2});
  tls_options o = files("node2");
  o.min_version = raftkit::asio::tls_version::v1_2;
  auto ours = make_peer<tls_transport>(io, 2, map, o);
  raw_tls_client old(client_context("node1", "ca", raftkit::asio::tls_version::v1_2));
  old.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return old.done; }));
  CHECK(old.tls_ok);
  CHECK(old.saw == "read: answered");  // our handshake answer: accepted
  CHECK(ours->t->stats().accepted == 1);
}

/// What holds member 1's place in a cluster test: a transport that is not a good member 1.
struct impostor {
  std::shared_ptr<void> keep;
  std::uint16_t port = 0;
  /// Given the members' addresses, asks each for its vote at term 1000 (when `speaks`):
  /// accepted, it would depose any leader.
  std::function<void(const cluster_map&)> speak;
  bool speaks = false;
};

template <class T>
impostor hold(std::unique_ptr<peer<T>> p, bool speaks) {
  auto shared = std::shared_ptr<peer<T>>(std::move(p));
  impostor i{shared, shared->t->local_port(), [](const cluster_map&) {}, speaks};
  if (speaks)
    i.speak = [t = shared->t.get()](const cluster_map& m) {
      for (node_id to : {2, 3}) {
        t->set_peer(to, m.at(to));
        message vote;
        vote.type = message_type::request_vote;
        vote.from = t->self();
        vote.to = to;
        vote.term = 1000;
        t->send(std::move(vote));
      }
    };
  return i;
}

TEST_CASE("tls refusal: with a bad peer in member 1's place, members 2 and 3 elect, replicate and count it") {
  struct bad_peer {
    const char* name;
    refusal counted;  // by members 2 and 3
    std::function<impostor(ba::io_context&, const cluster_map&)> make;
  };
  const bad_peer cases[] = {
      {"foreign CA", refusal::untrusted,
       [](ba::io_context& io, const cluster_map& m) {
         return hold(make_peer<tls_transport>(io, 1, m, files("foreign-node1", {"ca", "foreign-ca"})), true);
       }},
      {"expired", refusal::expired,
       [](ba::io_context& io, const cluster_map& m) {
         return hold(make_peer<tls_transport>(io, 1, m, files("expired-node1")), true);
       }},
      // Node 4's valid certificate answering at member 1's address. (Claiming node 1 with
      // it when dialling is the raw-client test above: a transport cannot be built so.)
      {"wrong id", refusal::wrong_id,
       [](ba::io_context& io, const cluster_map& m) {
         cluster_map m4 = m;
         m4.erase(1);
         m4[4] = {"127.0.0.1", 0};
         return hold(make_peer<tls_transport>(io, 4, m4, files("node4")), false);
       }},
      {"plaintext", refusal::plaintext,
       [](ba::io_context& io, const cluster_map& m) { return hold(make_peer<tcp_transport>(io, 1, m), true); }},
  };
  for (const auto& bad : cases) {
    SUBCASE(bad.name) {
      tls_cluster c;
      // Member 1's place is bound first, so members 2 and 3 dial the impostor.
      impostor bad_one = bad.make(c.io, c.map);
      c.map[1].port = bad_one.port;
      c.start_node(2, files("node2"));
      c.start_node(3, files("node3"));
      bad_one.speak(c.map);
      c.run();
      const auto index = c.replicate(5);
      c.wait_applied(index);
      // The leader dials member 1 (to replicate); a speaking impostor dials both members.
      const std::size_t leader = c.wait_leader();
      CHECK(c.eventually([&] {
        return refused_for(*c.nodes[leader], bad.counted) >= 2 &&
               (!bad_one.speaks || refused_for(*c.nodes[3 - leader], bad.counted) >= 2);
      }));
      CHECK(c.replicate(7) > index);  // still working
      for (std::size_t i : {1u, 2u}) {
        const auto s = c.nodes[i]->transport().stats();
        MESSAGE(std::string(bad.name) << ": member " << i + 1 << " refused " << s.refused << ", " << to_string(bad.counted) << " "
                         << s.refused_for(bad.counted));
        CHECK(s.refused == s.refused_for(bad.counted));
        CHECK(c.status(i).term < 1000);  // the impostor's vote request never arrived
      }
      // The impostor runs on the cluster's io_context: stop its thread before freeing it.
      for (auto& n : c.nodes) n.reset();
      c.work.reset();
      c.io.stop();
      c.runner.join();
      bad_one.keep.reset();
    }
  }
}

TEST_CASE("tls: a bad reload throws and keeps the material in force") {
  ba::io_context io;
  auto map = loopback({1, 2});
  auto ours = make_peer<tls_transport>(io, 2, map, files("node2"));
  const std::string in_force = files("node2").certificate_chain.file;
  CHECK_THROWS_AS(ours->t->reload(files("node1")), raftkit::asio::tls_error);  // names node 1
  CHECK(ours->t->options().certificate_chain.file == in_force);
  tls_options broken = files("node2");
  broken.private_key = pem_source::from_memory("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  CHECK_THROWS_AS(ours->t->reload(broken), raftkit::asio::tls_error);
  CHECK(ours->t->options().private_key.file == files("node2").private_key.file);
  raw_tls_client one(client_context("node1"));
  one.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return one.done; }));
  CHECK(one.saw == "read: answered");
}

TEST_CASE("tls: reload() re-reads the files; new connections use the new material, established ones carry on") {
  ba::io_context io;
  temp_dir dir("reload");
  auto copy = [&](const std::string& from, const std::string& to) { write_file(dir.path / to, slurp(certs() / from)); };
  copy("node2.pem", "cert.pem");
  copy("node2.key", "key.pem");
  copy("ca.pem", "trust.pem");
  tls_options o;
  o.certificate_chain = pem_source::from_file((dir.path / "cert.pem").string());
  o.private_key = pem_source::from_file((dir.path / "key.pem").string());
  o.trusted_ca = pem_source::from_file((dir.path / "trust.pem").string());
  auto map = loopback({1, 2});
  auto ours = make_peer<tls_transport>(io, 2, map, o);
  map[2].port = ours->t->local_port();
  auto one = make_peer<tls_transport>(io, 1, map, files("node1", {"ca", "next-ca"}));
  one->t->send(numbered(1, 2, 0));
  REQUIRE(run_until(io, [&] { return ours->inbox.size() == 1; }));

  // New files: node 2's certificate from the next CA, trusting only the next CA.
  copy("next-node2.pem", "cert.pem");
  copy("next-node2.key", "key.pem");
  copy("next-ca.pem", "trust.pem");
  ours->t->reload();
  // The established connection from node 1 (made with the old CA) carries on.
  one->t->send(numbered(1, 2, 1));
  REQUIRE(run_until(io, [&] { return ours->inbox.size() == 2; }));
  CHECK(ours->t->stats().accepted == 1);
  // A new client with the old CA's certificate is refused; one with the new CA's is
  // accepted, and it verified our new certificate against the next CA alone.
  raw_tls_client old_cert(client_context("node1", "ca"));
  old_cert.start(io, ours->t->local_port(), 1, 2);
  raw_tls_client new_cert(client_context("next-node1", "next-ca"));
  new_cert.start(io, ours->t->local_port(), 1, 2);
  REQUIRE(run_until(io, [&] { return old_cert.done && new_cert.done; }));
  MESSAGE("old certificate after the reload saw: " << old_cert.saw);
  CHECK(old_cert.saw.find("certificate verify failed") != std::string::npos);  // our new certificate is not from its CA
  CHECK(new_cert.saw == "read: answered");
  CHECK(ours->t->stats().accepted == 2);
}

TEST_CASE("tls: rotating a running cluster to a new CA keeps it up, and a node restarted on the new CA alone rejoins") {
  tls_cluster c;
  temp_dir dir("rotate");
  auto path = [&](node_id id, const char* what) { return (dir.path / (std::to_string(id) + what)).string(); };
  auto put = [&](node_id id, const std::string& cert, std::vector<std::string> cas) {
    write_file(path(id, ".pem"), slurp(certs() / (cert + ".pem")));
    write_file(path(id, ".key"), slurp(certs() / (cert + ".key")));
    std::string bundle;
    for (const auto& ca : cas) bundle += slurp(certs() / (ca + ".pem"));
    write_file(path(id, "-ca.pem"), bundle);
  };
  auto opts = [&](node_id id) {
    tls_options o;
    o.certificate_chain = pem_source::from_file(path(id, ".pem"));
    o.private_key = pem_source::from_file(path(id, ".key"));
    o.trusted_ca = pem_source::from_file(path(id, "-ca.pem"));
    return o;
  };
  for (node_id id = 1; id <= 3; ++id) {
    put(id, "node" + std::to_string(id), {"ca"});
    c.start_node(id, opts(id));
  }
  c.run();
  std::int64_t v = 0;
  c.wait_applied(c.replicate(++v));
  // Step 1: every node trusts both CAs. Step 2: every node presents its new certificate.
  // Step 3: every node trusts only the new CA. The cluster commits after each reload.
  const std::vector<std::vector<std::string>> steps = {{"ca", "next-ca"}, {"ca", "next-ca"}, {"next-ca"}};
  for (std::size_t step = 0; step < steps.size(); ++step) {
    for (node_id id = 1; id <= 3; ++id) {
      put(id, (step == 0 ? "node" : "next-node") + std::to_string(id), steps[step]);
      c.nodes[id - 1]->transport().reload();
      c.wait_applied(c.replicate(++v));
    }
  }
  for (std::size_t i = 0; i < 3; ++i) CHECK(c.nodes[i]->transport().stats().refused == 0);
  // Node 3 restarts with the new material only: nodes 1 and 2 must dial it and accept it
  // with their reloaded material, or it never catches up.
  const auto before = c.nodes[0]->transport().stats().connects + c.nodes[1]->transport().stats().connects;
  auto stopped = c.nodes[2]->stop(ba::use_future);
  REQUIRE(stopped.wait_for(10s) == std::future_status::ready);
  c.nodes[2].reset();
  c.map[3].port = 0;
  // On a new port, which start_node tells the others; the old store lets go of its
  // directory once the old node's last queued work has run.
  REQUIRE(c.eventually([&] {
    try {
      c.start_node(3, opts(3));
      return true;
    } catch (const std::system_error& e) {
      if (e.code() != raftkit::errc::locked) throw;
      return false;
    }
  }));
  const auto last = c.replicate(++v);
  c.wait_applied(last);
  CHECK(c.nodes[0]->transport().stats().connects + c.nodes[1]->transport().stats().connects > before);
  for (std::size_t i = 0; i < 3; ++i) CHECK(c.nodes[i]->transport().stats().refused == 0);
}

}  // TEST_SUITE("tls")
