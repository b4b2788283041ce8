#include "bootstrap.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <filesystem>
#include <memory>

#include "podium/api/tls.h"
#include "podium/common/json.h"
#include "podium/common/strings.h"

namespace podium::api::bootstrap {

namespace {

constexpr int kIterations = 100000;
constexpr size_t kSaltSize = 16, kNonceSize = 12, kTagSize = 16, kKeySize = 32;

// This server's own (its names are its own), and the secret itself.
bool isShared(const std::string& rel) {
  return rel != "server.crt" && rel != "server.key" && rel != kSecretFile;
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

Expected<std::string, std::string> deriveKey(const std::string& secret, const std::string& salt) {
  std::string key(kKeySize, '\0');
  if (PKCS5_PBKDF2_HMAC(secret.data(), static_cast<int>(secret.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), kIterations, EVP_sha256(),
                        static_cast<int>(key.size()),
                        reinterpret_cast<unsigned char*>(key.data())) != 1)
    return Unexpected(std::string("PBKDF2 failed"));
  return key;
}

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// AES-256-GCM one way or the other; `tag` is written when sealing and checked when opening.
Expected<std::string, std::string> gcm(bool encrypt, const std::string& key,
                                       const std::string& nonce, const std::string& in,
                                       std::string* tag) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  auto k = reinterpret_cast<const unsigned char*>(key.data());
  auto iv = reinterpret_cast<const unsigned char*>(nonce.data());
  if (!ctx || EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k, iv, encrypt ? 1 : 0) != 1)
    return Unexpected(std::string("AES-256-GCM unavailable"));
  std::string out(in.size(), '\0');
  int n = 0, tail = 0;
  if (EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                       reinterpret_cast<const unsigned char*>(in.data()),
                       static_cast<int>(in.size())) != 1)
    return Unexpected(std::string("AES-256-GCM failed"));
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG,
                                      static_cast<int>(tag->size()), tag->data()) != 1)
    return Unexpected(std::string("AES-256-GCM tag"));
  if (EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &tail) != 1)
    return Unexpected(std::string(
        "the cluster credentials in the datastore do not open with this bootstrap secret (a "
        "wrong secret, or altered data)"));
  if (encrypt) {
    tag->assign(kTagSize, '\0');
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, tag->data()) != 1)
      return Unexpected(std::string("AES-256-GCM tag"));
  }
  out.resize(static_cast<size_t>(n + tail));
  return out;
}

}  // namespace

Expected<Files, std::string> readShared(const std::string& tlsDir) {
  namespace fs = std::filesystem;
  Files files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(tlsDir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string rel = fs::relative(it->path(), tlsDir).string();
    if (!isShared(rel) || rel.ends_with(".tmp")) continue;
    auto data = tls::readFile(it->path().string());
    if (!data) return Unexpected(data.error());
    files[rel] = *data;
  }
  if (ec) return Unexpected("read " + tlsDir + ": " + ec.message());
  return files;
}

Expected<std::string, std::string> seal(const Files& files, const std::string& secret) {
  Json plain = Json::object();
  for (const auto& [rel, data] : files) plain[rel] = strings::base64Encode(data);
  std::string salt = randomBytes(kSaltSize), nonce = randomBytes(kNonceSize);
  auto key = deriveKey(secret, salt);
  if (!key) return Unexpected(key.error());
  std::string tag;
  auto sealed = gcm(true, *key, nonce, json::dump(plain), &tag);
  if (!sealed) return Unexpected(sealed.error());
  return json::dump({{"version", 1},
                     {"kdf", "pbkdf2-sha256"},
                     {"iterations", kIterations},
                     {"cipher", "aes-256-gcm"},
                     {"salt", strings::base64Encode(salt)},
                     {"nonce", strings::base64Encode(nonce)},
                     {"data", strings::base64Encode(*sealed + tag)}});
}

Expected<Files, std::string> open(const std::string& sealed, const std::string& secret) {
  auto doc = json::parse(sealed);
  if (!doc || !doc->value.is_object() || json::integer(doc->value, "version") != 1)
    return Unexpected(std::string("the cluster credentials in the datastore are not readable"));
  auto salt = strings::base64Decode(json::str(doc->value, "salt"));
  auto nonce = strings::base64Decode(json::str(doc->value, "nonce"));
  auto data = strings::base64Decode(json::str(doc->value, "data"));
  if (!salt || !nonce || nonce->size() != kNonceSize || !data || data->size() < kTagSize)
    return Unexpected(std::string("the cluster credentials in the datastore are damaged"));
  auto key = deriveKey(secret, *salt);
  if (!key) return Unexpected(key.error());
  std::string tag = data->substr(data->size() - kTagSize);
  auto plain = gcm(false, *key, *nonce, data->substr(0, data->size() - kTagSize), &tag);
  if (!plain) return Unexpected(plain.error());
  auto files = json::parse(*plain);
  if (!files || !files->value.is_object())
    return Unexpected(std::string("the cluster credentials in the datastore are damaged"));
  Files out;
  for (const auto& [rel, b64] : files->value.items()) {
    auto content = b64.is_string() ? strings::base64Decode(b64.get<std::string>()) : std::nullopt;
    if (!content || rel.empty() || rel.find("..") != std::string::npos || rel[0] == '/')
      return Unexpected("the cluster credentials in the datastore are damaged (" + rel + ")");
    out[rel] = *content;
  }
  return out;
}

Expected<void, std::string> restore(store::Store& store, const std::string& tlsDir,
                                    const std::string& secret) {
  auto kv = store.get(kKey);
  if (!kv) {
    if (kv.error().code == store::Errc::NotFound) return {};
    return Unexpected("read the cluster credentials: " + kv.error().message);
  }
  auto files = open(kv->value, secret);
  if (!files) return Unexpected(files.error());
  namespace fs = std::filesystem;
  for (const auto& [rel, data] : *files) {
    std::string path = tlsDir + "/" + rel;
    if (fs::exists(path)) {
      auto mine = tls::readFile(path);
      if (!mine || *mine != data)
        return Unexpected(path +
                          " is not the cluster's (the datastore holds other credentials): "
                          "start with an empty " +
                          tlsDir + " to take the cluster's");
      continue;
    }
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    if (auto w = tls::writeFileAtomic(path, data, 0600); !w) return Unexpected(w.error());
  }
  return {};
}

Expected<void, std::string> publish(store::Store& store, const std::string& tlsDir,
                                    const std::string& secret) {
  if (auto kv = store.get(kKey); kv) return {};
  auto files = readShared(tlsDir);
  if (!files) return Unexpected(files.error());
  auto sealed = seal(*files, secret);
  if (!sealed) return Unexpected(sealed.error());
  auto made = store.create(kKey, *sealed);
  if (made) return {};
  if (made.error().code != store::Errc::AlreadyExists)
    return Unexpected("store the cluster credentials: " + made.error().message);
  // Another server was first by a hair: ours must be its (else this one made a cluster apart).
  return restore(store, tlsDir, secret);
}

}  // namespace podium::api::bootstrap
