// File operations Node's fs lacks: SEEK_DATA/SEEK_HOLE (holes of sparse files), hole punching
// (UNMAP on a file store) and copy_file_range (in-kernel file-to-file copy for the copy manager).
// Thin; copyFileRangeAsync runs on the thread pool, the others are synchronous; arguments are validated in TypeScript (src/util/fileops.ts).
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

// CopyFileRangeWorker: copy_file_range on the libuv thread pool, looping over short copies, so a
// copy manager's file-to-file chunk never blocks the event loop that serves host I/O.
class CopyFileRangeWorker : public Napi::AsyncWorker {
 public:
  CopyFileRangeWorker(Napi::Env env, int fdIn, loff_t offIn, int fdOut, loff_t offOut, size_t len)
      : Napi::AsyncWorker(env, "copyFileRangeAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fdIn_(fdIn), offIn_(offIn), fdOut_(fdOut), offOut_(offOut), len_(len) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    while (done_ < len_) {
      ssize_t r = copy_file_range(fdIn_, &offIn_, fdOut_, &offOut_, len_ - done_, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        err_ = errno;
        return;
      }
      if (r == 0) {  // end of the source file
        err_ = 0;
        short_ = true;
        return;
      }
      done_ += static_cast<size_t>(r);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0 || short_) {
      std::string msg = short_ ? std::string("copy_file_range: unexpected end of source file")
                               : std::string("copy_file_range: ") + strerror(err_);
      Napi::Error e = Napi::Error::New(env, msg);
      e.Set("errno", Napi::Number::New(env, err_));
      e.Set("syscall", Napi::String::New(env, "copy_file_range"));
      deferred_.Reject(e.Value());
      return;
    }
    deferred_.Resolve(Napi::Number::New(env, static_cast<double>(done_)));
  }

 private:
  Napi::Promise::Deferred deferred_;
  int fdIn_;
  loff_t offIn_;
  int fdOut_;
  loff_t offOut_;
  size_t len_;
  size_t done_ = 0;
  int err_ = 0;
  bool short_ = false;
};

// copyFileRangeAsync(fdIn, offIn, fdOut, offOut, length): a Promise of the bytes copied (= length).
Napi::Value CopyFileRangeAsync(const Napi::CallbackInfo& info) {
  auto* w = new CopyFileRangeWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(),
                                    static_cast<loff_t>(info[1].As<Napi::Number>().Int64Value()),
                                    info[2].As<Napi::Number>().Int32Value(),
                                    static_cast<loff_t>(info[3].As<Napi::Number>().Int64Value()),
                                    static_cast<size_t>(info[4].As<Napi::Number>().Int64Value()));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace

void InitFileOps(Napi::Env env, Napi::Object exports) {
  exports.Set("seek", Napi::Function::New(env, Seek, "seek"));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole, "punchHole"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
  exports.Set("copyFileRangeAsync", Napi::Function::New(env, CopyFileRangeAsync, "copyFileRangeAsync"));
}

}  // namespace xcopy
