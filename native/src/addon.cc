// xcopy_native: the project's one native addon (node-addon-api), loaded only by src/native/index.ts.
// It holds these things, each a thin layer whose arguments TypeScript validates (docs/native.md):
//   - libiscsi initiator sessions: the NativeSession class (session.h), the TS face in
//     src/initiator/session.ts;
//   - block-file I/O Node's fs lacks: holes, hole punching, copy_file_range, batched chunk reads and
//     the OBF capture commit on the libuv thread pool (fileops.h), the TS face src/native/fileops.ts;
//   - CRC32C (Castagnoli), SSE4.2 where the CPU has it, else a portable table (crc32c.h), the TS
//     face src/native/crc32c.ts;
//   - SHA-256 of a buffer on the thread pool (digest.h), the TS face src/native/digest.ts;
//   - the service manager's readiness datagram, sd_notify(3) (notify.h), the TS face
//     src/native/notify.ts;
//   - the table of contents of an ext2/3/4 file system, walked by libext2fs on the thread pool
//     through an io_manager reading a LUN (libiscsi) or a file (ext2toc.h), the TS face
//     src/native/ext2fs.ts.
#include <napi.h>

#include "crc32c.h"
#include "digest.h"
#include "ext2toc.h"
#include "fileops.h"
#include "notify.h"
#include "session.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeSession", xcopy::Session::Init(env));
  xcopy::InitFileOps(env, exports);
  xcopy::InitCrc32c(env, exports);
  xcopy::InitDigest(env, exports);
  xcopy::InitNotify(env, exports);
  xcopy::InitExt2Toc(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(xcopy_native, Init)
