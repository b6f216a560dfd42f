#pragma once
/// \file raftkit::asio::tls_transport: tcp_transport with mutual TLS (OpenSSL through
/// boost::asio::ssl). Including this header is what links OpenSSL (`-lssl -lcrypto`);
/// tcp_transport.hpp alone does not.
///
/// Both ends of every connection present a certificate and verify the other's against
/// the trusted CA certificates; TLS 1.3 only, unless `tls_options::min_version` allows 1.2.
/// Only then does raftkit's own handshake run, inside TLS, as over plain TCP.
///
/// Identity. A node's certificate names it with a URI subject alternative name
///
///     raftkit://cluster/<cluster id>/node/<node id>        (both in decimal; see tls_identity)
///
/// A dialling node accepts the peer only if its certificate names the node it dialled; an
/// accepting node accepts a peer only if its certificate names the node id that peer claims
/// in raftkit's handshake. So a node holding a valid certificate still cannot speak as
/// another id, nor as a node of another cluster that trusts the same CA. A certificate may
/// carry other names (a DNS name for operators' tools): only this URI is read. The
/// transport refuses to start, or to reload, with a certificate that does not name itself.
///
/// Refusals are counted in `stats().refusals` by reason: `untrusted` (a foreign CA, a
/// self-signed certificate), `expired` (or not yet valid), `no_certificate`, `wrong_id`,
/// `plaintext` (the peer opened without TLS), `tls_failed` (anything else, such as no
/// common protocol version), besides raftkit's own `foreign_cluster`, `unknown_node` and
/// `wrong_node`. The side that was refused sees the connection fail (a TLS alert such as
/// "unknown ca" or "certificate expired", or a close) and counts `refused_by_peer` when it
/// got an alert.
///
/// Rotation. `reload(options)` (or `reload()`, which re-reads the files of the options in
/// force) builds new TLS material and swaps it in; connections made afterwards, in either
/// direction, use it; established connections keep the material they were made with and
/// carry on. Bad material throws tls_error and leaves the old material in force. To move a
/// cluster to a new CA without a refused connection: reload every node to trust both CAs,
/// then to its certificate from the new CA, then (optionally) to trust only the new CA.
/// Call reload from any thread; a process that wants it on a signal wires a signal_set to
/// it. Sessions are not resumed (no tickets, no cache), so each connection verifies afresh.
///
/// With the Asio driver: `raftkit::asio::node<Store, Machine, tls_transport>(cfg,
/// tls_factory(ex, cfg, cluster_id, peers, tls), store, machine)`; `node.transport().reload()`.
///
/// Why a policy of basic_tcp_transport and not an option of tcp_transport: an option would
/// put OpenSSL types (or a virtual stream interface costing every plaintext write) into
/// tcp_transport.hpp, so every user would compile and link OpenSSL. As a policy, the
/// connection code (lanes, backoff, timeouts, handshake) is shared, plaintext pays nothing,
/// and OpenSSL appears only in this header.

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "raftkit/asio/tcp_transport.hpp"
#include "raftkit/config.hpp"

namespace raftkit::asio {

/// PEM text: read from a file (at construction and at each reload) or given in memory.
struct pem_source {
  std::string file;  ///< a path; when empty, `text` is the PEM
  std::string text;

  static pem_source from_file(std::string path) { return {std::move(path), {}}; }
  static pem_source from_memory(std::string pem) { return {{}, std::move(pem)}; }
};

/// The oldest TLS version a tls_transport speaks.
enum class tls_version : std::uint8_t { v1_2, v1_3 };

/// What a tls_transport presents and trusts.
struct tls_options {
  pem_source certificate_chain;  ///< this node's certificate first, then any intermediate CAs
  pem_source private_key;        ///< its private key (PEM, not encrypted)
  pem_source trusted_ca;         ///< the CA certificates a peer's must chain to (several while rotating)
  tls_version min_version = tls_version::v1_3;
};

/// Bad TLS material (unreadable, malformed, a key that does not match, a certificate that
/// does not name this node): thrown at construction and by reload, which then changes nothing.
class tls_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The URI subject alternative name that identifies node `id` of cluster `cluster_id` in
/// a certificate: "raftkit://cluster/<cluster_id>/node/<id>", in decimal.
inline std::string tls_identity(std::uint64_t cluster_id, node_id id) {
  return "raftkit://cluster/" + std::to_string(cluster_id) + "/node/" + std::to_string(id);
}

namespace detail {

/// Whether `cert` carries the URI subject alternative name `uri`.
inline bool certificate_names(const X509* cert, std::string_view uri) {
  if (!cert) return false;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return false;
  bool found = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && !found; ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_URI) continue;
    const ASN1_STRING* s = n->d.uniformResourceIdentifier;
    const auto* data = reinterpret_cast<const char*>(ASN1_STRING_get0_data(s));
    found = std::string_view(data, static_cast<std::size_t>(ASN1_STRING_length(s))) == uri;
  }
  GENERAL_NAMES_free(names);
  return found;
}

/// One generation of TLS material: an OpenSSL context serving both roles.
struct tls_material {
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls};
};

inline std::string read_pem(const pem_source& p, const char* what) {
  if (p.file.empty()) {
    if (p.text.empty()) throw tls_error(std::string("raftkit: no TLS ") + what + " given");
    return p.text;
  }
  std::ifstream in(p.file, std::ios::binary);
  std::string text(std::istreambuf_iterator<char>(in), {});
  if (!in && !in.eof()) throw tls_error(std::string("raftkit: cannot read the TLS ") + what + " file " + p.file);
  if (text.empty()) throw tls_error(std::string("raftkit: the TLS ") + what + " file " + p.file + " is empty or missing");
  return text;
}

/// Builds and checks the material for node `self` of `cluster`; throws tls_error.
inline std::shared_ptr<tls_material> make_tls_material(const tls_options& o, std::uint64_t cluster, node_id self) {
  namespace ssl = boost::asio::ssl;
  const std::string chain = read_pem(o.certificate_chain, "certificate chain");
  const std::string key = read_pem(o.private_key, "private key");
  const std::string ca = read_pem(o.trusted_ca, "trusted CA");
  auto m = std::make_shared<tls_material>();
  SSL_CTX* h = m->ctx.native_handle();
  auto check = [](const boost::system::error_code& ec, const char* what) {
    if (ec) throw tls_error(std::string("raftkit: TLS ") + what + ": " + ec.message());
  };
  boost::system::error_code ec;
  m->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
  check(ec, "options");
  if (SSL_CTX_set_min_proto_version(h, o.min_version == tls_version::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1)
    throw tls_error("raftkit: TLS: cannot set the minimum protocol version");
  // No resumption: every connection is verified against the material in force.
  SSL_CTX_set_session_cache_mode(h, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(h, 0);
  SSL_CTX_set_options(h, SSL_OP_NO_TICKET);
  m->ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  check(ec, "verify mode");
  m->ctx.use_certificate_chain(boost::asio::buffer(chain), ec);
  check(ec, "certificate chain");
  m->ctx.use_private_key(boost::asio::buffer(key), ssl::context::pem, ec);
  check(ec, "private key");
  if (SSL_CTX_check_private_key(h) != 1) throw tls_error("raftkit: TLS private key does not match the certificate");
  m->ctx.add_certificate_authority(boost::asio::buffer(ca), ec);
  check(ec, "trusted CA");
  const std::string me = tls_identity(cluster, self);
  if (!certificate_names(SSL_CTX_get0_certificate(h), me))
    throw tls_error("raftkit: this node's TLS certificate does not name " + me);
  return m;
}

/// A connection's TLS stream; it keeps the material it was made with alive, so a reload
/// does not disturb it.
class tls_stream : public boost::asio::ssl::stream<boost::asio::ip::tcp::socket> {
 public:
  tls_stream(boost::asio::ip::tcp::socket s, std::shared_ptr<tls_material> m)
      : stream(std::move(s), m->ctx), material_(std::move(m)) {
    // Asio asks OpenSSL to free its record buffers whenever idle; a busy peer link would
    // then allocate them again for every record.
    SSL_clear_mode(native_handle(), SSL_MODE_RELEASE_BUFFERS);
  }
  std::array<std::byte, 1> peek{};  ///< the first byte an accepted peer sends, looked at before TLS

 private:
  std::shared_ptr<tls_material> material_;
};

/// The refusal an X509 verification error stands for.
inline refusal refusal_of_verify_error(long v) noexcept {
  return v == X509_V_ERR_CERT_HAS_EXPIRED || v == X509_V_ERR_CERT_NOT_YET_VALID ? refusal::expired : refusal::untrusted;
}

/// Whether `ec` is OpenSSL reporting an alert the peer sent (its reason codes for received
/// alerts are SSL_AD_REASON_OFFSET plus the alert number).
inline bool is_peer_alert(const boost::system::error_code& ec) noexcept {
  if (ec.category() != boost::asio::error::get_ssl_category()) return false;
  const int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
  return reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256;
}

/// The Security policy of tls_transport (see detail::plain_security for the interface).
class tls_security {
 public:
  using stream_type = tls_stream;
  static constexpr bool contiguous_writes = true;

  tls_security(tls_options o, std::uint64_t cluster, node_id self) : state_(std::make_unique<state>()) {
    state_->cluster = cluster;
    state_->self = self;
    state_->material = make_tls_material(o, cluster, self);
    state_->options = std::move(o);
  }

  stream_type make_stream(boost::asio::ip::tcp::socket s) { return tls_stream(std::move(s), current()); }

  /// Client: TLS handshake, then the server's certificate must name `expected`. Server:
  /// the first byte must open a TLS handshake record (else the peer speaks plaintext),
  /// then the TLS handshake.
  template <class Handler>
  void async_handshake(stream_type& s, bool client, node_id expected, Handler&& handler) {
    const std::uint64_t cluster = state_->cluster;
    if (client) {
      s.async_handshake(boost::asio::ssl::stream_base::client,
                        [&s, cluster, expected, h = std::forward<Handler>(handler)](const boost::system::error_code& ec) mutable {
                          handshake_verdict v = judge(s, ec);
                          if (v.what == handshake_verdict::outcome::ok &&
                              !certificate_names(SSL_get0_peer_certificate(s.native_handle()), tls_identity(cluster, expected)))
                            v = {handshake_verdict::outcome::refused, refusal::wrong_id};
                          h(v);
                        });
      return;
    }
    s.next_layer().async_receive(
        boost::asio::buffer(s.peek), boost::asio::socket_base::message_peek,
        [&s, h = std::forward<Handler>(handler)](const boost::system::error_code& ec, std::size_t n) mutable {
          if (ec || n == 0) return h(handshake_verdict{handshake_verdict::outcome::failed, {}});
          if (s.peek[0] != std::byte{0x16}) return h(handshake_verdict{handshake_verdict::outcome::refused, refusal::plaintext});
          s.async_handshake(boost::asio::ssl::stream_base::server,
                            [&s, h = std::move(h)](const boost::system::error_code& e) mutable { h(judge(s, e)); });
        });
  }

  /// The peer's certificate (verified in the handshake) must name the id it claims.
  std::optional<refusal> authorize(stream_type& s, node_id claimed) const {
    if (certificate_names(SSL_get0_peer_certificate(s.native_handle()), tls_identity(state_->cluster, claimed)))
      return std::nullopt;
    return refusal::wrong_id;
  }

  handshake_verdict classify(const boost::system::error_code& ec) const noexcept {
    return {is_peer_alert(ec) ? handshake_verdict::outcome::refused_by_peer : handshake_verdict::outcome::failed, {}};
  }

  /// Swaps in material built from `o`; throws tls_error (changing nothing) if it is bad.
  void reload(tls_options o) {
    auto m = make_tls_material(o, state_->cluster, state_->self);
    std::lock_guard lock(state_->mutex);
    state_->material = std::move(m);
    state_->options = std::move(o);
  }

  /// Rebuilds the material from the options in force (re-reading their files).
  void reload() { reload(options()); }

  tls_options options() const {
    std::lock_guard lock(state_->mutex);
    return state_->options;
  }

 private:
  struct state {
    mutable std::mutex mutex;  // guards material and options: reload runs on any thread
    std::shared_ptr<tls_material> material;
    tls_options options;
    std::uint64_t cluster = 0;
    node_id self = no_node;
  };

  std::shared_ptr<tls_material> current() const {
    std::lock_guard lock(state_->mutex);
    return state_->material;
  }

  /// What a finished (or failed) TLS handshake says about the peer.
  static handshake_verdict judge(stream_type& s, const boost::system::error_code& ec) {
    using o = handshake_verdict::outcome;
    if (!ec) return {};
    const long v = SSL_get_verify_result(s.native_handle());
    if (v != X509_V_OK) return {o::refused, refusal_of_verify_error(v)};
    if (ec.category() != boost::asio::error::get_ssl_category()) return {o::failed, {}};
    if (is_peer_alert(ec)) return {o::refused_by_peer, {}};
    if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
      return {o::refused, refusal::no_certificate};
    return {o::refused, refusal::tls_failed};
  }

  std::unique_ptr<state> state_;
};

}  // namespace detail

/// Raft messages over TCP with mutual TLS. See the file comment.
class tls_transport : public basic_tcp_transport<detail::tls_security> {
 public:
  /// As tcp_transport's constructor, with the TLS material; throws tls_error if it is
  /// bad (before binding).
  tls_transport(boost::asio::any_io_executor ex, node_id self, std::uint64_t cluster_id, cluster_map peers,
                receive_handler on_receive, tls_options tls, tcp_options options = {})
      : basic_tcp_transport(std::move(ex), self, cluster_id, std::move(peers), std::move(on_receive), options,
                            detail::tls_security(std::move(tls), cluster_id, self)) {}

  /// New connections use the material of `tls` from now on; established ones keep theirs.
  /// Throws tls_error, changing nothing, if it is bad. Any thread.
  void reload(tls_options tls) { security().reload(std::move(tls)); }
  /// Re-reads the files of the options in force (see reload(tls_options)).
  void reload() { security().reload(); }
  /// The options in force.
  tls_options options() const { return security().options(); }
};

/// A factory for `raftkit::asio::node<LogStore, StateMachine, tls_transport>`: builds node
/// `cfg.id`'s transport with `tls`, its options fitted to the election timeout as the
/// driver fits tcp_transport's (see fit_to_election_timeout).
inline auto tls_factory(boost::asio::any_io_executor ex, const node_config& cfg, std::uint64_t cluster_id,
                        cluster_map peers, tls_options tls, tcp_options options = {}) {
  options = fit_to_election_timeout(options, cfg.election_timeout);
  return [ex = std::move(ex), self = cfg.id, cluster_id, peers = std::move(peers), tls = std::move(tls),
          options](tls_transport::receive_handler on_receive) {
    return tls_transport(ex, self, cluster_id, peers, std::move(on_receive), tls, options);
  };
}

}  // namespace raftkit::asio

static_assert(raftkit::transport<raftkit::asio::tls_transport>);
static_assert(raftkit::async_transport<raftkit::asio::tls_transport>);
static_assert(raftkit::transport_with_limits<raftkit::asio::tls_transport>);
static_assert(raftkit::transport_with_backlog<raftkit::asio::tls_transport>);
