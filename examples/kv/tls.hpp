#pragma once
// raftkit-kv's TLS: the peer port's mutual TLS options from the command line, and HTTPS
// for the client API (server authentication only: any client may connect, as over HTTP).
// Both reload their files on a call (main.cpp calls it on SIGHUP); connections made
// afterwards use the new material, open ones keep theirs.

#include <boost/asio/ssl.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "raftkit/asio/tls_transport.hpp"
#include "startup.hpp"

namespace kv {

/// The peer TLS files given on the command line; all three or none (else startup_error).
struct peer_tls_files {
  std::string cert, key, ca;
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }

  raftkit::asio::tls_options options() const {
    if (cert.empty() || key.empty() || ca.empty())
      throw startup_error(exit_usage, "--peer-tls-cert, --peer-tls-key and --peer-tls-ca go together");
    raftkit::asio::tls_options o;
    o.certificate_chain = raftkit::asio::pem_source::from_file(cert);
    o.private_key = raftkit::asio::pem_source::from_file(key);
    o.trusted_ca = raftkit::asio::pem_source::from_file(ca);
    return o;
  }
};

/// A client connection over HTTPS. A type of our own so that serve_connection finds the
/// deadline functions below by argument-dependent lookup.
class https_stream : public boost::beast::ssl_stream<boost::beast::tcp_stream> {
 public:
  https_stream(boost::asio::ip::tcp::socket s, std::shared_ptr<boost::asio::ssl::context> ctx)
      : ssl_stream(boost::beast::tcp_stream(std::move(s)), *ctx), ctx_(std::move(ctx)) {}

 private:
  std::shared_ptr<boost::asio::ssl::context> ctx_;  ///< the material this connection was made with
};

inline void set_deadline(https_stream& s, std::chrono::milliseconds d) {
  boost::beast::get_lowest_layer(s).expires_after(d);
}
inline void clear_deadline(https_stream& s) { boost::beast::get_lowest_layer(s).expires_never(); }
/// Ends our direction at the TCP level, without a TLS close_notify (sending one waits on
/// the peer's): a client reading by Content-Length, as HTTP/1.1 ones do, has its response.
inline void shutdown_send(https_stream& s) {
  boost::system::error_code ignored;
  boost::beast::get_lowest_layer(s).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
}

/// The HTTPS server's certificate and key, reloadable; TLS 1.2 or later (HTTP clients and
/// tools vary more than our peers do).
class https_context {
 public:
  /// Throws startup_error(exit_usage) if the files are unusable.
  https_context(std::string cert, std::string key) : cert_(std::move(cert)), key_(std::move(key)) {
    try {
      current_ = build();
    } catch (const raftkit::asio::tls_error& e) {
      throw startup_error(exit_usage, e.what());
    }
  }

  /// The material for a new connection.
  std::shared_ptr<boost::asio::ssl::context> current() const {
    std::lock_guard lock(mutex_);
    return current_;
  }

  /// Re-reads the files; throws raftkit::asio::tls_error, changing nothing, if they are bad.
  void reload() {
    auto next = build();
    std::lock_guard lock(mutex_);
    current_ = std::move(next);
  }

 private:
  std::shared_ptr<boost::asio::ssl::context> build() const {
    namespace ssl = boost::asio::ssl;
    auto c = std::make_shared<ssl::context>(ssl::context::tls_server);
    boost::system::error_code ec;
    auto check = [&](const char* what) {
      if (ec) throw raftkit::asio::tls_error("HTTPS " + std::string(what) + ": " + ec.message());
    };
    c->set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
    check("options");
    if (SSL_CTX_set_min_proto_version(c->native_handle(), TLS1_2_VERSION) != 1)
      throw raftkit::asio::tls_error("HTTPS: cannot set the minimum protocol version");
    c->use_certificate_chain_file(cert_, ec);
    check(("certificate " + cert_).c_str());
    c->use_private_key_file(key_, ssl::context::pem, ec);
    check(("private key " + key_).c_str());
    if (SSL_CTX_check_private_key(c->native_handle()) != 1)
      throw raftkit::asio::tls_error("HTTPS private key " + key_ + " does not match the certificate " + cert_);
    return c;
  }

  const std::string cert_, key_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> current_;
};

}  // namespace kv
