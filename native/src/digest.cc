// SHA-256 on the libuv thread pool, of the caller's buffer in place (no copy): the target hashes
// a snapshot's image for the agent (docs/backup.md, "Hashes from the view") without holding the
// event loop that serves host commands. The digest is OpenSSL's, the one Node.js itself carries:
// node exports its OpenSSL symbols to addons and ships the headers with its own (docs/native.md).
#include "digest.h"

#include <openssl/evp.h>

#include <cstdint>
#include <vector>

namespace xcopy {
namespace {

// The SHA-256 of each consecutive piece of `pieceBytes` bytes of a buffer (the last one shorter),
// one after the other on one pool thread: one job per several pieces keeps the per-job costs
// (a pool hop, a promise) off the hashing of a snapshot's image a megabyte at a time.
class Sha256Worker : public Napi::AsyncWorker {
 public:
  Sha256Worker(Napi::Env env, Napi::Buffer<uint8_t> data, size_t pieceBytes)
      : Napi::AsyncWorker(env, "sha256Async"),
        deferred_(Napi::Promise::Deferred::New(env)),
        data_(data.Data()),
        length_(data.Length()),
        piece_(pieceBytes == 0 ? data.Length() : pieceBytes) {
    // The buffer stays referenced (not collected) until the digests are done; the caller must
    // not change it meanwhile (src/native/digest.ts says so).
    ref_ = Napi::Persistent(data.As<Napi::Object>());
    size_t pieces = length_ == 0 ? 1 : (length_ + piece_ - 1) / piece_;
    digests_.resize(pieces * 32);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    size_t pieces = digests_.size() / 32;
    for (size_t i = 0; i < pieces; i++) {
      size_t off = i * piece_;
      size_t n = length_ - off < piece_ ? length_ - off : piece_;
      unsigned int len = 0;
      if (EVP_Digest(data_ + off, n, digests_.data() + i * 32, &len, EVP_sha256(), nullptr) != 1 || len != 32) return;
    }
    ok_ = true;
  }

  void OnOK() override {
    Napi::Env env = Env();
    ref_.Reset();
    if (!ok_) {
      deferred_.Reject(Napi::Error::New(env, "sha256Async: OpenSSL's EVP_Digest failed").Value());
      return;
    }
    deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, digests_.data(), digests_.size()));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference ref_;
  const uint8_t* data_;
  size_t length_;
  size_t piece_;
  std::vector<uint8_t> digests_;
  bool ok_ = false;
};

// sha256Async(data, pieceBytes): a Promise of the 32-byte digests of data's consecutive pieces
// (pieceBytes 0: the whole buffer, one digest).
Napi::Value Sha256Async(const Napi::CallbackInfo& info) {
  size_t piece = info.Length() > 1 ? static_cast<size_t>(info[1].As<Napi::Number>().Int64Value()) : 0;
  auto* w = new Sha256Worker(info.Env(), info[0].As<Napi::Buffer<uint8_t>>(), piece);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitDigest(Napi::Env env, Napi::Object exports) {
  exports.Set("sha256Async", Napi::Function::New(env, Sha256Async, "sha256Async"));
}

}  // namespace xcopy
