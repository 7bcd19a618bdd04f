// ext2toc: the walk behind the table of contents (docs/toc.md), thin C++ over libext2fs.
//
// One job = one Napi::AsyncWorker: everything below runs in Execute(), on a libuv worker thread,
// so libext2fs (synchronous) and the job's own libiscsi context never block the event loop. The
// job owns its source (a file descriptor, or a libiscsi context logged in to the LUN), a page
// cache in front of it filled by an I/O thread of the job's (reads planned ahead, several in
// flight), an io_manager whose channel reads through that cache, and the ext2_filsys opened on
// it; nothing is shared with other jobs or with NativeSession.
//
// What the walk asks libext2fs (e2fsprogs 1.47, lib/ext2fs): ext2fs_open2 (superblock, group
// descriptors, their checksums), ext2fs_open_inode_scan and ext2fs_get_next_inode_full (the
// inode tables in table order, each inode's checksum), ext2fs_dir_iterate2 (linear, htree and
// inline-data directories), ext2fs_extent_* (extent trees of any depth, uninit flags),
// ext2fs_block_iterate3 (direct, indirect, double and triple indirect maps), ext2fs_inline_data_*,
// ext2fs_file_* (slow symlinks), ext2fs_read_inode_full (an inode the scan did not keep). Every
// errcode_t becomes a JS error naming the inode (and path) or block, with error_message()'s
// text; nothing is guessed.
//
// Thin C++: arguments are validated in TypeScript (src/native/ext2fs.ts); the result is raw
// (typed arrays of inodes, directory entries, extents in file-system blocks); src/toc/ turns it
// into a TOC.
#include "ext2toc.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

extern "C" {
#include <e2p/e2p.h>
#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
}

namespace xcopy {
namespace {

// CPU time of the calling thread, ms.
double ThreadCpuMs() {
  struct timespec ts {};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// ---------------------------------------------------------------------------------------------
// Sources of bytes: an image file (or block device), or a LUN through libiscsi. Read() is
// synchronous; Start() and Service() pipeline many reads (the I/O thread's, see Reader).

// The reads (docs/toc.md, "Reads"; class Reader below).
constexpr uint64_t kPage = 4096;
constexpr uint64_t kMaxTransfer = 1 << 20;           // bytes of one READ at most (as the synchronous reads split)
constexpr uint64_t kRunMax = kMaxTransfer - 2 * kPage;  // of one planned run: its READ, aligned, fits
constexpr uint64_t kGapPages = 4;      // planned runs this close are read as one
constexpr int kDepth = 16;             // READs in flight
constexpr size_t kPlanSearch = 64;     // planned runs a miss looks through

struct IoReq {
  uint64_t off = 0, len = 0;  // absolute device bytes (off and len multiples of Align(), or reaching the end)
  uint8_t* buf = nullptr;
  bool ok = false;
  bool retry = false;  // the pipelined read failed: read it again with Read() (its retries, its message)
  std::string error;
  struct scsi_iovec iov {};
  void* source = nullptr;
  void* owner = nullptr;
};

class Source {
 public:
  virtual ~Source() = default;
  // Lets go of the device. Called at the end of the job, on the worker thread: an iSCSI logout
  // waits for the target, which may be served by this very process's event loop (the
  // destructor runs on the main thread, after OnOK).
  virtual void Close() {}
  // Reads exactly `len` bytes at absolute byte `off` (off + len <= Size()); false with `err` set.
  virtual bool Read(uint64_t off, size_t len, uint8_t* out, std::string* err) = 0;
  // Starts a read; it completes now or in a later Service(). By default: Read() now.
  virtual void Start(IoReq* r) {
    r->ok = Read(r->off, r->len, r->buf, &r->error);
    done_.push_back(r);
  }
  // Waits up to `timeoutMs` for started reads to complete (or for `wakeFd` to be readable) and
  // moves the completed ones to `done`.
  virtual void Service(int wakeFd, int timeoutMs, std::vector<IoReq*>* done) {
    done->insert(done->end(), done_.begin(), done_.end());
    done_.clear();
  }
  // Device reads start and end at multiples of this (or at the device's end).
  virtual uint64_t Align() const { return 1; }
  // Reads worth having in flight at once.
  virtual int Depth() const { return 1; }
  uint64_t Size() const { return size_; }
  uint32_t BlockSize() const { return blockSize_; }

 protected:
  uint64_t size_ = 0;
  uint32_t blockSize_ = 512;
  std::vector<IoReq*> done_;
};

class FileSource : public Source {
 public:
  ~FileSource() override {
    if (fd_ >= 0) close(fd_);
  }
  bool Open(const std::string& path, uint32_t blockSize, std::string* err) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return Fail(err, "open", path);
    struct stat st {};
    if (fstat(fd_, &st) != 0) return Fail(err, "fstat", path);
    if (S_ISBLK(st.st_mode)) {
      uint64_t bytes = 0;
      if (ioctl(fd_, BLKGETSIZE64, &bytes) != 0) return Fail(err, "ioctl(BLKGETSIZE64)", path);
      size_ = bytes;
    } else {
      size_ = static_cast<uint64_t>(st.st_size);
    }
    blockSize_ = blockSize;
    return true;
  }
  bool Read(uint64_t off, size_t len, uint8_t* out, std::string* err) override {
    while (len > 0) {
      ssize_t n = pread(fd_, out, len, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        *err = "reading " + std::to_string(len) + " bytes at byte " + std::to_string(off) + ": " +
               (n < 0 ? strerror(errno) : "end of file");
        return false;
      }
      out += n;
      off += static_cast<uint64_t>(n);
      len -= static_cast<size_t>(n);
    }
    return true;
  }

 private:
  bool Fail(std::string* err, const char* call, const std::string& path) {
    *err = std::string(call) + " " + path + ": " + strerror(errno);
    return false;
  }
  int fd_ = -1;
};

struct IscsiParams {
  std::string initiator, portal, target, user, password, targetUser, targetPassword;
  int lun = 0;
  int headerDigest = -1;  // libiscsi's enum iscsi_header_digest, -1: libiscsi's default
  int timeoutSec = 30;
};

class IscsiSource : public Source {
 public:
  ~IscsiSource() override { Close(); }
  void Close() override {
    if (ctx_ != nullptr) {
      if (loggedIn_) iscsi_logout_sync(ctx_);
      iscsi_destroy_context(ctx_);
      ctx_ = nullptr;
    }
  }
  bool Open(const IscsiParams& p, std::string* err) {
    lun_ = p.lun;
    ctx_ = iscsi_create_context(p.initiator.c_str());
    if (ctx_ == nullptr) {
      *err = "iscsi_create_context failed";
      return false;
    }
    iscsi_set_targetname(ctx_, p.target.c_str());
    iscsi_set_session_type(ctx_, ISCSI_SESSION_NORMAL);
    if (p.headerDigest >= 0) iscsi_set_header_digest(ctx_, static_cast<enum iscsi_header_digest>(p.headerDigest));
    if (!p.user.empty()) iscsi_set_initiator_username_pwd(ctx_, p.user.c_str(), p.password.c_str());
    if (!p.targetUser.empty()) iscsi_set_target_username_pwd(ctx_, p.targetUser.c_str(), p.targetPassword.c_str());
    iscsi_set_timeout(ctx_, p.timeoutSec);
    if (iscsi_full_connect_sync(ctx_, p.portal.c_str(), p.lun) != 0) {
      *err = std::string("connecting to ") + p.portal + ": " + iscsi_get_error(ctx_);
      return false;
    }
    loggedIn_ = true;
    struct scsi_task* t = Retry([&] { return iscsi_readcapacity16_sync(ctx_, lun_); });
    if (t == nullptr || t->status != SCSI_STATUS_GOOD) return TaskFail(t, "READ CAPACITY (16)", err);
    auto* rc = static_cast<struct scsi_readcapacity16*>(scsi_datain_unmarshall(t));
    if (rc == nullptr || rc->block_length == 0) {
      scsi_free_scsi_task(t);
      *err = "READ CAPACITY (16): parameter data did not decode";
      return false;
    }
    blockSize_ = rc->block_length;
    size_ = (rc->returned_lba + 1) * static_cast<uint64_t>(rc->block_length);
    scsi_free_scsi_task(t);
    return true;
  }

  bool Read(uint64_t off, size_t len, uint8_t* out, std::string* err) override {
    // READ (16) of the LUN blocks covering [off, off + len), at most kMaxTransfer bytes each.
    const uint64_t bs = blockSize_;
    uint64_t end = off + len;
    uint64_t first = off / bs;
    uint64_t last = (end + bs - 1) / bs;  // exclusive
    uint64_t chunkBlocks = kMaxTransfer / bs == 0 ? 1 : kMaxTransfer / bs;
    for (uint64_t lba = first; lba < last; lba += chunkBlocks) {
      uint64_t n = last - lba < chunkBlocks ? last - lba : chunkBlocks;
      struct scsi_task* t = Retry([&] {
        return iscsi_read16_sync(ctx_, lun_, lba, static_cast<uint32_t>(n * bs), static_cast<int>(bs), 0, 0, 0, 0, 0);
      });
      if (t == nullptr || t->status != SCSI_STATUS_GOOD) {
        return TaskFail(t, ("READ (16) of " + std::to_string(n) + " blocks at LBA " + std::to_string(lba)).c_str(), err);
      }
      if (static_cast<uint64_t>(t->datain.size) < n * bs) {
        scsi_free_scsi_task(t);
        *err = "READ (16) at LBA " + std::to_string(lba) + ": short data";
        return false;
      }
      // Copy the part of [lba*bs, (lba+n)*bs) that lies inside [off, end).
      uint64_t from = lba * bs > off ? lba * bs : off;
      uint64_t to = (lba + n) * bs < end ? (lba + n) * bs : end;
      memcpy(out + (from - off), t->datain.data + (from - lba * bs), to - from);
      scsi_free_scsi_task(t);
    }
    return true;
  }

  // READ (16) of r's blocks straight into r->buf, several at once: a loopback target answers a
  // lone READ in ~0.1-0.3 ms, so a walk that waited for each would wait most of the time.
  void Start(IoReq* r) override {
    const uint64_t bs = blockSize_;
    // A window larger than one READ (Ext2WalkOptions.windowBytes): read now, in READs of 1 MiB.
    if (r->len > kMaxTransfer) return Source::Start(r);
    r->source = this;
    r->iov.iov_base = r->buf;
    r->iov.iov_len = r->len;
    struct scsi_task* t = iscsi_read16_iov_task(ctx_, lun_, r->off / bs, static_cast<uint32_t>(r->len), static_cast<int>(bs), 0, 0, 0,
                                                0, 0, OnRead, r, &r->iov, 1);
    if (t == nullptr) {
      r->ok = false;
      r->retry = true;
      done_.push_back(r);
      return;
    }
    inFlight_++;
  }

  void Service(int wakeFd, int timeoutMs, std::vector<IoReq*>* done) override {
    if (inFlight_ > 0) {
      int events = iscsi_which_events(ctx_);
      struct pollfd fds[2] = {{iscsi_get_fd(ctx_), static_cast<short>(events), 0}, {wakeFd, POLLIN, 0}};
      // which_events 0: libiscsi is between states (a reconnect); ask again soon.
      int n = poll(fds, 2, events == 0 ? 10 : timeoutMs);
      if (n > 0 && (fds[1].revents & POLLIN)) {
        uint64_t v;
        if (read(wakeFd, &v, sizeof v) < 0) v = 0;
      }
      // revents 0 still runs libiscsi's timeout scan.
      iscsi_service(ctx_, n > 0 ? fds[0].revents : 0);
    }
    Source::Service(wakeFd, timeoutMs, done);
  }

  uint64_t Align() const override { return blockSize_; }
  int Depth() const override { return kDepth; }

 private:
  static void OnRead(struct iscsi_context*, int status, void* data, void* priv) {
    auto* r = static_cast<IoReq*>(priv);
    auto* t = static_cast<struct scsi_task*>(data);
    auto* self = static_cast<IscsiSource*>(r->source);
    r->ok = status == SCSI_STATUS_GOOD && t != nullptr &&
            !(t->residual_status == SCSI_RESIDUAL_UNDERFLOW && t->residual > 0);
    r->retry = !r->ok;
    if (t != nullptr) scsi_free_scsi_task(t);
    self->inFlight_--;
    self->done_.push_back(r);
  }

  int inFlight_ = 0;

  // A few tries on UNIT ATTENTION, BUSY and TASK SET FULL (the target may report a reset).
  template <typename F>
  struct scsi_task* Retry(F f) {
    for (int i = 0;; i++) {
      struct scsi_task* t = f();
      if (t == nullptr || i == 3) return t;
      bool again = t->status == SCSI_STATUS_BUSY || t->status == SCSI_STATUS_TASK_SET_FULL ||
                   (t->status == SCSI_STATUS_CHECK_CONDITION && t->sense.key == SCSI_SENSE_UNIT_ATTENTION);
      if (!again) return t;
      scsi_free_scsi_task(t);
      usleep(100000 * (i + 1));
    }
  }
  bool TaskFail(struct scsi_task* t, const char* what, std::string* err) {
    if (t == nullptr) {
      *err = std::string(what) + ": " + iscsi_get_error(ctx_);
    } else {
      char buf[160];
      if (t->status == SCSI_STATUS_CHECK_CONDITION) {
        snprintf(buf, sizeof buf, ": CHECK CONDITION, sense key %d, ASC/ASCQ %02Xh/%02Xh", static_cast<int>(t->sense.key),
                 (t->sense.ascq >> 8) & 0xff, t->sense.ascq & 0xff);
      } else {
        snprintf(buf, sizeof buf, ": status %d (%s)", t->status, iscsi_get_error(ctx_));
      }
      *err = std::string(what) + buf;
      scsi_free_scsi_task(t);
    }
    return false;
  }
  struct iscsi_context* ctx_ = nullptr;
  int lun_ = 0;
  bool loggedIn_ = false;
};

// ---------------------------------------------------------------------------------------------
// The reads of a walk (docs/toc.md, "Reads"): a cache of 4 KiB pages of the file system in front
// of the source, filled by an I/O thread of the job's own. The walk says in advance what it will
// read, in the order it will read it (Plan: the inode tables, then the directory blocks, then
// the map blocks); the I/O thread reads that plan ahead of the walk — several READs in flight,
// neighbouring runs joined — up to a bound of bytes not yet read by the walk, while the walk
// works through what has arrived. A read outside the plan (a miss) takes the planned run holding
// it, or else the window around it, ahead of the plan. Pages the walk has read are dropped
// least recently used first once the cache holds more than its budget.

class Reader {
 public:
  Reader(Source* src, uint64_t base, uint64_t windowBytes, uint64_t budgetBytes)
      : src_(src),
        base_(base),
        fsBytes_(src->Size() - base),
        windowPages_(windowBytes / kPage == 0 ? 1 : windowBytes / kPage),
        budget_(budgetBytes),
        lookahead_(budgetBytes / 2) {
    pages_ = (fsBytes_ + kPage - 1) / kPage;
    wakeFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    io_ = std::thread([this] { IoLoop(); });
  }

  ~Reader() {
    Stop();
    for (auto& [p, c] : map_) {
      (void)p;
      if (c->refs-- == 1) delete c;
    }
    if (wakeFd_ >= 0) close(wakeFd_);
  }

  // Reads `len` bytes at file-system byte `off` (relative to the start of the file system).
  bool Read(uint64_t off, size_t len, uint8_t* out) {
    if (off > fsBytes_ || len > fsBytes_ - off) {
      error = "read of " + std::to_string(len) + " bytes at file-system byte " + std::to_string(off) +
              " lies beyond the end of the device (" + std::to_string(src_->Size()) +
              " bytes, the file system starting at byte " + std::to_string(base_) + ")";
      return false;
    }
    std::unique_lock<std::mutex> lk(mu_);
    while (len > 0) {
      uint64_t p = off / kPage;
      Chunk* c = Find(p);
      if (c == nullptr) c = Miss(p, !noWait_);
      if (c == nullptr) {
        // Neither read nor planned (NoWait): noted for the next plan, zeros meanwhile.
        wanted_.emplace_back(p * kPage, kPage);
        missed_ = true;
        size_t n = std::min<uint64_t>(len, kPage - off % kPage);
        memset(out, 0, n);
        out += n;
        off += n;
        len -= n;
        continue;
      }
      while (c->state == Chunk::kQueued || c->state == Chunk::kReading) cv_.wait(lk);
      Touch(c);
      if (c->state == Chunk::kFailed) {
        error = c->error;
        return false;
      }
      uint64_t in = off - c->p0 * kPage;
      uint64_t avail = c->bytes - in;
      size_t n = avail < len ? static_cast<size_t>(avail) : len;
      memcpy(out, c->data() + in, n);
      out += n;
      off += n;
      len -= n;
    }
    return true;
  }

  // The byte ranges the walk will read next (file-system bytes), in the order it will read them.
  void Plan(const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      for (auto [off, len] : ranges) {
        if (len == 0 || off >= fsBytes_) continue;
        uint64_t p0 = off / kPage;
        uint64_t p1 = (std::min(off + len, fsBytes_) + kPage - 1) / kPage;
        if (!planned_.empty()) {
          // Joined with the run before it when near and not too long.
          Run& last = planned_.back();
          if (p0 >= last.p0 && p0 <= last.p1 + kGapPages && (std::max(p1, last.p1) - last.p0) * kPage <= kRunMax) {
            last.p1 = std::max(p1, last.p1);
            continue;
          }
        }
        for (uint64_t a = p0; a < p1; a += kRunMax / kPage) planned_.push_back({a, std::min(p1, a + kRunMax / kPage)});
      }
    }
    ioCv_.notify_one();
  }

  std::string error;  // the last failed Read's (the walk's thread only)

  // While on, a read of a page neither cached nor planned gives zeros at once, and the page is
  // noted (Missed, Wanted) for the walk to plan, and what it read to be read again: a map whose
  // blocks point to more blocks (extent tree levels, double and triple indirect blocks) is read
  // level by level, each level of every such map planned at once, not a read waited for per block.
  void NoWait(bool on) { noWait_ = on; }
  bool Missed() {
    bool m = missed_;
    missed_ = false;
    return m;
  }
  std::vector<std::pair<uint64_t, uint64_t>> Wanted() { return std::move(wanted_); }

  // Ends the I/O thread once its reads in flight are done.
  void Stop() {
    if (!io_.joinable()) return;
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      planned_.clear();
    }
    ioCv_.notify_one();
    Wake();
    io_.join();
  }

  struct Stats {
    uint64_t reads = 0, bytes = 0, misses = 0;
    double cpuMs = 0;  // the I/O thread's
  };
  Stats stats() {
    std::lock_guard<std::mutex> lk(mu_);
    return stats_;
  }

 private:
  struct Chunk {
    enum State { kQueued, kReading, kReady, kFailed } state = kQueued;
    uint64_t p0 = 0, p1 = 0;  // its pages
    uint64_t bytes = 0;       // of file-system data from page p0 (the last page may be short)
    std::unique_ptr<uint8_t[]> buf;
    uint64_t skip = 0;  // bytes of buf before page p0 (device alignment)
    bool touched = false;
    bool pooled = false;  // buf is kPoolBytes long, from pool_
    int refs = 0;  // pages mapped to it
    std::list<Chunk*>::iterator lru;
    IoReq req;
    std::string error;
    const uint8_t* data() const { return buf.get() + skip; }
  };
  struct Run {
    uint64_t p0, p1;
  };

  Chunk* Find(uint64_t p) {
    auto it = map_.find(p);
    return it == map_.end() ? nullptr : it->second;
  }

  // A chunk for pages [p0, p1), none of them mapped yet: mapped now, read later.
  Chunk* Make(uint64_t p0, uint64_t p1) {
    auto* c = new Chunk;
    c->p0 = p0;
    c->p1 = p1;
    uint64_t start = base_ + p0 * kPage;
    uint64_t end = base_ + std::min(p1 * kPage, fsBytes_);
    uint64_t a = src_->Align();
    uint64_t s0 = start - start % a;
    uint64_t s1 = std::min((end + a - 1) / a * a, src_->Size());
    c->bytes = end - start;
    c->skip = start - s0;
    c->pooled = s1 - s0 > kPoolBytes / 4 && s1 - s0 <= kPoolBytes;
    c->buf = c->pooled ? Alloc() : std::unique_ptr<uint8_t[]>(new uint8_t[s1 - s0]);
    c->req.off = s0;
    c->req.len = s1 - s0;
    c->req.buf = c->buf.get();
    c->req.owner = c;
    for (uint64_t p = p0; p < p1; p++) map_[p] = c;
    c->refs = static_cast<int>(p1 - p0);
    unconsumed_ += c->req.len;
    return c;
  }

  // Page p is not in the cache: the planned run holding it, or (`window`) the window around it,
  // now; nullptr when neither.
  Chunk* Miss(uint64_t p, bool window) {
    size_t n = std::min(planned_.size(), kPlanSearch);
    for (size_t i = 0; i < n; i++) {
      Run r = planned_[i];
      if (p < r.p0 || p >= r.p1) continue;
      planned_.erase(planned_.begin() + static_cast<std::ptrdiff_t>(i));
      // Its unmapped pages around p become one chunk; the rest stays planned.
      uint64_t a = p, b = p + 1;
      while (a > r.p0 && Find(a - 1) == nullptr) a--;
      while (b < r.p1 && Find(b) == nullptr) b++;
      if (b < r.p1) planned_.push_front({b, r.p1});
      if (a > r.p0) planned_.push_front({r.p0, a});
      return Urgent(Make(a, b));
    }
    if (!window) return nullptr;
    stats_.misses++;
    uint64_t w0 = p - p % windowPages_;
    uint64_t w1 = std::min(w0 + windowPages_, pages_);
    uint64_t a = p, b = p + 1;
    while (a > w0 && Find(a - 1) == nullptr) a--;
    while (b < w1 && Find(b) == nullptr) b++;
    return Urgent(Make(a, b));
  }

  Chunk* Urgent(Chunk* c) {
    urgent_.push_back(c);
    ioCv_.notify_one();
    if (ioPolling_) Wake();
    return c;
  }

  void Touch(Chunk* c) {
    if (c->touched) {
      lru_.splice(lru_.begin(), lru_, c->lru);
      return;
    }
    c->touched = true;
    lru_.push_front(c);
    c->lru = lru_.begin();
    bool was = unconsumed_ >= lookahead_;
    unconsumed_ -= c->req.len;
    if (was && unconsumed_ < lookahead_ && !planned_.empty()) {
      ioCv_.notify_one();
      if (ioPolling_) Wake();
    }
  }

  void Wake() {
    uint64_t one = 1;
    if (write(wakeFd_, &one, sizeof one) < 0) {
      // Already readable (the counter is not read until the I/O thread wakes): nothing to do.
    }
  }

  // The next planned pages not in the cache, as a chunk; nullptr when a run was all cached.
  Chunk* FromPlan() {
    Run r = planned_.front();
    planned_.pop_front();
    uint64_t a = r.p0;
    while (a < r.p1 && Find(a) != nullptr) a++;
    if (a == r.p1) return nullptr;
    uint64_t b = a + 1;
    while (b < r.p1 && Find(b) == nullptr) b++;
    if (b < r.p1) planned_.push_front({b, r.p1});
    return Make(a, b);
  }

  // Least recently read first, while over the budget; never a chunk the walk has not read.
  void Evict() {
    while (resident_ > budget_ && !lru_.empty()) {
      Chunk* c = lru_.back();
      lru_.pop_back();
      resident_ -= c->req.len;
      for (uint64_t p = c->p0; p < c->p1; p++) {
        auto it = map_.find(p);
        if (it != map_.end() && it->second == c) map_.erase(it);
      }
      if (c->pooled && pool_.size() < kPoolMax) pool_.push_back(std::move(c->buf));
      delete c;
    }
  }

  // Buffers of planned runs come back when evicted: fresh memory costs a page fault per page.
  static constexpr uint64_t kPoolBytes = kMaxTransfer;
  static constexpr size_t kPoolMax = 64;
  std::unique_ptr<uint8_t[]> Alloc() {
    if (pool_.empty()) return std::unique_ptr<uint8_t[]>(new uint8_t[kPoolBytes]);
    std::unique_ptr<uint8_t[]> b = std::move(pool_.back());
    pool_.pop_back();
    return b;
  }

  void IoLoop() {
    double cpu0 = ThreadCpuMs();
    std::vector<Chunk*> start;
    std::vector<IoReq*> done;
    int inFlight = 0;
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      while (inFlight + static_cast<int>(start.size()) < src_->Depth()) {
        Chunk* c = nullptr;
        if (!urgent_.empty()) {
          c = urgent_.front();
          urgent_.pop_front();
        } else if (!planned_.empty() && unconsumed_ < lookahead_ && !stop_) {
          c = FromPlan();
          if (c == nullptr) continue;
        } else {
          break;
        }
        c->state = Chunk::kReading;
        start.push_back(c);
      }
      if (start.empty() && inFlight == 0) {
        if (stop_) {
          stats_.cpuMs = ThreadCpuMs() - cpu0;
          return;
        }
        ioCv_.wait(lk, [&] { return stop_ || !urgent_.empty() || (!planned_.empty() && unconsumed_ < lookahead_); });
        continue;
      }
      ioPolling_ = true;
      lk.unlock();
      for (Chunk* c : start) src_->Start(&c->req);
      inFlight += static_cast<int>(start.size());
      start.clear();
      src_->Service(wakeFd_, 1000, &done);
      for (IoReq* r : done) {
        if (!r->ok && r->retry) r->ok = src_->Read(r->off, static_cast<size_t>(r->len), r->buf, &r->error);
      }
      lk.lock();
      ioPolling_ = false;
      for (IoReq* r : done) {
        auto* c = static_cast<Chunk*>(r->owner);
        inFlight--;
        c->state = r->ok ? Chunk::kReady : Chunk::kFailed;
        if (!r->ok) c->error = r->error;
        stats_.reads++;
        stats_.bytes += r->len;
        resident_ += r->len;
      }
      if (!done.empty()) cv_.notify_all();
      done.clear();
      Evict();
    }
  }

  Source* src_;
  uint64_t base_;
  uint64_t fsBytes_;
  uint64_t pages_ = 0;
  uint64_t windowPages_;
  uint64_t budget_;
  uint64_t lookahead_;
  int wakeFd_ = -1;

  std::mutex mu_;
  std::condition_variable cv_;    // the walk waits for a chunk
  std::condition_variable ioCv_;  // the I/O thread waits for work
  std::unordered_map<uint64_t, Chunk*> map_;
  std::deque<Run> planned_;
  std::deque<Chunk*> urgent_;
  std::list<Chunk*> lru_;  // chunks the walk has read, most recent first
  std::vector<std::unique_ptr<uint8_t[]>> pool_;
  uint64_t unconsumed_ = 0;  // bytes read or being read that the walk has not read yet
  uint64_t resident_ = 0;
  bool ioPolling_ = false;
  bool stop_ = false;
  bool noWait_ = false, missed_ = false;  // the walk's thread only
  std::vector<std::pair<uint64_t, uint64_t>> wanted_;
  Stats stats_;
  std::thread io_;
};

// ---------------------------------------------------------------------------------------------
// The io_manager (lib/ext2fs/ext2_io.h): read-only; the channel's name carries the job's Reader
// ("xcopy-toc:<address>"), so concurrent jobs share no state.

constexpr const char* kIoName = "xcopy-toc";
io_manager Manager();

errcode_t IoOpen(const char* name, int flags, io_channel* channel) {
  void* reader = nullptr;
  if (name == nullptr || sscanf(name, "xcopy-toc:%p", &reader) != 1 || reader == nullptr) return EXT2_ET_BAD_DEVICE_NAME;
  if (flags & IO_FLAG_RW) return EROFS;
  io_channel io = nullptr;
  errcode_t err = ext2fs_get_memzero(sizeof(struct struct_io_channel), &io);
  if (err) return err;
  err = ext2fs_get_mem(strlen(name) + 1, &io->name);
  if (err) {
    ext2fs_free_mem(&io);
    return err;
  }
  strcpy(io->name, name);
  io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
  io->manager = Manager();
  io->block_size = 1024;
  io->refcount = 1;
  io->private_data = reader;
  *channel = io;
  return 0;
}

errcode_t IoClose(io_channel channel) {
  if (--channel->refcount > 0) return 0;
  ext2fs_free_mem(&channel->name);
  ext2fs_free_mem(&channel);
  return 0;
}

errcode_t IoSetBlksize(io_channel channel, int blksize) {
  channel->block_size = blksize;
  return 0;
}

errcode_t IoRead64(io_channel channel, unsigned long long block, int count, void* data) {
  auto* reader = static_cast<Reader*>(channel->private_data);
  size_t len = count < 0 ? static_cast<size_t>(-count) : static_cast<size_t>(count) * channel->block_size;
  uint64_t off = block * static_cast<uint64_t>(channel->block_size);
  if (block > UINT64_MAX / static_cast<uint64_t>(channel->block_size)) {
    reader->error = "block " + std::to_string(block) + " is beyond any device";
    return EXT2_ET_SHORT_READ;
  }
  if (!reader->Read(off, len, static_cast<uint8_t*>(data))) return EXT2_ET_SHORT_READ;
  return 0;
}

errcode_t IoRead(io_channel channel, unsigned long block, int count, void* data) {
  return IoRead64(channel, block, count, data);
}

errcode_t IoWrite(io_channel, unsigned long, int, const void*) { return EROFS; }
errcode_t IoWrite64(io_channel, unsigned long long, int, const void*) { return EROFS; }
errcode_t IoWriteByte(io_channel, unsigned long, int, const void*) { return EROFS; }
errcode_t IoFlush(io_channel) { return 0; }
errcode_t IoSetOption(io_channel, const char*, const char*) { return EXT2_ET_INVALID_ARGUMENT; }

struct struct_io_manager tocIoManager = {
    EXT2_ET_MAGIC_IO_MANAGER,
    kIoName,
    IoOpen,
    IoClose,
    IoSetBlksize,
    IoRead,
    IoWrite,
    IoFlush,
    IoWriteByte,
    IoSetOption,
    nullptr,  // get_stats
    IoRead64,
    IoWrite64,
    nullptr,  // discard
    nullptr,  // cache_readahead
    nullptr,  // zeroout
    {},
};

io_manager Manager() { return &tocIoManager; }


// ---------------------------------------------------------------------------------------------
// The walk, in the order e2fsck reads a file system (e2fsprogs e2fsck/pass1.c, pass2.c): the inode
// tables in table order (ext2fs_open_inode_scan, ext2fs_get_next_inode_full), mapping each inode
// whose map is all in the inode as it comes; then the directories; then the maps that need
// blocks of their own (extent-tree nodes, indirect blocks) and the slow symlinks' targets. Each
// step plans its reads before it makes them (Reader::Plan). What is found wrong is kept with the
// inode it belongs to and raised only when the directory tree reaches that inode, with its path:
// the tree is walked last, breadth first from the root, over what was read — the same order,
// result and errors as reading inode by inode along the tree, without waiting for each read.

// A failure kept for later: "inode N (path): <rest>" or "directory inode N (path): <rest>".
struct Pending {
  std::string rest;
  std::string kind;  // "fs" (libext2fs refused a structure) or "io" (the source)
  long code = 0;     // errcode_t, 0 when none
  uint64_t block = 0;
  bool hasBlock = false;
  bool directory = false;
};

// A failure of the walk, with what it names.
struct WalkError {
  std::string message;
  std::string kind;  // "fs" (libext2fs refused a structure), "unsupported", "io" (the source), "open", "connect"
  long code = 0;     // errcode_t, 0 when none
  uint32_t ino = 0;
  uint64_t block = 0;
  bool hasBlock = false;
};

// One inode: its attributes, where its runs and bytes are, what was found wrong with it.
struct Rec {
  uint32_t ino = 0, mode = 0, uid = 0, gid = 0, links = 0, flags = 0, rdev = 0, mtimeNsec = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint32_t extStart = 0, extCount = 0;    // into Walk::extents (4 doubles each)
  uint32_t metaStart = 0, metaCount = 0;  // into Walk::meta (one block each)
  uint32_t blobStart = 0, blobLen = 0;    // symlink target or inline data, in Walk::blob
  uint8_t bits = 0;
  int32_t err = -1;  // into Walk::pending_
  int32_t dir = -1;  // into Walk::dirs_, once the directory was read
  int32_t out = -1;  // its place in Walk::order, once reached
  uint32_t bytesAt = UINT32_MAX;  // its inode's bytes in Walk::ibytes_ (directories, maps read later)
};
// Bits of Rec::bits; kMapped is the walk's own (not in the result).
enum : uint8_t { kInline = 1, kFastSymlink = 2, kTarget = 4, kInlineData = 8, kDevice = 16, kMapped = 32, kLater = 64 };
// In a batch: a record not complete yet (its map or target is read later, or it failed).
constexpr uint32_t kPendingBit = 128;
constexpr uint8_t kResultBits = kInline | kFastSymlink | kTarget | kInlineData | kDevice;

// The result's strides (src/native/index.ts, Ext2RawToc): numbers per inode, per link.
constexpr size_t kInodeStride = 19;
constexpr size_t kLinkStride = 7;
constexpr size_t kBitsWord = 18;  // Ext2InodeField.bits

// Records the scan kept, complete, handed to JS while the walk goes on (the TOC's entries are
// made of them meanwhile): the result's words of each (Ext2InodeField; kPendingBit in the bits
// of one not complete yet), their runs, map blocks and bytes, and the place of the first among
// the records kept.
struct Batch {
  uint32_t first = 0;
  std::vector<uint32_t> words;
  std::vector<double> extents, meta;
  std::string blob;
};
constexpr size_t kBatch = 4096;
// Levels of maps read later planned one by one (then the rest is read as it comes): an extent
// tree of depth 5, a triple-indirect map.
constexpr int kLevels = 5;

// A directory entry of the result: the names are in Walk::names, joined by '/'.
struct Link {
  uint32_t parent, ino, type, nameOff, nameLen;
  int32_t parentOut, out;  // places in Walk::order (-1: none)
};

class Walk {
 public:
  Walk(ext2_filsys fs, Reader* reader) : fs_(fs), reader_(reader) {
    istride_ = std::min<size_t>(EXT2_INODE_SIZE(fs->super), sizeof(struct ext2_inode_large));
  }
  // Before the file system is closed: libext2fs reads inodes itself again.
  void Detach() {
    fs_->read_inode = nullptr;
    fs_->priv_data = nullptr;
  }

  bool Run() {
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    auto t0 = Clock::now();
    fs_->priv_data = this;
    fs_->read_inode = StoredInode;
    PlanInodeTables();
    Scan();
    auto t1 = Clock::now();
    Plan(later_, [this](size_t i, std::vector<std::pair<uint64_t, uint64_t>>* out) { PlanLater(i, out); });
    for (size_t i : dirsNow_) ReadDir(recs_[i]);
    auto t2 = Clock::now();
    // The maps read later, level by level (Reader::NoWait): each round maps what it can from
    // what was read, plans what the others lacked, and tries those again; the last round waits.
    std::vector<size_t> dirsLater, todo;
    for (size_t i : later_) {
      if (recs_[i].err < 0) todo.push_back(i);
    }
    for (int round = 0; !todo.empty(); round++) {
      reader_->NoWait(round < kLevels);
      std::vector<size_t> again;
      for (size_t i : todo) {
        Rec& r = recs_[i];
        size_t noted = pending_.size();
        int32_t e = -1;
        if (!(r.bits & kMapped)) {
          e = Map(r, Inode(i));
          if (reader_->Missed()) {
            // Read with zeros for what was not there: not a map, nor a failure. Its next levels
            // (all of them, for an extent tree) are planned, and it is mapped again.
            pending_.resize(noted);
            extents.resize(static_cast<size_t>(r.extStart) * 4);
            meta.resize(r.metaStart);
            r.extCount = r.metaCount = 0;
            if (Inode(i).i_flags & EXT4_EXTENTS_FL) ExtentLevels(i);
            again.push_back(i);
            continue;
          }
          if (e < 0) r.bits |= kMapped;
        }
        if (e < 0 && LINUX_S_ISLNK(r.mode)) {
          size_t kept = blob.size();
          e = SlowSymlink(r, Inode(i));
          if (reader_->Missed()) {
            pending_.resize(noted);
            blob.resize(kept);
            r.bits &= static_cast<uint8_t>(~kTarget);
            again.push_back(i);
            continue;
          }
        }
        r.err = e;
        if (e < 0 && LINUX_S_ISDIR(r.mode)) dirsLater.push_back(i);
      }
      reader_->NoWait(false);
      ext2fs_flush_icache(fs_);  // nothing read with zeros stays in libext2fs's inode cache
      reader_->Plan(reader_->Wanted());
      todo.swap(again);
    }
    Plan(dirsLater, [this](size_t i, std::vector<std::pair<uint64_t, uint64_t>>* out) { PlanRuns(recs_[i], out, UINT64_MAX); });
    for (size_t i : dirsLater) ReadDir(recs_[i]);
    auto t3 = Clock::now();
    bool ok = Tree();
    auto t4 = Clock::now();
    phases = {ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4)};
    return ok;
  }

  std::vector<const Rec*> order;  // the inodes reached, in the order first reached
  std::vector<Link> links;
  std::string names;  // the links' names, joined by '/' (the root's is empty)
  std::string blob;   // symlink targets and inline data
  std::vector<double> extents;  // lblk, pblk, len, uninit (0/1) per extent, file-system blocks
  std::vector<double> meta;     // extent-tree and indirect blocks, per inode
  WalkError error;
  // Milliseconds: the inode tables, the directories, the maps read later, the tree.
  std::vector<double> phases;
  size_t scanned() const { return recs_.size(); }

 private:
  // ---- what is kept --------------------------------------------------------------------------

  int32_t Note(Pending p) {
    pending_.push_back(std::move(p));
    return static_cast<int32_t>(pending_.size() - 1);
  }

  int32_t Err(errcode_t err, const std::string& what) {
    bool io = err == EXT2_ET_SHORT_READ && !reader_->error.empty();
    return Note({what + ": " + error_message(err) + (io ? " (" + reader_->error + ")" : ""), io ? "io" : "fs", err});
  }

  int32_t ErrBlock(const std::string& what, uint64_t block) { return Note({what, "fs", 0, block, true}); }

  bool Raise(int32_t p, uint32_t ino, const std::string& path) {
    const Pending& e = pending_[static_cast<size_t>(p)];
    error = {std::string(e.directory ? "directory inode " : "inode ") + std::to_string(ino) + " (" + path + "): " + e.rest,
             e.kind, e.code, ino, e.block, e.hasBlock};
    return false;
  }

  // The inodes the scan kept, by number (the scan goes in increasing order).
  Rec* Find(uint32_t ino) {
    size_t i = Index(ino);
    return i == SIZE_MAX ? nullptr : &recs_[i];
  }

  // The place of a kept inode: from a table by number when the file system has up to 4M inodes
  // (16 MiB at most), else by binary search.
  size_t Index(uint32_t ino) const {
    if (!byIno_.empty()) return ino < byIno_.size() && byIno_[ino] != 0 ? byIno_[ino] - 1 : SIZE_MAX;
    auto it = std::lower_bound(inos_.begin(), inos_.end(), ino);
    return it != inos_.end() && *it == ino ? static_cast<size_t>(it - inos_.begin()) : SIZE_MAX;
  }

  // The inode of a record whose bytes were kept (directories, maps read later).
  struct ext2_inode_large Inode(size_t i) const {
    struct ext2_inode_large inode;
    memset(&inode, 0, sizeof inode);
    memcpy(&inode, &ibytes_[static_cast<size_t>(recs_[i].bytesAt) * istride_], istride_);
    return inode;
  }

  // fs->read_inode (lib/ext2fs/inode.c, ext2fs_read_inode2): libext2fs's own reads of an inode
  // (in its iterators) get the copy the scan made, checked then; any other falls through.
  static errcode_t StoredInode(ext2_filsys fs, ext2_ino_t ino, struct ext2_inode* inode) {
    auto* w = static_cast<Walk*>(fs->priv_data);
    if (w->scanning_ != nullptr && ino == w->scanningIno_) {
      memcpy(inode, w->scanning_, sizeof(struct ext2_inode));
      return 0;
    }
    size_t i = w->Index(ino);
    if (i == SIZE_MAX || w->recs_[i].bytesAt == UINT32_MAX) return EXT2_ET_CALLBACK_NOTHANDLED;
    memcpy(inode, &w->ibytes_[static_cast<size_t>(w->recs_[i].bytesAt) * w->istride_], sizeof(struct ext2_inode));
    return 0;
  }

  // ---- reads ahead ---------------------------------------------------------------------------

  bool InFs(uint64_t block, uint64_t count = 1) const {
    uint64_t total = ext2fs_blocks_count(fs_->super);
    return block >= fs_->super->s_first_data_block && block < total && count <= total - block;
  }

  // The inode tables' used parts, in table order (what the scan reads: lib/ext2fs/inode.c,
  // get_next_blockgroup: the unused tail of each table is skipped with uninit_bg/metadata_csum).
  void PlanInodeTables() {
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    const uint64_t bs = fs_->blocksize;
    const uint32_t ipg = EXT2_INODES_PER_GROUP(fs_->super);
    const uint32_t isz = EXT2_INODE_SIZE(fs_->super);
    for (dgrp_t g = 0; g < fs_->group_desc_count; g++) {
      uint64_t loc = ext2fs_inode_table_loc(fs_, g);
      uint64_t blocks = fs_->inode_blocks_per_group;
      if (ext2fs_has_group_desc_csum(fs_)) {
        if (ext2fs_bg_flags_test(fs_, g, EXT2_BG_INODE_UNINIT)) continue;
        uint32_t unused = ext2fs_bg_itable_unused(fs_, g);
        uint64_t used = ipg > unused ? ipg - unused : 0;
        blocks = (used * isz + bs - 1) / bs;
      }
      if (blocks == 0 || !InFs(loc, blocks)) continue;
      runs.emplace_back(loc * bs, blocks * bs);
    }
    reader_->Plan(runs);
  }

  template <typename F>
  void Plan(const std::vector<size_t>& which, F&& planOne) {
    std::vector<std::pair<uint64_t, uint64_t>> runs;
    for (size_t i : which) planOne(i, &runs);
    reader_->Plan(runs);
  }

  // The blocks of r's runs (its first `bytes` bytes), as file-system byte ranges.
  void PlanRuns(const Rec& r, std::vector<std::pair<uint64_t, uint64_t>>* out, uint64_t bytes) {
    const uint64_t bs = fs_->blocksize;
    for (size_t k = r.extStart; k < static_cast<size_t>(r.extStart) + r.extCount; k++) {
      uint64_t lblk = static_cast<uint64_t>(extents[4 * k]);
      if (lblk * bs >= bytes) break;
      uint64_t pblk = static_cast<uint64_t>(extents[4 * k + 1]);
      uint64_t len = static_cast<uint64_t>(extents[4 * k + 2]);
      out->emplace_back(pblk * bs, len * bs);
    }
  }

  // What Map and SlowSymlink will read of an inode kept for later: the blocks its map points to
  // from the inode (the extent tree's root entries, the indirect blocks), or a symlink's data.
  void PlanLater(size_t i, std::vector<std::pair<uint64_t, uint64_t>>* out) {
    const uint64_t bs = fs_->blocksize;
    const Rec& r = recs_[i];
    if (r.bits & kMapped) return PlanRuns(r, out, r.size);  // a symlink mapped already: its target's block
    struct ext2_inode_large inode = Inode(i);
    if (inode.i_flags & EXT4_EXTENTS_FL) {
      ext2_extent_handle_t h = nullptr;
      if (ext2fs_extent_open2(fs_, r.ino, reinterpret_cast<struct ext2_inode*>(&inode), &h)) return;
      struct ext2fs_extent e;
      for (errcode_t err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e); !err; err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_SIB, &e)) {
        if (InFs(e.e_pblk)) out->emplace_back(e.e_pblk * bs, bs);
      }
      ext2fs_extent_free(h);
      return;
    }
    for (int k = EXT2_IND_BLOCK; k <= EXT2_TIND_BLOCK; k++) {
      if (inode.i_block[k] != 0 && InFs(inode.i_block[k])) out->emplace_back(static_cast<uint64_t>(inode.i_block[k]) * bs, bs);
    }
  }

  // Every node of an extent tree that can be reached from what was read, depth first: a child
  // not read yet is noted by the reader (NoWait) and its siblings are visited, so that all the
  // nodes of the next level are planned in one round.
  void ExtentLevels(size_t i) {
    struct ext2_inode_large inode = Inode(i);
    ext2_extent_handle_t h = nullptr;
    if (ext2fs_extent_open2(fs_, recs_[i].ino, reinterpret_cast<struct ext2_inode*>(&inode), &h)) return;
    struct ext2fs_extent e;
    struct ext2_extent_info info;
    errcode_t err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
    for (int steps = 0; !err && steps < 1 << 20; steps++) {
      ext2fs_extent_get_info(h, &info);
      if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF)) {
        int level = info.curr_level;
        ext2fs_extent_get(h, EXT2_EXTENT_DOWN, &e);
        ext2fs_extent_get_info(h, &info);
        if (info.curr_level > level) {
          err = ext2fs_extent_get(h, EXT2_EXTENT_CURRENT, &e);
          continue;  // its first entry
        }
      } else if (info.curr_level > 0) {
        err = ext2fs_extent_get(h, EXT2_EXTENT_UP, &e);  // a leaf: nothing below, no sibling to see
        if (err) break;
      }
      // The next entry at this level, or up and on.
      while ((err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT_SIB, &e)) == EXT2_ET_EXTENT_NO_NEXT) {
        if (ext2fs_extent_get(h, EXT2_EXTENT_UP, &e)) break;
      }
    }
    ext2fs_extent_free(h);
  }

  // ---- the inode tables ----------------------------------------------------------------------

  void Scan() {
    ext2_inode_scan scan = nullptr;
    // One scan read: 64 pages of the table.
    int bufferBlocks = static_cast<int>(std::max<uint64_t>(1, 64 * kPage / fs_->blocksize));
    if (ext2fs_open_inode_scan(fs_, bufferBlocks, &scan) != 0) return;  // then inode by inode, as reached
    const size_t isz = EXT2_INODE_SIZE(fs_->super);
    std::vector<uint8_t> buf(std::max(isz, sizeof(struct ext2_inode_large)));
    // As many records as the superblock counts inodes in use (a hint: it may be stale).
    size_t used = fs_->super->s_inodes_count - std::min(fs_->super->s_free_inodes_count, fs_->super->s_inodes_count);
    used = std::min<size_t>(used, 1 << 24);
    inos_.reserve(used);
    recs_.reserve(used);
    if (fs_->super->s_inodes_count <= (1u << 22)) byIno_.assign(static_cast<size_t>(fs_->super->s_inodes_count) + 1, 0);
    std::vector<std::pair<uint64_t, uint64_t>> dirRuns;
    for (;;) {
      ext2_ino_t ino = 0;
      errcode_t err = ext2fs_get_next_inode_full(scan, &ino, reinterpret_cast<struct ext2_inode*>(buf.data()), static_cast<int>(buf.size()));
      // An inode the scan refused is read again alone if the tree reaches it (that read names it).
      if (err == EXT2_ET_INODE_CSUM_INVALID || err == EXT2_ET_INODE_IS_GARBAGE || err == EXT2_ET_BAD_BLOCK_IN_INODE_TABLE) continue;
      // A group's table the scan cannot read: the rest is read inode by inode, as reached.
      if (err || ino == 0) break;
      // Unused, or reserved (the journal, the resize inode...): no directory entry may name it.
      if (reinterpret_cast<struct ext2_inode*>(buf.data())->i_links_count == 0) continue;
      if (ino < EXT2_FIRST_INO(fs_->super) && ino != EXT2_ROOT_INO) continue;
      struct ext2_inode_large inode;
      memset(&inode, 0, sizeof inode);
      memcpy(&inode, buf.data(), istride_);
      inos_.push_back(ino);
      if (!byIno_.empty()) byIno_[ino] = static_cast<uint32_t>(inos_.size());
      recs_.emplace_back();
      size_t i = recs_.size() - 1;
      Rec& r = recs_[i];
      r.ino = ino;
      scanning_ = buf.data();  // for libext2fs's own reads of it now (StoredInode)
      scanningIno_ = ino;
      switch (Describe(r, inode)) {
        case kDone:
          if (r.err < 0 && LINUX_S_ISDIR(r.mode)) dirsNow_.push_back(i);  // inline data
          break;
        case kMapNow:
          r.err = Map(r, inode);
          if (r.err >= 0) break;
          r.bits |= kMapped;
          if (LINUX_S_ISDIR(r.mode)) {
            dirsNow_.push_back(i);
            dirRuns.clear();
            PlanRuns(r, &dirRuns, UINT64_MAX);
            reader_->Plan(dirRuns);
          } else if (LINUX_S_ISLNK(r.mode)) {
            r.bits |= kLater;
            later_.push_back(i);  // its target is read later
          }
          break;
        case kMapLater:
          r.bits |= kLater;
          later_.push_back(i);
          break;
      }
      // Its bytes, for what reads it again: a directory (read next), a map or target read later.
      if (r.err < 0 && (LINUX_S_ISDIR(r.mode) || (r.bits & kLater))) {
        r.bytesAt = static_cast<uint32_t>(ibytes_.size() / istride_);
        ibytes_.insert(ibytes_.end(), buf.data(), buf.data() + istride_);
      }
      scanning_ = nullptr;
      if (onKept && recs_.size() - sent_ >= kBatch) Send();
    }
    scanning_ = nullptr;
    if (onKept && recs_.size() > sent_) Send();
    ext2fs_close_inode_scan(scan);
  }

  // The records kept since the last batch, to onKept: complete ones with their runs and bytes.
  void Send() {
    Batch b;
    b.first = static_cast<uint32_t>(sent_);
    b.words.resize((recs_.size() - sent_) * kInodeStride);
    uint32_t* w = b.words.data();
    for (size_t i = sent_; i < recs_.size(); i++, w += kInodeStride) {
      const Rec& r = recs_[i];
      if (!Complete(r)) {
        w[kBitsWord] = kPendingBit;
        continue;
      }
      size_t x = b.extents.size() / 4, m = b.meta.size(), t = b.blob.size();
      b.extents.insert(b.extents.end(), extents.begin() + 4 * r.extStart, extents.begin() + 4 * (r.extStart + r.extCount));
      b.meta.insert(b.meta.end(), meta.begin() + r.metaStart, meta.begin() + r.metaStart + r.metaCount);
      b.blob.append(blob, r.blobStart, r.blobLen);
      Words(r, w, static_cast<uint32_t>(x), static_cast<uint32_t>(m), static_cast<uint32_t>(t));
    }
    sent_ = recs_.size();
    onKept(std::move(b));
  }

  // Mapped, its bytes read, nothing found wrong: what a batch holds of it is its final record.
  static bool Complete(const Rec& r) { return r.err < 0 && !(r.bits & kLater); }

 public:
  // A record as the result's words (src/native/index.ts, Ext2InodeField), its runs and bytes
  // at the places given.
  static void Words(const Rec& r, uint32_t* w, uint32_t extStart, uint32_t metaStart, uint32_t blobStart) {
    bool dev = LINUX_S_ISCHR(r.mode) || LINUX_S_ISBLK(r.mode);
    const uint32_t v[kInodeStride] = {r.ino,
                                      r.mode,
                                      r.uid,
                                      r.gid,
                                      r.links,
                                      r.flags,
                                      static_cast<uint32_t>(r.size >> 32),
                                      static_cast<uint32_t>(r.size),
                                      static_cast<uint32_t>(static_cast<uint64_t>(r.mtime) >> 32),
                                      static_cast<uint32_t>(static_cast<uint64_t>(r.mtime)),
                                      r.mtimeNsec,
                                      dev ? r.rdev : 0,
                                      extStart,
                                      r.extCount,
                                      metaStart,
                                      r.metaCount,
                                      blobStart,
                                      r.blobLen,
                                      static_cast<uint32_t>((r.bits & kResultBits) | (dev ? kDevice : 0))};
    memcpy(w, v, sizeof v);
  }

  // Where a reached record was sent complete in a batch: its place among the kept records.
  uint32_t SentAs(const Rec* r) const {
    if (r < recs_.data() || r >= recs_.data() + recs_.size()) return UINT32_MAX;
    size_t i = static_cast<size_t>(r - recs_.data());
    return i < sent_ && Complete(*r) ? static_cast<uint32_t>(i) : UINT32_MAX;
  }

  // Records the scan kept, in batches of kBatch while it runs (src/toc/toc.ts, TocBuilder).
  std::function<void(Batch&&)> onKept;

 private:

  enum Next { kDone, kMapNow, kMapLater };

  // An inode's attributes, inline data, fast symlink target; whether its map needs blocks read.
  Next Describe(Rec& r, const struct ext2_inode_large& inode) {
    r.mode = inode.i_mode;
    r.uid = inode_uid(inode);
    r.gid = inode_gid(inode);
    r.links = inode.i_links_count;
    r.flags = inode.i_flags;
    r.size = EXT2_I_SIZE(&inode);
    r.mtime = static_cast<int32_t>(inode.i_mtime);
    // The extra time field (ext4 inode, "Inode Timestamps"): 2 epoch bits and 30 bits of ns.
    if (EXT2_INODE_SIZE(fs_->super) > EXT2_GOOD_OLD_INODE_SIZE &&
        inode.i_extra_isize >= offsetof(struct ext2_inode_large, i_mtime_extra) + 4 - EXT2_GOOD_OLD_INODE_SIZE) {
      r.mtime += static_cast<int64_t>(inode.i_mtime_extra & 3) << 32;
      r.mtimeNsec = inode.i_mtime_extra >> 2;
    }
    if (LINUX_S_ISCHR(r.mode) || LINUX_S_ISBLK(r.mode)) {
      // Old and new device encodings (as the kernel's ext4_inode_*_dev): i_block[0] or [1].
      r.rdev = inode.i_block[0] ? inode.i_block[0] : inode.i_block[1];
      return kDone;
    }
    if (!LINUX_S_ISREG(r.mode) && !LINUX_S_ISDIR(r.mode) && !LINUX_S_ISLNK(r.mode)) return kDone;
    if (inode.i_flags & EXT4_INLINE_DATA_FL) {
      size_t n = 0;
      errcode_t err = ext2fs_inline_data_size(fs_, r.ino, &n);
      if (err) {
        r.err = Err(err, "reading the inline data's size");
        return kDone;
      }
      std::string data(n, '\0');
      if (n > 0) {
        struct ext2_inode_large copy = inode;
        err = ext2fs_inline_data_get(fs_, r.ino, reinterpret_cast<struct ext2_inode*>(&copy), data.data(), &n);
        if (err) {
          r.err = Err(err, "reading the inline data");
          return kDone;
        }
        data.resize(n);
      }
      r.bits |= kInline;
      if (LINUX_S_ISLNK(r.mode)) {
        r.bits |= kTarget;
        data.resize(r.size < data.size() ? r.size : data.size());
      } else {
        r.bits |= kInlineData;
      }
      Keep(r, data.data(), data.size());
      return kDone;
    }
    if (LINUX_S_ISLNK(r.mode) && ext2fs_is_fast_symlink(reinterpret_cast<struct ext2_inode*>(const_cast<struct ext2_inode_large*>(&inode)))) {
      const char* text = reinterpret_cast<const char*>(inode.i_block);
      size_t n = r.size < sizeof inode.i_block ? r.size : sizeof inode.i_block;
      r.bits |= kFastSymlink | kTarget;
      Keep(r, text, strnlen(text, n));
      return kDone;
    }
    // Does the map lie all in the inode? An extent tree of depth 0, or no indirect block.
    if (inode.i_flags & EXT4_EXTENTS_FL) {
      const auto* eh = reinterpret_cast<const struct ext3_extent_header*>(inode.i_block);
      // ext2fs_extent_open2 checks the header; a bad one is its error, found when mapping now.
      return ext2fs_le16_to_cpu(eh->eh_depth) == 0 ? kMapNow : kMapLater;
    }
    bool indirect = inode.i_block[EXT2_IND_BLOCK] || inode.i_block[EXT2_DIND_BLOCK] || inode.i_block[EXT2_TIND_BLOCK];
    return indirect ? kMapLater : kMapNow;
  }

  void Keep(Rec& r, const char* data, size_t n) {
    r.blobStart = static_cast<uint32_t>(blob.size());
    r.blobLen = static_cast<uint32_t>(n);
    blob.append(data, n);
  }

  // ---- maps ----------------------------------------------------------------------------------

  // r's runs (extent tree or block map) and map blocks; -1, or the failure kept.
  int32_t Map(Rec& r, struct ext2_inode_large inode) {
    r.extStart = static_cast<uint32_t>(extents.size() / 4);
    r.metaStart = static_cast<uint32_t>(meta.size());
    int32_t e = (inode.i_flags & EXT4_EXTENTS_FL) ? Extents(r.ino, reinterpret_cast<struct ext2_inode*>(&inode)) : BlockMap(r.ino);
    if (e >= 0) {
        extents.resize(static_cast<size_t>(r.extStart) * 4);
      meta.resize(r.metaStart);
      return e;
    }
    r.extCount = static_cast<uint32_t>(extents.size() / 4 - r.extStart);
    r.metaCount = static_cast<uint32_t>(meta.size() - r.metaStart);
    return -1;
  }

  // Appends one mapped run, merged with the previous one when contiguous; checks it lies in the
  // file system and after the previous one (never a wrong extent).
  int32_t Add(uint64_t lblk, uint64_t pblk, uint64_t len, bool uninit, size_t start) {
    uint64_t first = fs_->super->s_first_data_block;
    uint64_t count = ext2fs_blocks_count(fs_->super);
    if (len == 0 || pblk < first || pblk >= count || len > count - pblk) {
      return ErrBlock("maps logical block " + std::to_string(lblk) + " to blocks " + std::to_string(pblk) + ".." +
                          std::to_string(pblk + len - 1) + ", outside the file system's blocks " + std::to_string(first) + ".." +
                          std::to_string(count - 1),
                      pblk);
    }
    size_t n = extents.size();
    if (n / 4 > start) {
      double* prev = &extents[n - 4];
      uint64_t pl = static_cast<uint64_t>(prev[0]), pp = static_cast<uint64_t>(prev[1]), pn = static_cast<uint64_t>(prev[2]);
      if (lblk < pl + pn) {
        return ErrBlock("maps logical block " + std::to_string(lblk) + " again, or out of order (after blocks " + std::to_string(pl) +
                            ".." + std::to_string(pl + pn - 1) + ")",
                        pblk);
      }
      if (pl + pn == lblk && pp + pn == pblk && (prev[3] != 0) == uninit) {
        prev[2] = static_cast<double>(pn + len);
        return -1;
      }
    }
    extents.insert(extents.end(), {static_cast<double>(lblk), static_cast<double>(pblk), static_cast<double>(len), uninit ? 1.0 : 0.0});
    return -1;
  }

  int32_t Extents(uint32_t ino, struct ext2_inode* inode) {
    ext2_extent_handle_t h = nullptr;
    errcode_t err = ext2fs_extent_open2(fs_, ino, inode, &h);
    if (err) return Err(err, "opening the extent tree");
    size_t start = extents.size() / 4;
    struct ext2fs_extent e;
    err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
    int32_t bad = -1;
    while (!err) {
      if (e.e_flags & EXT2_EXTENT_FLAGS_LEAF) {
        if (e.e_len > 0 && (bad = Add(e.e_lblk, e.e_pblk, e.e_len, (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT) != 0, start)) >= 0) break;
      } else if (!(e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)) {
        meta.push_back(static_cast<double>(e.e_pblk));  // the child node's block
      }
      err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &e);
    }
    ext2fs_extent_free(h);
    if (bad >= 0) return bad;
    if (err && err != EXT2_ET_EXTENT_NO_NEXT && err != EXT2_ET_NO_CURRENT_NODE) return Err(err, "reading the extent tree");
    return -1;
  }

  struct MapCtx {
    Walk* w;
    size_t start;
    int32_t bad;
  };

  static int OnBlock(ext2_filsys, blk64_t* blocknr, e2_blkcnt_t blockcnt, blk64_t, int, void* priv) {
    auto* c = static_cast<MapCtx*>(priv);
    if (blockcnt < 0) {
      c->w->meta.push_back(static_cast<double>(*blocknr));  // an indirect, double or triple indirect block
      return 0;
    }
    c->bad = c->w->Add(static_cast<uint64_t>(blockcnt), *blocknr, 1, false, c->start);
    return c->bad >= 0 ? BLOCK_ABORT : 0;
  }

  int32_t BlockMap(uint32_t ino) {
    MapCtx ctx{this, extents.size() / 4, -1};
    errcode_t err = ext2fs_block_iterate3(fs_, ino, BLOCK_FLAG_READ_ONLY, nullptr, OnBlock, &ctx);
    if (ctx.bad >= 0) return ctx.bad;
    if (err) return Err(err, "reading the block map");
    return -1;
  }

  int32_t SlowSymlink(Rec& r, struct ext2_inode_large inode) {
    if (r.size > static_cast<uint64_t>(fs_->blocksize)) {
      return ErrBlock("symbolic link of " + std::to_string(r.size) + " bytes, more than a block", 0);
    }
    ext2_file_t file = nullptr;
    errcode_t err = ext2fs_file_open2(fs_, r.ino, reinterpret_cast<struct ext2_inode*>(&inode), 0, &file);
    if (err) return Err(err, "opening the symbolic link");
    std::string text(r.size, '\0');
    unsigned int got = 0;
    err = ext2fs_file_read(file, text.data(), static_cast<unsigned int>(text.size()), &got);
    ext2fs_file_close(file);
    if (err) return Err(err, "reading the symbolic link");
    r.bits |= kTarget;
    Keep(r, text.data(), got);
    return -1;
  }

  // ---- directories ---------------------------------------------------------------------------

  struct DirRes {
    size_t start = 0, count = 0;  // into ents_
    int32_t err = -1;
  };
  struct Ent {
    uint32_t ino;
    uint32_t nameLen;
    size_t nameOff;  // into dirNames_
    uint8_t type;
  };

  void ReadDir(Rec& r) {
    dirs_.push_back({ents_.size(), 0, -1});
    r.dir = static_cast<int32_t>(dirs_.size() - 1);
    entryErr_ = -1;
    errcode_t err = ext2fs_dir_iterate2(fs_, r.ino, 0, nullptr, OnEntry, this);
    DirRes& d = dirs_.back();
    if (entryErr_ >= 0) {
      d.err = entryErr_;
    } else if (err) {
      d.err = Err(err, "reading the directory");
    }
    d.count = ents_.size() - d.start;
  }

  static int OnEntry(ext2_ino_t dir, int entry, struct ext2_dir_entry* dirent, int, int, char*, void* priv) {
    auto* w = static_cast<Walk*>(priv);
    if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || dirent->inode == 0) return 0;
    int len = ext2fs_dirent_name_len(dirent);
    const char* name = dirent->name;
    // Inline-data directories report their synthesized "." and ".." as other entries.
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) return 0;
    if (dirent->inode > w->fs_->super->s_inodes_count ||
        (dirent->inode < EXT2_FIRST_INO(w->fs_->super) && dirent->inode != EXT2_ROOT_INO)) {
      // An entry naming an inode the file system does not have (or a reserved one) is corrupt.
      Pending p{"entry " + Quote(std::string(name, static_cast<size_t>(len))) + " names inode " + std::to_string(dirent->inode) +
                    ", which is not a valid inode number (1.." + std::to_string(w->fs_->super->s_inodes_count) + ")",
                "fs"};
      p.directory = true;
      w->entryErr_ = w->Note(std::move(p));
      return DIRENT_ABORT;
    }
    if (len == 0 || memchr(name, '/', static_cast<size_t>(len)) != nullptr) {
      Pending p{"an entry has an invalid name " + Quote(std::string(name, static_cast<size_t>(len))), "fs"};
      p.directory = true;
      w->entryErr_ = w->Note(std::move(p));
      return DIRENT_ABORT;
    }
    w->ents_.push_back({dirent->inode, static_cast<uint32_t>(len), w->dirNames_.size(), static_cast<uint8_t>(ext2fs_dirent_file_type(dirent))});
    w->dirNames_.append(name, static_cast<size_t>(len));
    return 0;
  }

  static std::string Quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      if (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) {
        char b[5];
        snprintf(b, sizeof b, "\\x%02x", c);
        out += b;
      } else {
        out += static_cast<char>(c);
      }
    }
    return out + "\"";
  }

  // ---- the tree ------------------------------------------------------------------------------

  // The inode's record: the scan's, or (not kept by the scan) read now, alone.
  Rec* Lookup(uint32_t ino) {
    if (Rec* r = Find(ino)) return r;
    auto [it, fresh] = extra_.try_emplace(ino);
    Rec& r = it->second;
    if (!fresh) return &r;
    r.ino = ino;
    struct ext2_inode_large inode;
    memset(&inode, 0, sizeof inode);
    errcode_t err = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<struct ext2_inode*>(&inode), sizeof inode);
    if (err) {
      r.err = Err(err, "reading the inode");
      return &r;
    }
    if (Describe(r, inode) != kDone && r.err < 0) {
      r.err = Map(r, inode);
      r.bits |= kMapped;
    }
    if (r.err < 0 && LINUX_S_ISLNK(r.mode) && !(r.bits & kTarget)) r.err = SlowSymlink(r, inode);
    return &r;
  }

  // Breadth first from the root, over what was read: the order of the result.
  bool Tree() {
    Rec* root = Lookup(EXT2_ROOT_INO);
    links.push_back({0, EXT2_ROOT_INO, EXT2_FT_DIR, 0, 0, -1, 0});
    if (root->err >= 0) return Raise(root->err, EXT2_ROOT_INO, "/");
    root->out = 0;
    order.push_back(root);
    std::deque<std::pair<Rec*, std::string>> queue;
    queue.emplace_back(root, "");
    while (!queue.empty()) {
      auto [dir, path] = queue.front();
      queue.pop_front();
      if (dir->dir < 0) ReadDir(*dir);
      const DirRes& d = dirs_[static_cast<size_t>(dir->dir)];
      if (d.err >= 0) return Raise(d.err, dir->ino, path.empty() ? "/" : path);
      for (size_t k = d.start; k < d.start + d.count; k++) {
        const Ent& e = ents_[k];
        Rec* c = Lookup(e.ino);
        names += '/';
        links.push_back({dir->ino, e.ino, e.type, static_cast<uint32_t>(names.size()), e.nameLen, dir->out, c->out});
        names.append(dirNames_, e.nameOff, e.nameLen);
        if (c->out >= 0) continue;
        if (c->err >= 0) return Raise(c->err, c->ino, path + "/" + dirNames_.substr(e.nameOff, e.nameLen));
        c->out = static_cast<int32_t>(order.size());
        links.back().out = c->out;
        order.push_back(c);
        if (LINUX_S_ISDIR(c->mode)) queue.emplace_back(c, path + "/" + dirNames_.substr(e.nameOff, e.nameLen));
      }
    }
    return true;
  }

  ext2_filsys fs_;
  Reader* reader_;
  size_t istride_;
  std::vector<uint32_t> inos_;   // the inodes the scan kept, increasing
  std::vector<uint32_t> byIno_;  // their places + 1 by number (0: not kept), or empty (Index)
  std::vector<uint8_t> ibytes_;  // the bytes of some of them (Rec::bytesAt; istride_ each)
  const uint8_t* scanning_ = nullptr;  // the inode the scan is at, and its number
  uint32_t scanningIno_ = 0;
  std::vector<Rec> recs_;        // their records
  std::unordered_map<uint32_t, Rec> extra_;  // inodes read alone
  std::vector<size_t> dirsNow_, later_;      // into recs_
  size_t sent_ = 0;                          // records handed to onKept
  std::vector<Pending> pending_;
  std::vector<DirRes> dirs_;
  std::vector<Ent> ents_;
  std::string dirNames_;
  int32_t entryErr_ = -1;
};

// ---------------------------------------------------------------------------------------------
// The job.

class TocWorker : public Napi::AsyncWorker {
 public:
  TocWorker(Napi::Env env, bool isFile, std::string file, IscsiParams iscsi, uint64_t offset, uint32_t fileBlockSize,
            uint32_t windowBytes, uint32_t windows, Napi::Value onBatch)
      : Napi::AsyncWorker(env, "ext2TocAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        isFile_(isFile),
        file_(std::move(file)),
        iscsi_(std::move(iscsi)),
        offset_(offset),
        fileBlockSize_(fileBlockSize),
        windowBytes_(windowBytes),
        windows_(windows) {
    if (onBatch.IsFunction()) {
      batches_ = Napi::ThreadSafeFunction::New(env, onBatch.As<Napi::Function>(), "ext2TocBatch", 0, 1);
      hasBatches_ = true;
    }
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    double cpu0 = ThreadCpuMs();
    Run();
    if (hasBatches_) batches_.Release();
    walkCpuMs_ = ThreadCpuMs() - cpu0;
    // The reader's I/O thread ends, and the session logs out, here on the worker thread.
    if (reader_) {
      reader_->Stop();
      stats_ = reader_->stats();
    }
    reader_.reset();
    if (src_) {
      deviceBytes_ = src_->Size();
      deviceBlockSize_ = src_->BlockSize();
    }
    src_.reset();
  }

  void Run() {
    auto t0 = std::chrono::steady_clock::now();
    std::string err;
    if (isFile_) {
      auto f = std::make_unique<FileSource>();
      if (!f->Open(file_, fileBlockSize_, &err)) return Refuse("open", err);
      src_ = std::move(f);
    } else {
      auto s = std::make_unique<IscsiSource>();
      if (!s->Open(iscsi_, &err)) return Refuse("connect", err);
      src_ = std::move(s);
    }
    if (offset_ >= src_->Size()) {
      return Refuse("fs", "the file system's start, byte " + std::to_string(offset_) + ", is not inside the device (" +
                              std::to_string(src_->Size()) + " bytes)");
    }
    reader_ = std::make_unique<Reader>(src_.get(), offset_, windowBytes_, static_cast<uint64_t>(windowBytes_) * windows_);
    char name[64];
    snprintf(name, sizeof name, "%s:%p", kIoName, static_cast<void*>(reader_.get()));
    ext2_filsys fs = nullptr;
    errcode_t e = ext2fs_open2(name, nullptr, EXT2_FLAG_64BITS, 0, 0, &tocIoManager, &fs);
    if (e) {
      bool io = e == EXT2_ET_SHORT_READ && !reader_->error.empty();
      // Not an ext2/3/4 file system, or one with features this libext2fs does not know.
      bool unsupported = e == EXT2_ET_BAD_MAGIC || e == EXT2_ET_REV_TOO_HIGH || e == EXT2_ET_UNSUPP_FEATURE ||
                         e == EXT2_ET_RO_UNSUPP_FEATURE;
      error_ = {std::string("opening the file system (superblock, group descriptors): ") + error_message(e) +
                    (io ? " (" + reader_->error + ")" : ""),
                io ? "io" : unsupported ? "unsupported" : "fs", e};
      failed_ = true;
      return;
    }
    Superblock(fs);
    openMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    walk_ = std::make_unique<Walk>(fs, reader_.get());
    if (hasBatches_) {
      walk_->onKept = [this](Batch&& b) {
        auto* p = new Batch(std::move(b));
        if (batches_.NonBlockingCall(p, CallBatch) != napi_ok) delete p;
      };
    }
    if (!walk_->Run()) {
      error_ = walk_->error;
      failed_ = true;
    }
    walk_->Detach();
    ext2fs_close_free(&fs);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      Napi::Error e = Napi::Error::New(env, error_.message);
      e.Set("kind", Napi::String::New(env, error_.kind));
      if (error_.code) {
        e.Set("errcode", Napi::Number::New(env, static_cast<double>(error_.code)));
      }
      if (error_.ino) e.Set("ino", Napi::Number::New(env, error_.ino));
      if (error_.hasBlock) e.Set("block", Napi::Number::New(env, static_cast<double>(error_.block)));
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("fs", BuildFs(env));
    out.Set("deviceBytes", Napi::Number::New(env, static_cast<double>(deviceBytes_)));
    out.Set("deviceBlockSize", Napi::Number::New(env, deviceBlockSize_));
    out.Set("reads", Napi::Number::New(env, static_cast<double>(stats_.reads)));
    out.Set("bytesRead", Napi::Number::New(env, static_cast<double>(stats_.bytes)));
    out.Set("misses", Napi::Number::New(env, static_cast<double>(stats_.misses)));
    out.Set("scanned", Napi::Number::New(env, static_cast<double>(walk_->scanned())));
    Napi::Float64Array phases = Napi::Float64Array::New(env, walk_->phases.size() + 1);
    phases[0u] = openMs_;
    for (size_t i = 0; i < walk_->phases.size(); i++) phases[i + 1] = walk_->phases[i];
    out.Set("phaseMs", phases);
    Napi::Float64Array cpu = Napi::Float64Array::New(env, 2);
    cpu[0u] = walkCpuMs_;
    cpu[1u] = stats_.cpuMs;
    out.Set("cpuMs", cpu);

    // The result as a few typed arrays (src/native/index.ts, Ext2RawToc): one object per inode
    // made here would cost more than the walk.
    const auto& order = walk_->order;
    Napi::Uint32Array inodes = Napi::Uint32Array::New(env, order.size() * kInodeStride);
    Napi::Uint32Array sentAs = Napi::Uint32Array::New(env, order.size());
    uint32_t* d = inodes.Data();
    for (size_t i = 0; i < order.size(); i++, d += kInodeStride) {
      const Rec* r = order[i];
      Walk::Words(*r, d, r->extStart, r->metaStart, r->blobStart);
      sentAs[i] = walk_->SentAs(r);
    }
    out.Set("sentAs", sentAs);
    out.Set("inodes", inodes);
    const auto& links = walk_->links;
    Napi::Uint32Array ls = Napi::Uint32Array::New(env, links.size() * kLinkStride);
    uint32_t* u = ls.Data();
    for (const Link& l : links) {
      const uint32_t v[kLinkStride] = {l.parent, l.ino, l.type, l.nameOff, l.nameLen, static_cast<uint32_t>(l.parentOut + 1),
                                       static_cast<uint32_t>(l.out)};
      memcpy(u, v, sizeof v);
      u += kLinkStride;
    }
    out.Set("links", ls);
    out.Set("names", Napi::Buffer<char>::Copy(env, walk_->names.data(), walk_->names.size()));
    out.Set("blob", Napi::Buffer<char>::Copy(env, walk_->blob.data(), walk_->blob.size()));
    out.Set("extents", Doubles(env, walk_->extents));
    out.Set("meta", Doubles(env, walk_->meta));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  // A batch on the main thread: { first, inodes, extents, meta, blob } (src/native/index.ts, Ext2RawBatch).
  static void CallBatch(Napi::Env env, Napi::Function cb, Batch* raw) {
    std::unique_ptr<Batch> b(raw);
    if (env == nullptr || cb == nullptr) return;  // the function is going away: nothing to hand
    Napi::Object o = Napi::Object::New(env);
    o.Set("first", b->first);
    Napi::Uint32Array words = Napi::Uint32Array::New(env, b->words.size());
    if (!b->words.empty()) memcpy(words.Data(), b->words.data(), b->words.size() * sizeof(uint32_t));
    o.Set("inodes", words);
    o.Set("extents", Doubles(env, b->extents));
    o.Set("meta", Doubles(env, b->meta));
    o.Set("blob", Napi::Buffer<char>::Copy(env, b->blob.data(), b->blob.size()));
    try {
      cb.Call({o});
    } catch (const Napi::Error&) {
      // The callback's own failure (it catches its errors): the TOC is made from the result then.
    }
  }

  static Napi::Float64Array Doubles(Napi::Env env, const std::vector<double>& v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    if (!v.empty()) memcpy(a.Data(), v.data(), v.size() * sizeof(double));
    return a;
  }

  void Refuse(const char* kind, const std::string& message) {
    error_ = {message, kind, 0};
    failed_ = true;
  }

  Napi::Object BuildFs(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("blockSize", sb_.blockSize);
    o.Set("blocksCount", Napi::Number::New(env, static_cast<double>(sb_.blocksCount)));
    o.Set("firstDataBlock", sb_.firstDataBlock);
    o.Set("inodesCount", sb_.inodesCount);
    o.Set("inodeSize", sb_.inodeSize);
    o.Set("featureCompat", sb_.compat);
    o.Set("featureIncompat", sb_.incompat);
    o.Set("featureRoCompat", sb_.roCompat);
    o.Set("state", sb_.state);
    o.Set("revLevel", sb_.revLevel);
    o.Set("label", Napi::Buffer<char>::Copy(env, sb_.label.data(), sb_.label.size()));
    o.Set("uuid", sb_.uuid);
    Napi::Array f = Napi::Array::New(env, sb_.features.size());
    for (size_t i = 0; i < sb_.features.size(); i++) f[i] = Napi::String::New(env, sb_.features[i]);
    o.Set("features", f);
    return o;
  }

  // The superblock's facts, kept as plain values until OnOK builds the object.
  void Superblock(ext2_filsys fs) {
    struct ext2_super_block* sb = fs->super;
    sb_.blockSize = fs->blocksize;
    sb_.blocksCount = ext2fs_blocks_count(sb);
    sb_.firstDataBlock = sb->s_first_data_block;
    sb_.inodesCount = sb->s_inodes_count;
    sb_.inodeSize = EXT2_INODE_SIZE(sb);
    sb_.compat = sb->s_feature_compat;
    sb_.incompat = sb->s_feature_incompat;
    sb_.roCompat = sb->s_feature_ro_compat;
    sb_.state = sb->s_state;
    sb_.revLevel = sb->s_rev_level;
    sb_.label.assign(reinterpret_cast<const char*>(sb->s_volume_name), strnlen(reinterpret_cast<const char*>(sb->s_volume_name), sizeof sb->s_volume_name));
    sb_.uuid = e2p_uuid2str(sb->s_uuid);
    for (int kind = 0; kind < 3; kind++) {
      uint32_t mask = kind == 0 ? sb->s_feature_compat : kind == 1 ? sb->s_feature_incompat : sb->s_feature_ro_compat;
      for (int bit = 0; bit < 32; bit++) {
        if (mask & (1u << bit)) sb_.features.push_back(e2p_feature2string(kind, 1u << bit));
      }
    }
  }

  struct SbFacts {
    uint32_t blockSize = 0, firstDataBlock = 0, inodesCount = 0, inodeSize = 0, compat = 0, incompat = 0, roCompat = 0;
    uint32_t state = 0, revLevel = 0;
    uint64_t blocksCount = 0;
    std::string label, uuid;
    std::vector<std::string> features;
  } sb_;

  Napi::Promise::Deferred deferred_;
  bool isFile_;
  std::string file_;
  IscsiParams iscsi_;
  uint64_t offset_;
  uint32_t fileBlockSize_;
  uint32_t windowBytes_;
  uint32_t windows_;
  std::unique_ptr<Source> src_;
  std::unique_ptr<Reader> reader_;
  std::unique_ptr<Walk> walk_;
  Napi::ThreadSafeFunction batches_;
  bool hasBatches_ = false;
  Reader::Stats stats_;
  double openMs_ = 0;
  double walkCpuMs_ = 0;
  uint64_t deviceBytes_ = 0;
  uint32_t deviceBlockSize_ = 0;
  WalkError error_;
  bool failed_ = false;
};

std::string Str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

// ext2TocAsync(source, offset, options, onBatch?):
//   source: { file, blockSize } | { initiator, portal, target, lun, user?, password?, targetUser?,
//            targetPassword?, headerDigest?, timeoutSec }
//   offset: the byte where the file system starts; options: { windowBytes, windows }; onBatch:
//   called on the main thread with the records the scan kept, while the walk goes on
Napi::Value Ext2TocAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object src = info[0].As<Napi::Object>();
  uint64_t offset = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  Napi::Object opts = info[2].As<Napi::Object>();
  bool isFile = src.Has("file");
  IscsiParams p;
  std::string file;
  uint32_t fileBlockSize = 512;
  if (isFile) {
    file = Str(src, "file");
    fileBlockSize = src.Get("blockSize").As<Napi::Number>().Uint32Value();
  } else {
    p.initiator = Str(src, "initiator");
    p.portal = Str(src, "portal");
    p.target = Str(src, "target");
    p.lun = src.Get("lun").As<Napi::Number>().Int32Value();
    p.user = Str(src, "user");
    p.password = Str(src, "password");
    p.targetUser = Str(src, "targetUser");
    p.targetPassword = Str(src, "targetPassword");
    if (src.Get("headerDigest").IsNumber()) p.headerDigest = src.Get("headerDigest").As<Napi::Number>().Int32Value();
    p.timeoutSec = src.Get("timeoutSec").As<Napi::Number>().Int32Value();
  }
  uint32_t windowBytes = opts.Get("windowBytes").As<Napi::Number>().Uint32Value();
  uint32_t windows = opts.Get("windows").As<Napi::Number>().Uint32Value();
  auto* w = new TocWorker(env, isFile, std::move(file), std::move(p), offset, fileBlockSize, windowBytes, windows, info[3]);
  Napi::Promise promise = w->Promise();
  w->Queue();
  return promise;
}

}  // namespace

void InitExt2Toc(Napi::Env env, Napi::Object exports) {
  // com_err's table of libext2fs's messages: registered once, here on the main thread, so that
  // error_message() on worker threads only reads it.
  initialize_ext2_error_table();
  exports.Set("ext2TocAsync", Napi::Function::New(env, Ext2TocAsync, "ext2TocAsync"));
}

}  // namespace xcopy
