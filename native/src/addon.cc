// Module entry: the NativeSession class (session.h), the file operations (fileops.h) and CRC32C.
#include <napi.h>

#include "crc32c.h"
#include "fileops.h"
#include "session.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSession", xcopy::Session::Init(env));
  xcopy::InitFileOps(env, exports);
  xcopy::InitCrc32c(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(xcopy_iscsi, Init)
