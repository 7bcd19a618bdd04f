// Module entry: the NativeSession class (session.h) and the file operations (fileops.h).
#include <napi.h>

#include "fileops.h"
#include "session.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSession", xcopy::Session::Init(env));
  xcopy::InitFileOps(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(xcopy_iscsi, Init)
