#include "tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "podium/common/log.h"
#include "podium/common/strings.h"
#include "routes.h"

namespace podium::proxy {

namespace {

using json::at;

std::string opensslError() {
  unsigned long e = ERR_get_error();
  if (!e) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// HTTP/2 when the client offers it (gRPC does), else HTTP/1.1.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outLen, const unsigned char* in,
               unsigned int inLen, void*) {
  static const unsigned char kProtocols[] = {2,   'h', '2', 8,   'h', 't',
                                             't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outLen, kProtocols, sizeof kProtocols, in, inLen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* baseContext() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, nullptr);
  return ctx;
}

// A context serving the PEM certificate chain and key, or nullptr with `error` set.
std::shared_ptr<SSL_CTX> certContext(const std::string& certPem, const std::string& keyPem,
                                     std::string* error) {
  std::shared_ptr<SSL_CTX> ctx(baseContext(), SSL_CTX_free);
  if (!ctx) return *error = opensslError(), nullptr;
  BIO* bio = BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size()));
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  if (!leaf) {
    BIO_free(bio);
    *error = "tls.crt holds no PEM certificate";
    return nullptr;
  }
  SSL_CTX_use_certificate(ctx.get(), leaf);
  X509_free(leaf);
  while (X509* chain = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr))
    SSL_CTX_add0_chain_cert(ctx.get(), chain);
  ERR_clear_error();  // the end of the PEM stream
  BIO_free(bio);
  bio = BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return *error = "tls.key holds no PEM private key", nullptr;
  SSL_CTX_use_PrivateKey(ctx.get(), key);
  EVP_PKEY_free(key);
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return *error = "the private key does not match the certificate", ERR_clear_error(), nullptr;
  return ctx;
}

struct FrontArg {
  CertsSource source;
  void* arg;
};

int onServerName(SSL* ssl, int*, void* p) {
  auto* front = static_cast<FrontArg*>(p);
  auto certs = front->source(front->arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  SSL_CTX* ctx = certs ? certs->forHost(name ? strings::toLower(name) : "") : nullptr;
  if (!ctx) return SSL_TLSEXT_ERR_ALERT_FATAL;  // no certificate at all
  SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

void TlsCerts::add(const std::vector<std::string>& hosts, const std::string& ns,
                   const std::string& secret, const Json& snapshot, const std::string& usedBy) {
  const Json* found = nullptr;
  for (const std::string& where : {ns, std::string("istio-system")})
    for (const auto& s : at(snapshot, {"secrets"}))
      if (!found && json::getString(s, {"metadata", "name"}) == secret &&
          json::getString(s, {"metadata", "namespace"}) == where)
        found = &s;
  if (!found) {
    PODIUM_LOG(Warn) << "proxy: " << usedBy << " names TLS secret " << ns << "/" << secret
                     << ", which does not exist";
    return;
  }
  auto field = [&](std::initializer_list<const char*> keys) -> std::string {
    for (const char* k : keys)
      if (const Json& v = at(*found, {"data", k}); v.is_string())
        if (auto d = strings::base64Decode(v.get<std::string>())) return *d;
    return "";
  };
  std::string error;
  auto ctx = certContext(field({"tls.crt", "cert"}), field({"tls.key", "key"}), &error);
  if (!ctx) {
    PODIUM_LOG(Warn) << "proxy: TLS secret " << ns << "/" << secret << " (" << usedBy
                     << "): " << error;
    return;
  }
  certs_.push_back({hosts, std::move(ctx)});
}

void TlsCerts::build(const Json& snapshot) {
  for (const auto& gw : at(snapshot, {"gateways"})) {
    std::string ns = json::getString(gw, {"metadata", "namespace"});
    for (const auto& s : at(gw, {"spec", "servers"})) {
      std::string mode = json::getString(s, {"tls", "mode"});
      std::string credential = json::getString(s, {"tls", "credentialName"});
      if (credential.empty() || (!mode.empty() && mode != "SIMPLE")) continue;
      std::vector<std::string> hosts;
      for (const auto& h : at(s, {"hosts"})) {
        if (!h.is_string()) continue;
        std::string host = strings::toLower(h.get<std::string>());
        if (auto slash = host.find('/'); slash != std::string::npos) host = host.substr(slash + 1);
        hosts.push_back(host);
      }
      add(hosts, ns, credential, snapshot,
          "Gateway " + ns + "/" + json::getString(gw, {"metadata", "name"}));
    }
  }
  for (const auto& ing : at(snapshot, {"ingresses"})) {
    std::string ns = json::getString(ing, {"metadata", "namespace"});
    for (const auto& t : at(ing, {"spec", "tls"})) {
      std::string secret = json::str(t, "secretName");
      if (secret.empty()) continue;
      std::vector<std::string> hosts;
      for (const auto& h : at(t, {"hosts"}))
        if (h.is_string()) hosts.push_back(strings::toLower(h.get<std::string>()));
      add(hosts, ns, secret, snapshot,
          "Ingress " + ns + "/" + json::getString(ing, {"metadata", "name"}));
    }
  }
}

SSL_CTX* TlsCerts::forHost(const std::string& serverName) const {
  SSL_CTX* best = certs_.empty() ? nullptr : certs_.front().ctx.get();
  int bestScore = -1;
  for (const auto& c : certs_) {
    if (c.hosts.empty() && bestScore < 0) best = c.ctx.get(), bestScore = 0;
    for (const auto& h : c.hosts)
      if (int score = hostSpecificity(h, serverName); score > bestScore)
        best = c.ctx.get(), bestScore = score;
  }
  return best;
}

SSL_CTX* newFrontContext(CertsSource source, void* arg) {
  SSL_CTX* ctx = baseContext();
  if (!ctx) return nullptr;
  // Lives as long as the context (one per worker, for the process's life).
  auto* front = new FrontArg{source, arg};
  SSL_CTX_set_tlsext_servername_callback(ctx, onServerName);
  SSL_CTX_set_tlsext_servername_arg(ctx, front);
  return ctx;
}

ssize_t sslIoResult(SSL* ssl, int r) {
  if (r > 0) return r;
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;  // close_notify
    default:
      ERR_clear_error();
      errno = ECONNRESET;
      return -1;
  }
}

}  // namespace podium::proxy
