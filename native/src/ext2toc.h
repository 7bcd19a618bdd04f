// The table of contents (the method's step 603, docs/toc.md) read by e2fsprogs' own library,
// libext2fs: an io_manager of ours hands libext2fs the bytes of a LUN (through a libiscsi
// connection of the job's own, synchronous, on a libuv worker thread) or of an image file, from
// the byte where the file system starts; libext2fs's iterators walk the directory tree and map
// each inode's blocks. The TS face is src/native/ext2fs.ts.
#pragma once

#include <napi.h>

namespace xcopy {

void InitExt2Toc(Napi::Env env, Napi::Object exports);

}  // namespace xcopy
