#pragma once
#include <napi.h>

namespace xcopy {
// sha256Async(data): SHA-256 of a buffer on the libuv thread pool (digest.cc).
void InitDigest(Napi::Env env, Napi::Object exports);
}
