// File operations Node's fs lacks: SEEK_DATA/SEEK_HOLE (holes of sparse files), hole punching
// (UNMAP on a file store), copy_file_range (in-kernel file-to-file copy for the copy manager),
// readahead advice, reads from the page cache only (RWF_NOWAIT), the file store's small reads and
// writes of one turn of the event loop in one job, a snapshot capture's reads of original chunks
// (with their CRC32C), and its OBF group commits (the originals read, the records written
// durably, then the hosts' changes). Thin; copyFileRangeAsync, fileIoBatchAsync, readChunksAsync
// and captureCommitAsync run on the thread pool, the others are synchronous; arguments are
// validated in TypeScript (src/native/fileops.ts).
#include "fileops.h"

#include "crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace xcopy {

namespace {

// An Error like Node's own system errors: "syscall: what", with errno and syscall set. `err` 0
// means the file ended early.
Napi::Error SystemError(Napi::Env env, const char* syscall, int err, const char* eof = "unexpected end of file") {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + (err == 0 ? eof : strerror(err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

Napi::Value ErrnoError(Napi::Env env, const char* syscall, int err) {
  throw SystemError(env, syscall, err);
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

// fadviseRandom(fd): POSIX_FADV_RANDOM on this open file (its own descriptor): no readahead for
// its reads, which are whole chunks at random places (a snapshot's capture reads).
Napi::Value FadviseRandom(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int e = posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  if (e != 0) return ErrnoError(info.Env(), "posix_fadvise", e);
  return info.Env().Undefined();
}

// preadNoWait(fd, buffer, offset, length, position): a read served from the page cache only
// (preadv2 with RWF_NOWAIT, Linux 4.14): the bytes read (short when only some pages are cached),
// or -1 when none could be read without waiting for the disk (EAGAIN), or when the kernel does not
// know the flag (EOPNOTSUPP, EINVAL). On the event loop it costs one system call, where a read on
// the thread pool costs a hand-off each way (the file store's small reads, docs/target.md).
Napi::Value PreadNoWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Uint8Array buf = info[1].As<Napi::Uint8Array>();
  size_t off = static_cast<size_t>(info[2].As<Napi::Number>().Int64Value());
  size_t len = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
  off_t pos = static_cast<off_t>(info[4].As<Napi::Number>().Int64Value());
  struct iovec iov = {buf.Data() + off, len};
  for (;;) {
    ssize_t r = preadv2(info[0].As<Napi::Number>().Int32Value(), &iov, 1, pos, RWF_NOWAIT);
    if (r >= 0) return Napi::Number::New(env, static_cast<double>(r));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EOPNOTSUPP || errno == EINVAL) return Napi::Number::New(env, -1);
    return ErrnoError(env, "preadv2", errno);
  }
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
      deferred_.Reject(SystemError(env, "copy_file_range", short_ ? 0 : err_, "unexpected end of source file").Value());
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

// pread of exactly len bytes (looping over short reads and EINTR): 0, an errno, or -1 at end of file.
int PreadAll(int fd, uint8_t* p, size_t len, off_t position) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, p + done, len - done, position + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return -1;
    done += static_cast<size_t>(n);
  }
  return 0;
}

// FileIoBatchWorker: the file store's reads and writes of one turn of the event loop, each a
// pread or pwrite of its own (positions differ) looped over short transfers, one after the other
// in one thread-pool job. On a machine with few cores, every job handed to the pool costs the
// event loop a wake-up of a pool thread (which then often runs in its place) and every
// completion a wake-up of the loop: one job per batch pays them once (docs/target.md "Speed").
class FileIoBatchWorker : public Napi::AsyncWorker {
 public:
  FileIoBatchWorker(Napi::Env env, Napi::Int32Array fds, Napi::Uint8Array writes, Napi::Array buffers, Napi::Float64Array positions)
      : Napi::AsyncWorker(env, "fileIoBatchAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ref_(Napi::Persistent(buffers.As<Napi::Object>())) {
    uint32_t n = buffers.Length();
    ops_.reserve(n);
    for (uint32_t i = 0; i < n; i++) {
      auto b = buffers.Get(i).As<Napi::Uint8Array>();
      ops_.push_back({fds[i], writes[i] != 0, b.Data(), b.ByteLength(), static_cast<off_t>(positions[i]), 0.0});
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    for (Op& op : ops_) {
      size_t done = 0;
      int err = 0;
      while (done < op.len) {
        ssize_t n = op.write ? pwrite(op.fd, op.data + done, op.len - done, op.position + static_cast<off_t>(done))
                             : pread(op.fd, op.data + done, op.len - done, op.position + static_cast<off_t>(done));
        if (n < 0) {
          if (errno == EINTR) continue;
          err = errno;
          break;
        }
        if (n == 0) break;  // a read at the end of the file: short
        done += static_cast<size_t>(n);
      }
      op.result = err != 0 ? -static_cast<double>(err) : static_cast<double>(done);
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto out = Napi::Float64Array::New(env, ops_.size());
    for (size_t i = 0; i < ops_.size(); i++) out[i] = ops_[i].result;
    deferred_.Resolve(out);
  }

 private:
  struct Op {
    int fd;
    bool write;
    uint8_t* data;
    size_t len;
    off_t position;
    double result;  // bytes moved, or -errno
  };
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference ref_;  // keeps every buffer alive while a pool thread uses them
  std::vector<Op> ops_;
};

// fileIoBatchAsync(fds, writes, buffers, positions): op i preads (writes[i] = 0) or pwrites
// buffers[i] at positions[i] on fds[i]. A Promise of a Float64Array: per op the bytes moved (a read
// is short only at the end of the file) or -errno.
Napi::Value FileIoBatchAsync(const Napi::CallbackInfo& info) {
  auto* w = new FileIoBatchWorker(info.Env(), info[0].As<Napi::Int32Array>(), info[1].As<Napi::Uint8Array>(), info[2].As<Napi::Array>(),
                                  info[3].As<Napi::Float64Array>());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// ReadChunksWorker: a snapshot capture's reads of original chunks on the thread pool — for each
// chunk the pread, the test for all zeros (optional) and the CRC32C of the bytes — so none of
// them costs the event loop, and the chunks asked for in one turn of it cost one call. Zeros are
// found in the bytes read rather than by SEEK_DATA: on ext4 that takes the inode lock and waits
// behind the host writes going to the same file.
class ReadChunksWorker : public Napi::AsyncWorker {
 public:
  ReadChunksWorker(Napi::Env env, int fd, Napi::Array buffers, Napi::Array positions, bool zeros)
      : Napi::AsyncWorker(env, "readChunksAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ref_(Napi::Persistent(buffers.As<Napi::Object>())),
        fd_(fd), zeros_(zeros) {
    for (uint32_t i = 0; i < buffers.Length(); i++) {
      auto b = buffers.Get(i).As<Napi::Uint8Array>();
      chunks_.push_back({b.Data(), b.ByteLength(), static_cast<off_t>(positions.Get(i).As<Napi::Number>().Int64Value()), 0.0});
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    for (Chunk& c : chunks_) {
      int r = PreadAll(fd_, c.data, c.len, c.position);
      if (r != 0) {
        if (r < 0) short_ = true;
        else err_ = r;
        return;
      }
      c.result = zeros_ && AllZero(c.data, c.len) ? -1.0 : static_cast<double>(Crc32cUpdate(0, c.data, c.len));
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (err_ != 0 || short_) {
      deferred_.Reject(SystemError(env, "pread", short_ ? 0 : err_).Value());
      return;
    }
    Napi::Array out = Napi::Array::New(env, chunks_.size());
    for (size_t i = 0; i < chunks_.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, chunks_[i].result));
    deferred_.Resolve(out);
  }

 private:
  struct Chunk {
    uint8_t* data;
    size_t len;
    off_t position;
    double result;  // CRC32C, or -1 for all zeros
  };

  static bool AllZero(const uint8_t* p, size_t n) {
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {  // a 64-byte line at a time, stopping at the first non-zero one
      uint64_t w[8];
      memcpy(w, p + i, 64);
      for (int k = 0; k < 8; k++) acc |= w[k];
      if (acc != 0) return false;
    }
    for (; i < n; i++) acc |= p[i];
    return acc == 0;
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference ref_;  // keeps the buffers alive while a pool thread fills them
  std::vector<Chunk> chunks_;
  int fd_;
  bool zeros_;
  bool short_ = false;
  int err_ = 0;
};

// readChunksAsync(fd, buffers, positions, zeros): fills buffers[i] from positions[i] and
// resolves with the CRC32C of each; with zeros = true, -1 instead where every byte is zero.
Napi::Value ReadChunksAsync(const Napi::CallbackInfo& info) {
  auto* w = new ReadChunksWorker(info.Env(), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Array>(),
                                 info[2].As<Napi::Array>(), info[3].As<Napi::Boolean>().Value());
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}


// CaptureChain: the order of one OBF log's capture commits, for the host writes they carry. A
// commit's host writes may reach the source only once its own records and those of every commit
// that took a ticket before it are durable (a reader stops at the first gap of the log, so a
// record after a failed commit protects nothing). Tickets are taken on the main thread, in
// commit order, before anything of the commit can fail (captureChainTake); each is finished
// exactly once, by its job or, when the commit failed before a job was queued, by
// captureChainAbandon. Finishing is in ticket order: a ticket finished early is held until the
// ones before it are. Only a job carrying host writes waits; the pool runs jobs in the order
// queued, so the commits it waits for are running or done, never queued behind it.
struct CaptureChain {
  std::mutex m;
  std::condition_variable cv;
  uint64_t issued = 0;               // tickets taken
  uint64_t done = 0;                 // tickets finished, in order
  bool ok = true;                    // every ticket finished so far succeeded
  std::map<uint64_t, bool> early;    // tickets finished before the ones ahead of them

  // Finishes `ticket` with `success` (the caller holds m); wakes the waiters.
  void FinishLocked(uint64_t ticket, bool success) {
    if (ticket != done + 1) {
      early[ticket] = success;
      return;
    }
    done = ticket;
    ok = ok && success;
    for (auto it = early.find(done + 1); it != early.end(); it = early.find(done + 1)) {
      done = it->first;
      ok = ok && it->second;
      early.erase(it);
    }
    cv.notify_all();
  }
};

using ChainRef = std::shared_ptr<CaptureChain>;

ChainRef ChainOf(const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), "a capture chain is expected");
  return *v.As<Napi::External<ChainRef>>().Data();
}

// captureChainNew(): a new chain (an External; freed when JS lets it go and no job holds it).
Napi::Value CaptureChainNew(const Napi::CallbackInfo& info) {
  auto* holder = new ChainRef(std::make_shared<CaptureChain>());
  return Napi::External<ChainRef>::New(info.Env(), holder, [](Napi::Env, ChainRef* h) { delete h; });
}

// captureChainTake(chain): the next ticket (a number).
Napi::Value CaptureChainTake(const Napi::CallbackInfo& info) {
  ChainRef chain = ChainOf(info[0]);
  std::lock_guard<std::mutex> lk(chain->m);
  return Napi::Number::New(info.Env(), static_cast<double>(++chain->issued));
}

// captureChainAbandon(chain, ticket): the commit holding `ticket` failed before its job was
// queued: the ticket finishes as failed (in its turn), so no later host write passes it.
Napi::Value CaptureChainAbandon(const Napi::CallbackInfo& info) {
  ChainRef chain = ChainOf(info[0]);
  uint64_t ticket = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  std::lock_guard<std::mutex> lk(chain->m);
  if (ticket > chain->done && ticket <= chain->issued && chain->early.count(ticket) == 0) chain->FinishLocked(ticket, false);
  return info.Env().Undefined();
}

// Host-write state cells (an Int32Array element each), shared with the event loop, which may
// cancel a host write that has not started (a COW timeout).
constexpr int32_t kHostPending = 0;
constexpr int32_t kHostCancelled = 1;
constexpr int32_t kHostStarted = 2;

// CaptureCommitWorker: one OBF group commit of snapshot captures whose originals are read in the
// same thread-pool job — for each record the pread of the original from the source, the record
// CRC (CRC32C over the header bytes before crcOffset, continued over the data) stored big-endian
// at header bytes crcOffset..+3 (the record layout is the caller's: src/obf/format.ts) — then the contiguous runs of the log written, each with one pwritev on the OBF's
// O_DSYNC descriptor (durable when it returns). With a chain, the job then waits for the commits
// queued before it and, when they and its own runs are durable, writes the hosts' changes that
// made these captures (each pwritev, RWF_DSYNC for FUA), unless cancelled: a first write costs no
// thread-pool job of its own and no event-loop turn between its capture and its write.
class CaptureCommitWorker : public Napi::AsyncWorker {
 public:
  CaptureCommitWorker(Napi::Env env, int srcFd, Napi::Array reads, size_t crcOffset, int obfFd, Napi::Array runs,
                      Napi::Value chain, Napi::Value ticket, Napi::Value hosts, Napi::Value hostFd)
      : Napi::AsyncWorker(env, "captureCommitAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        readsRef_(Napi::Persistent(reads.As<Napi::Object>())),
        runsRef_(Napi::Persistent(runs.As<Napi::Object>())),
        srcFd_(srcFd), obfFd_(obfFd), crcOffset_(crcOffset) {
    for (uint32_t i = 0; i < reads.Length(); i++) {
      Napi::Object r = reads.Get(i).As<Napi::Object>();
      auto into = r.Get("into").As<Napi::Uint8Array>();
      auto header = r.Get("header").As<Napi::Uint8Array>();
      reads_.push_back({into.Data(), into.ByteLength(), static_cast<off_t>(r.Get("position").As<Napi::Number>().Int64Value()),
                        header.Data(), 0});
    }
    for (uint32_t i = 0; i < runs.Length(); i++) {
      Napi::Object r = runs.Get(i).As<Napi::Object>();
      runs_.push_back({static_cast<off_t>(r.Get("position").As<Napi::Number>().Int64Value()), Pieces(r.Get("pieces").As<Napi::Array>())});
    }
    if (chain.IsExternal()) {
      chain_ = ChainOf(chain);
      ticket_ = static_cast<uint64_t>(ticket.As<Napi::Number>().Int64Value());
    }
    if (chain_ && hosts.IsArray()) {
      hostFd_ = hostFd.As<Napi::Number>().Int32Value();
      Napi::Array hs = hosts.As<Napi::Array>();
      hostsRef_ = Napi::Persistent(hs.As<Napi::Object>());
      for (uint32_t i = 0; i < hs.Length(); i++) {
        Napi::Object h = hs.Get(i).As<Napi::Object>();
        auto state = h.Get("state").As<Napi::Int32Array>();
        hosts_.push_back({static_cast<off_t>(h.Get("position").As<Napi::Number>().Int64Value()), Pieces(h.Get("pieces").As<Napi::Array>()),
                          h.Get("fua").ToBoolean().Value(), state.Data(), -1});
      }
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    bool finished = !chain_;  // the ticket, once finished (none without a chain)
    try {
      CaptureAndWrite();
      if (!chain_) return;
      std::unique_lock<std::mutex> lk(chain_->m);
      if (hosts_.empty()) {
        // Nothing to order: finish the ticket (held until those ahead finish) and go.
        chain_->FinishLocked(ticket_, phase_ == nullptr);
        finished = true;
        return;
      }
      // In ticket order: wait for the commits before this one, then let the next go.
      chain_->cv.wait(lk, [this] { return chain_->done >= ticket_ - 1; });
      bool earlierOk = chain_->ok;
      chain_->FinishLocked(ticket_, phase_ == nullptr);
      finished = true;
      lk.unlock();
      if (!earlierOk || phase_ != nullptr) return;  // the host writes stay unwritten (result -1)
      for (Host& h : hosts_) {
        int32_t expected = kHostPending;
        if (!__atomic_compare_exchange_n(h.state, &expected, kHostStarted, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) continue;
        h.result = WriteAll(hostFd_, h.iov, h.position, h.fua ? RWF_DSYNC : 0);
      }
    } catch (...) {
      // Out of memory: before the ticket finished, the commit failed (and its ticket must still
      // finish, or every later job would wait for it); after, the records are durable and the
      // host writes not made yet stay unwritten (result -1, the caller's to make).
      if (finished) return;
      if (phase_ == nullptr) Fail("write", ENOMEM);
      std::lock_guard<std::mutex> lk(chain_->m);
      chain_->FinishLocked(ticket_, false);
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  void OnOK() override {
    Napi::Env env = Env();
    if (phase_ != nullptr) {
      bool read = std::string(phase_) == "read";
      Napi::Error e = SystemError(env, read ? "pread" : "pwritev", err_, "unexpected end of the source file");
      e.Set("phase", Napi::String::New(env, phase_));
      if (failedRead_ >= 0) e.Set("index", Napi::Number::New(env, static_cast<double>(failedRead_)));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    Napi::Array crcs = Napi::Array::New(env, reads_.size());
    for (size_t i = 0; i < reads_.size(); i++) crcs.Set(static_cast<uint32_t>(i), Napi::Number::New(env, reads_[i].crc));
    Napi::Array hosts = Napi::Array::New(env, hosts_.size());
    for (size_t i = 0; i < hosts_.size(); i++) hosts.Set(static_cast<uint32_t>(i), Napi::Number::New(env, hosts_[i].result));
    out.Set("crcs", crcs);
    out.Set("hosts", hosts);
    deferred_.Resolve(out);
  }

 private:
  using Iov = std::vector<std::pair<uint8_t*, size_t>>;
  struct Read {
    uint8_t* into;
    size_t len;
    off_t position;
    uint8_t* header;
    uint32_t crc;
  };
  struct Run {
    off_t position;
    Iov iov;
  };
  struct Host {
    off_t position;
    Iov iov;
    bool fua;
    int32_t* state;
    int result;  // 0 written, an errno, or -1 not written
  };

  static Iov Pieces(Napi::Array pieces) {
    Iov iov;
    for (uint32_t k = 0; k < pieces.Length(); k++) {
      auto b = pieces.Get(k).As<Napi::Uint8Array>();
      iov.push_back({b.Data(), b.ByteLength()});
    }
    return iov;
  }

  // pwritev2 of every piece at `at` (looping over short writes and EINTR): 0 or an errno.
  static int WriteAll(int fd, const Iov& pieces, off_t at, int flags) {
    size_t i = 0;     // first piece not fully written
    size_t skip = 0;  // bytes of it already written
    while (i < pieces.size()) {
      std::vector<struct iovec> iov;
      for (size_t k = i; k < pieces.size() && iov.size() < IOV_MAX; k++) {
        if (pieces[k].second == (k == i ? skip : 0)) continue;  // nothing (left) to write in it
        struct iovec v;
        v.iov_base = pieces[k].first + (k == i ? skip : 0);
        v.iov_len = pieces[k].second - (k == i ? skip : 0);
        iov.push_back(v);
      }
      if (iov.empty()) break;  // only empty pieces were left
      ssize_t n = pwritev2(fd, iov.data(), static_cast<int>(iov.size()), at, flags);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return n < 0 ? errno : EIO;
      at += n;
      size_t left = static_cast<size_t>(n);
      while (left > 0 && i < pieces.size()) {
        size_t rest = pieces[i].second - skip;
        if (left >= rest) {
          left -= rest;
          i++;
          skip = 0;
        } else {
          skip += left;
          left = 0;
        }
      }
    }
    return 0;
  }

  // The originals read and their CRCs stored, then the runs written; phase_ set on a failure.
  void CaptureAndWrite() {
    for (size_t i = 0; i < reads_.size(); i++) {
      Read& r = reads_[i];
      int e = PreadAll(srcFd_, r.into, r.len, r.position);
      if (e != 0) {
        Fail("read", e < 0 ? 0 : e);
        failedRead_ = static_cast<int64_t>(i);
        return;
      }
      uint32_t crc = Crc32cUpdate(Crc32cUpdate(0, r.header, crcOffset_), r.into, r.len);
      r.header[crcOffset_] = static_cast<uint8_t>(crc >> 24);
      r.header[crcOffset_ + 1] = static_cast<uint8_t>(crc >> 16);
      r.header[crcOffset_ + 2] = static_cast<uint8_t>(crc >> 8);
      r.header[crcOffset_ + 3] = static_cast<uint8_t>(crc);
      r.crc = crc;
    }
    for (Run& run : runs_) {
      int e = WriteAll(obfFd_, run.iov, run.position, 0);
      if (e != 0) {
        Fail("write", e);
        return;
      }
    }
  }

  void Fail(const char* phase, int err) {
    phase_ = phase;
    err_ = err;
  }

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference readsRef_;  // keep every buffer alive while a pool thread uses them
  Napi::ObjectReference runsRef_;
  Napi::ObjectReference hostsRef_;
  int srcFd_;
  int obfFd_;
  size_t crcOffset_;  // where each header takes its record CRC (header.length >= crcOffset + 4, checked in TS)
  int hostFd_ = -1;  // the source, opened for writing (srcFd_ may be a read-only descriptor)
  std::vector<Read> reads_;
  std::vector<Run> runs_;
  std::vector<Host> hosts_;
  std::shared_ptr<CaptureChain> chain_;
  uint64_t ticket_ = 0;
  const char* phase_ = nullptr;
  int err_ = 0;
  int64_t failedRead_ = -1;  // the read that failed, for the caller to fail that capture alone
};

// captureCommitAsync(srcFd, reads: {into, position, header}[], crcOffset, obfFd, runs: {position,
// pieces}[], chain?, ticket?, hosts?: {position, pieces, fua, state: Int32Array}[], hostFd?): reads
// each original into `into`, stores the record CRC at `header[crcOffset..+3]`, writes the runs, then (with a chain
// and this commit's ticket, taken with captureChainTake) the host writes, on hostFd (the source
// opened for writing). Resolves with {crcs, hosts: 0 | errno | -1 (not written)}; rejects with
// e.phase = 'read' (and e.index, the read that failed) or 'write', no host write made. When this
// call throws, no job holds the ticket: the caller abandons it.
Napi::Value CaptureCommitAsync(const Napi::CallbackInfo& info) {
  std::unique_ptr<CaptureCommitWorker> w(new CaptureCommitWorker(
      info.Env(), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Array>(), info[2].As<Napi::Number>().Uint32Value(),
      info[3].As<Napi::Number>().Int32Value(), info[4].As<Napi::Array>(), info[5], info[6], info[7], info[8]));
  Napi::Promise p = w->Promise();
  w->Queue();  // if it throws, the worker is freed here (and the caller abandons the ticket)
  w.release();  // the worker deletes itself when done
  return p;
}

}  // namespace

void InitFileOps(Napi::Env env, Napi::Object exports) {
  exports.Set("seek", Napi::Function::New(env, Seek, "seek"));
  exports.Set("punchHole", Napi::Function::New(env, PunchHole, "punchHole"));
  exports.Set("fadviseRandom", Napi::Function::New(env, FadviseRandom, "fadviseRandom"));
  exports.Set("preadNoWait", Napi::Function::New(env, PreadNoWait, "preadNoWait"));
  exports.Set("fileIoBatchAsync", Napi::Function::New(env, FileIoBatchAsync, "fileIoBatchAsync"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));
  exports.Set("copyFileRangeAsync", Napi::Function::New(env, CopyFileRangeAsync, "copyFileRangeAsync"));
  exports.Set("captureCommitAsync", Napi::Function::New(env, CaptureCommitAsync, "captureCommitAsync"));
  exports.Set("captureChainNew", Napi::Function::New(env, CaptureChainNew, "captureChainNew"));
  exports.Set("captureChainTake", Napi::Function::New(env, CaptureChainTake, "captureChainTake"));
  exports.Set("captureChainAbandon", Napi::Function::New(env, CaptureChainAbandon, "captureChainAbandon"));
  exports.Set("readChunksAsync", Napi::Function::New(env, ReadChunksAsync, "readChunksAsync"));
}

}  // namespace xcopy
