// File operations Node's fs lacks: SEEK_DATA/SEEK_HOLE (holes of sparse files), hole punching
// (UNMAP on a file store) and copy_file_range (in-kernel file-to-file copy for the copy manager).
// Synchronous, thin; arguments are validated in TypeScript (src/util/fileops.ts).
#include "fileops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <string.h>
#include <unistd.h>

namespace xcopy {

namespace {

Napi::Value ErrnoError(Napi::Env env, const char* syscall, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  throw e;
}

// seek(fd, offset, whence): 3 = SEEK_DATA, 4 = SEEK_HOLE. Returns the new offset, or -1 when
// there is no more data after offset (ENXIO).
Napi::Value Seek(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t off = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  int whence = info[2].As<Napi::Number>().Int32Value() == 3 ? SEEK_DATA : SEEK_HOLE;
  off_t r = lseek(fd, off, whence);
  if (r < 0) {
    if (errno == ENXIO) return Napi::Number::New(info.Env(), -1);
    return ErrnoError(info.Env(), "lseek", errno);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

// punchHole(fd, offset, length): deallocate, keep the size; the range then reads back zeros.
Napi::Value PunchHole(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  off_t off = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  off_t len = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) != 0) {
    return ErrnoError(info.Env(), "fallocate", errno);
  }
  return info.Env().Undefined();
}

// copyFileRange(fdIn, offIn, fdOut, offOut, length): bytes copied (may be short; loop in TS).
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  int fdIn = info[0].As<Napi::Number>().Int32Value();
  loff_t offIn = static_cast<loff_t>(info[1].As<Napi::Number>().Int64Value());
  int fdOut = info[2].As<Napi::Number>().Int32Value();
  loff_t offOut = static_cast<loff_t>(info[3].As<Napi::Number>().Int64Value());
  size_t len = static_cast<size_t>(info[4].As<Napi::Number>().Int64Value());
  ssize_t r = copy_file_range(fdIn, &offIn, fdOut, &offOut, len, 0);
  if (r < 0) return ErrnoError(info.Env(), "copy_file_range", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(r));
}

}  // namespace

void InitFileOps(Napi::Env env, Napi::Object exports) {
  exports.Set("seek", Napi::Function::New(env, Seek, "seek"));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole, "punchHole"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
}

}  // namespace xcopy
