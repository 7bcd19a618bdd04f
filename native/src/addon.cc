// Module entry: exports the NativeSession class (session.h) and libiscsi's version facts.
#include <napi.h>

#include "session.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSession", xcopy::Session::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(xcopy_iscsi, Init)
