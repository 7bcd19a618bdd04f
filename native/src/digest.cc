// SHA-256 on the libuv thread pool, of the caller's buffer in place (no copy): the target hashes
// a snapshot's image for the agent (docs/backup.md, "Hashes from the view") without holding the
// event loop that serves host commands. The digest is OpenSSL's, the one Node.js itself carries:
// node exports its OpenSSL symbols to addons and ships the headers with its own (docs/native.md).
#include "digest.h"

#include <openssl/evp.h>

#include <cstdint>

namespace xcopy {
namespace {

class Sha256Worker : public Napi::AsyncWorker {
 public:
  Sha256Worker(Napi::Env env, Napi::Buffer<uint8_t> data)
      : Napi::AsyncWorker(env, "sha256Async"),
        deferred_(Napi::Promise::Deferred::New(env)),
        data_(data.Data()),
        length_(data.Length()) {
    // The buffer stays referenced (not collected) until the digest is done; the caller must not
    // change it meanwhile (src/native/digest.ts says so).
    ref_ = Napi::Persistent(data.As<Napi::Object>());
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    unsigned int n = 0;
    ok_ = EVP_Digest(data_, length_, digest_, &n, EVP_sha256(), nullptr) == 1 && n == sizeof(digest_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    ref_.Reset();
    if (!ok_) {
      deferred_.Reject(Napi::Error::New(env, "sha256Async: OpenSSL's EVP_Digest failed").Value());
      return;
    }
    deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, digest_, sizeof(digest_)));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference ref_;
  const uint8_t* data_;
  size_t length_;
  uint8_t digest_[32] = {};
  bool ok_ = false;
};

Napi::Value Sha256Async(const Napi::CallbackInfo& info) {
  auto* w = new Sha256Worker(info.Env(), info[0].As<Napi::Buffer<uint8_t>>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitDigest(Napi::Env env, Napi::Object exports) {
  exports.Set("sha256Async", Napi::Function::New(env, Sha256Async, "sha256Async"));
}

}  // namespace xcopy
