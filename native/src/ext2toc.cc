// ext2toc: the walk behind the table of contents (docs/toc.md), thin C++ over libext2fs.
//
// One job = one Napi::AsyncWorker: everything below runs in Execute(), on a libuv worker thread,
// so libext2fs (synchronous) and the job's own synchronous libiscsi context never block the
// event loop. The job owns its source (a file descriptor, or a libiscsi context logged in to
// the LUN), a read cache in front of it, an io_manager whose channel reads through that cache,
// and the ext2_filsys opened on it; nothing is shared with other jobs or with NativeSession.
//
// What the walk asks libext2fs (e2fsprogs 1.47, lib/ext2fs): ext2fs_open2 (superblock, group
// descriptors, their checksums), ext2fs_dir_iterate2 (linear, htree and inline-data
// directories), ext2fs_read_inode_full, ext2fs_extent_* (extent trees of any depth, uninit
// flags), ext2fs_block_iterate3 (direct, indirect, double and triple indirect maps),
// ext2fs_inline_data_*, ext2fs_file_* (slow symlinks). Every errcode_t becomes a JS error
// naming the inode (and path) or block, with error_message()'s text; nothing is guessed.
//
// Thin C++: arguments are validated in TypeScript (src/native/ext2fs.ts); the result is raw
// (inodes, directory entries, extents in file-system blocks); src/toc/ turns it into a TOC.
#include "ext2toc.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/fs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <list>
#include <memory>
#include <string>
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

// ---------------------------------------------------------------------------------------------
// Sources of bytes: an image file (or block device), or a LUN through libiscsi (synchronous).

class Source {
 public:
  virtual ~Source() = default;
  // Lets go of the device. Called at the end of the job, on the worker thread: an iSCSI logout
  // waits for the target, which may be served by this very process's event loop (the
  // destructor runs on the main thread, after OnOK).
  virtual void Close() {}
  // Reads exactly `len` bytes at absolute byte `off` (off + len <= Size()); false with `err` set.
  virtual bool Read(uint64_t off, size_t len, uint8_t* out, std::string* err) = 0;
  uint64_t Size() const { return size_; }
  uint32_t BlockSize() const { return blockSize_; }

 protected:
  uint64_t size_ = 0;
  uint32_t blockSize_ = 512;
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
    constexpr uint64_t kMaxTransfer = 1 << 20;
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

 private:
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
// A read cache of aligned windows in front of the source (LRU): libext2fs reads a block at a time
// (an inode table block per inode, a directory block at a time); over iSCSI each miss is a round
// trip, so a miss reads the whole window around it (docs/toc.md, "Reads").

class Reader {
 public:
  Reader(Source* src, uint64_t base, uint32_t windowBytes, uint32_t windows)
      : src_(src), base_(base), window_(windowBytes), max_(windows == 0 ? 1 : windows) {}

  // Reads `len` bytes at file-system byte `off` (relative to the start of the file system).
  bool Read(uint64_t off, size_t len, uint8_t* out) {
    if (off > src_->Size() - base_ || len > src_->Size() - base_ - off) {
      error = "read of " + std::to_string(len) + " bytes at file-system byte " + std::to_string(off) +
              " lies beyond the end of the device ("  + std::to_string(src_->Size()) +
              " bytes, the file system starting at byte " + std::to_string(base_) + ")";
      return false;
    }
    uint64_t abs = base_ + off;
    while (len > 0) {
      uint64_t w = abs / window_;
      const std::vector<uint8_t>* data = Window(w);
      if (data == nullptr) return false;
      uint64_t in = abs - w * window_;
      size_t n = data->size() - in < len ? data->size() - in : len;
      memcpy(out, data->data() + in, n);
      out += n;
      abs += n;
      len -= n;
    }
    return true;
  }

  std::string error;
  uint64_t misses = 0;
  uint64_t bytesRead = 0;

 private:
  const std::vector<uint8_t>* Window(uint64_t w) {
    auto it = map_.find(w);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return &it->second->second;
    }
    uint64_t start = w * window_;
    uint64_t len = src_->Size() - start < window_ ? src_->Size() - start : window_;
    std::vector<uint8_t> data(len);
    if (!src_->Read(start, len, data.data(), &error)) return nullptr;
    misses++;
    bytesRead += len;
    if (map_.size() >= max_) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
    lru_.emplace_front(w, std::move(data));
    map_[w] = lru_.begin();
    return &lru_.front().second;
  }

  Source* src_;
  uint64_t base_;
  uint64_t window_;
  size_t max_;
  std::list<std::pair<uint64_t, std::vector<uint8_t>>> lru_;
  std::unordered_map<uint64_t, std::list<std::pair<uint64_t, std::vector<uint8_t>>>::iterator> map_;
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
// The walk.

struct InodeRec {
  uint32_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0, links = 0, flags = 0, rdev = 0;
  uint64_t size = 0;
  int64_t mtime = 0;
  uint32_t mtimeNsec = 0;
  size_t extStart = 0, extCount = 0;  // into Walk::extents (4 doubles each)
  size_t metaStart = 0, metaCount = 0;  // into Walk::meta (one block each)
  std::string target;                   // symlink target bytes
  std::string inlineData;               // inline data bytes (EXT4_INLINE_DATA_FL)
  bool hasInline = false;
  bool fastSymlink = false;
};

struct Link {
  uint32_t parent, ino;
  uint8_t fileType;
  std::string name;
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

class Walk {
 public:
  Walk(ext2_filsys fs, Reader* reader) : fs_(fs), reader_(reader) {}

  bool Run() {
    uint32_t root = EXT2_ROOT_INO;
    links.push_back({0, root, EXT2_FT_DIR, ""});
    if (!Reach(root, "/")) return false;
    std::deque<std::pair<uint32_t, std::string>> dirs;
    dirs.emplace_back(root, "");
    while (!dirs.empty()) {
      auto [dir, path] = dirs.front();
      dirs.pop_front();
      current_ = dir;
      currentPath_ = path.empty() ? "/" : path;
      found_.clear();
      errcode_t err = ext2fs_dir_iterate2(fs_, dir, 0, nullptr, OnEntry, this);
      if (failed_) return false;
      if (err) return Fail(err, dir, currentPath_, "reading the directory");
      for (auto& [ino, name, type] : found_) {
        std::string child = path + "/" + name;
        links.push_back({dir, ino, type, name});
        bool first = index_.find(ino) == index_.end();
        if (first && !Reach(ino, child)) return false;
        const InodeRec& rec = inodes[index_[ino]];
        if (LINUX_S_ISDIR(rec.mode) && first) dirs.emplace_back(ino, child);
      }
    }
    return true;
  }

  std::vector<InodeRec> inodes;
  std::vector<Link> links;
  std::vector<double> extents;  // lblk, pblk, len, uninit (0/1) per extent, file-system blocks
  std::vector<double> meta;     // extent-tree and indirect blocks, per inode
  WalkError error;

 private:
  static int OnEntry(ext2_ino_t dir, int entry, struct ext2_dir_entry* dirent, int offset, int blocksize, char* buf,
                     void* priv) {
    auto* w = static_cast<Walk*>(priv);
    if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || dirent->inode == 0) return 0;
    int len = ext2fs_dirent_name_len(dirent);
    std::string name(dirent->name, static_cast<size_t>(len));
    // Inline-data directories report their synthesized "." and ".." as other entries.
    if (name == "." || name == "..") return 0;
    if (dirent->inode > w->fs_->super->s_inodes_count ||
        (dirent->inode < EXT2_FIRST_INO(w->fs_->super) && dirent->inode != EXT2_ROOT_INO)) {
      // An entry naming an inode the file system does not have (or a reserved one) is corrupt.
      w->failed_ = true;
      w->error = {"directory inode " + std::to_string(dir) + " (" + w->currentPath_ + "): entry " + Quote(name) +
                      " names inode " + std::to_string(dirent->inode) + ", which is not a valid inode number (1.." +
                      std::to_string(w->fs_->super->s_inodes_count) + ")",
                  "fs", 0, dir};
      return DIRENT_ABORT;
    }
    if (len == 0 || name.find('/') != std::string::npos) {
      w->failed_ = true;
      w->error = {"directory inode " + std::to_string(dir) + " (" + w->currentPath_ + "): an entry has an invalid name " +
                      Quote(name),
                  "fs", 0, dir};
      return DIRENT_ABORT;
    }
    w->found_.push_back({dirent->inode, std::move(name), static_cast<uint8_t>(ext2fs_dirent_file_type(dirent))});
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

  bool Fail(errcode_t err, uint32_t ino, const std::string& path, const std::string& what) {
    failed_ = true;
    bool io = err == EXT2_ET_SHORT_READ && !reader_->error.empty();
    error.message = "inode " + std::to_string(ino) + " (" + path + "): " + what + ": " + error_message(err) +
                    (io ? " (" + reader_->error + ")" : "");
    error.kind = io ? "io" : "fs";
    error.code = err;
    error.ino = ino;
    return false;
  }

  bool FailBlock(uint32_t ino, const std::string& path, const std::string& what, uint64_t block) {
    failed_ = true;
    error = {"inode " + std::to_string(ino) + " (" + path + "): " + what, "fs", 0, ino, block, true};
    return false;
  }

  // First time an inode is reached (by `path`): its attributes and its block map.
  bool Reach(uint32_t ino, const std::string& path) {
    struct ext2_inode_large inode;
    memset(&inode, 0, sizeof inode);
    errcode_t err = ext2fs_read_inode_full(fs_, ino, reinterpret_cast<struct ext2_inode*>(&inode), sizeof inode);
    if (err) return Fail(err, ino, path, "reading the inode");
    index_[ino] = inodes.size();
    inodes.emplace_back();
    InodeRec& r = inodes.back();
    r.ino = ino;
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
    auto* base = reinterpret_cast<struct ext2_inode*>(&inode);
    if (LINUX_S_ISCHR(r.mode) || LINUX_S_ISBLK(r.mode)) {
      // Old and new device encodings (as the kernel's ext4_inode_*_dev): i_block[0] or [1].
      r.rdev = inode.i_block[0] ? inode.i_block[0] : inode.i_block[1];
      return true;
    }
    if (!LINUX_S_ISREG(r.mode) && !LINUX_S_ISDIR(r.mode) && !LINUX_S_ISLNK(r.mode)) return true;
    if (inode.i_flags & EXT4_INLINE_DATA_FL) {
      size_t n = 0;
      err = ext2fs_inline_data_size(fs_, ino, &n);
      if (err) return Fail(err, ino, path, "reading the inline data's size");
      std::string data(n, '\0');
      if (n > 0) {
        err = ext2fs_inline_data_get(fs_, ino, base, data.data(), &n);
        if (err) return Fail(err, ino, path, "reading the inline data");
        data.resize(n);
      }
      r.hasInline = true;
      if (LINUX_S_ISLNK(r.mode)) {
        r.target = data.substr(0, r.size < data.size() ? r.size : data.size());
      } else {
        r.inlineData = std::move(data);
      }
      return true;
    }
    if (LINUX_S_ISLNK(r.mode) && ext2fs_is_fast_symlink(base)) {
      const char* text = reinterpret_cast<const char*>(inode.i_block);
      size_t n = r.size < sizeof inode.i_block ? r.size : sizeof inode.i_block;
      r.target.assign(text, strnlen(text, n));
      r.fastSymlink = true;
      return true;
    }
    r.extStart = extents.size() / 4;
    r.metaStart = meta.size();
    bool ok = (inode.i_flags & EXT4_EXTENTS_FL) ? Extents(ino, path, base) : BlockMap(ino, path);
    if (!ok) return false;
    InodeRec& rr = inodes.back();
    rr.extCount = extents.size() / 4 - rr.extStart;
    rr.metaCount = meta.size() - rr.metaStart;
    if (LINUX_S_ISLNK(rr.mode)) return SlowSymlink(ino, path, base);
    return true;
  }

  // Appends one mapped run, merged with the previous one when contiguous; checks it lies in the
  // file system and after the previous one (never a wrong extent).
  bool Add(uint32_t ino, const std::string& path, uint64_t lblk, uint64_t pblk, uint64_t len, bool uninit, size_t start) {
    uint64_t first = fs_->super->s_first_data_block;
    uint64_t count = ext2fs_blocks_count(fs_->super);
    if (len == 0 || pblk < first || pblk >= count || len > count - pblk) {
      return FailBlock(ino, path,
                       "maps logical block " + std::to_string(lblk) + " to blocks " + std::to_string(pblk) + ".." +
                           std::to_string(pblk + len - 1) + ", outside the file system's blocks " + std::to_string(first) +
                           ".." + std::to_string(count - 1),
                       pblk);
    }
    size_t n = extents.size();
    if (n / 4 > start) {
      double* prev = &extents[n - 4];
      uint64_t pl = static_cast<uint64_t>(prev[0]), pp = static_cast<uint64_t>(prev[1]), pn = static_cast<uint64_t>(prev[2]);
      if (lblk < pl + pn) {
        return FailBlock(ino, path,
                         "maps logical block " + std::to_string(lblk) + " again, or out of order (after blocks " +
                             std::to_string(pl) + ".." + std::to_string(pl + pn - 1) + ")",
                         pblk);
      }
      if (pl + pn == lblk && pp + pn == pblk && (prev[3] != 0) == uninit) {
        prev[2] = static_cast<double>(pn + len);
        return true;
      }
    }
    extents.insert(extents.end(), {static_cast<double>(lblk), static_cast<double>(pblk), static_cast<double>(len),
                                   uninit ? 1.0 : 0.0});
    return true;
  }

  bool Extents(uint32_t ino, const std::string& path, struct ext2_inode* inode) {
    ext2_extent_handle_t h = nullptr;
    errcode_t err = ext2fs_extent_open2(fs_, ino, inode, &h);
    if (err) return Fail(err, ino, path, "opening the extent tree");
    size_t start = extents.size() / 4;
    struct ext2fs_extent e;
    err = ext2fs_extent_get(h, EXT2_EXTENT_ROOT, &e);
    bool ok = true;
    while (!err) {
      if (e.e_flags & EXT2_EXTENT_FLAGS_LEAF) {
        if (e.e_len > 0 &&
            !Add(ino, path, e.e_lblk, e.e_pblk, e.e_len, (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT) != 0, start)) {
          ok = false;
          break;
        }
      } else if (!(e.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT)) {
        meta.push_back(static_cast<double>(e.e_pblk));  // the child node's block
      }
      err = ext2fs_extent_get(h, EXT2_EXTENT_NEXT, &e);
    }
    ext2fs_extent_free(h);
    if (!ok) return false;
    if (err && err != EXT2_ET_EXTENT_NO_NEXT && err != EXT2_ET_NO_CURRENT_NODE) {
      return Fail(err, ino, path, "reading the extent tree");
    }
    return true;
  }

  struct MapCtx {
    Walk* w;
    uint32_t ino;
    const std::string* path;
    size_t start;
  };

  static int OnBlock(ext2_filsys fs, blk64_t* blocknr, e2_blkcnt_t blockcnt, blk64_t, int, void* priv) {
    auto* c = static_cast<MapCtx*>(priv);
    if (blockcnt < 0) {
      c->w->meta.push_back(static_cast<double>(*blocknr));  // an indirect, double or triple indirect block
      return 0;
    }
    return c->w->Add(c->ino, *c->path, static_cast<uint64_t>(blockcnt), *blocknr, 1, false, c->start) ? 0 : BLOCK_ABORT;
  }

  bool BlockMap(uint32_t ino, const std::string& path) {
    MapCtx ctx{this, ino, &path, extents.size() / 4};
    errcode_t err = ext2fs_block_iterate3(fs_, ino, BLOCK_FLAG_READ_ONLY, nullptr, OnBlock, &ctx);
    if (failed_) return false;
    if (err) return Fail(err, ino, path, "reading the block map");
    return true;
  }

  bool SlowSymlink(uint32_t ino, const std::string& path, struct ext2_inode* inode) {
    if (inodes.back().size > static_cast<uint64_t>(fs_->blocksize)) {
      return FailBlock(ino, path, "symbolic link of " + std::to_string(inodes.back().size) + " bytes, more than a block", 0);
    }
    ext2_file_t file = nullptr;
    errcode_t err = ext2fs_file_open2(fs_, ino, inode, 0, &file);
    if (err) return Fail(err, ino, path, "opening the symbolic link");
    std::string text(inodes.back().size, '\0');
    unsigned int got = 0;
    err = ext2fs_file_read(file, text.data(), static_cast<unsigned int>(text.size()), &got);
    ext2fs_file_close(file);
    if (err) return Fail(err, ino, path, "reading the symbolic link");
    text.resize(got);
    inodes.back().target = std::move(text);
    return true;
  }

  ext2_filsys fs_;
  Reader* reader_;
  std::unordered_map<uint32_t, size_t> index_;
  struct Found {
    uint32_t ino;
    std::string name;
    uint8_t type;
  };
  std::vector<Found> found_;
  uint32_t current_ = 0;
  std::string currentPath_;
  bool failed_ = false;
};

// ---------------------------------------------------------------------------------------------
// The job.

class TocWorker : public Napi::AsyncWorker {
 public:
  TocWorker(Napi::Env env, bool isFile, std::string file, IscsiParams iscsi, uint64_t offset, uint32_t fileBlockSize,
            uint32_t windowBytes, uint32_t windows)
      : Napi::AsyncWorker(env, "ext2TocAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        isFile_(isFile),
        file_(std::move(file)),
        iscsi_(std::move(iscsi)),
        offset_(offset),
        fileBlockSize_(fileBlockSize),
        windowBytes_(windowBytes),
        windows_(windows) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // The device let go of here, on this thread, however the job ends (Source::Close).
    struct CloseAtEnd {
      std::unique_ptr<Source>& src;
      ~CloseAtEnd() {
        if (src) src->Close();
      }
    } closeAtEnd{src_};
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
    reader_ = std::make_unique<Reader>(src_.get(), offset_, windowBytes_, windows_);
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
    walk_ = std::make_unique<Walk>(fs, reader_.get());
    if (!walk_->Run()) {
      error_ = walk_->error;
      failed_ = true;
    }
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
    out.Set("deviceBytes", Napi::Number::New(env, static_cast<double>(src_->Size())));
    out.Set("deviceBlockSize", Napi::Number::New(env, src_->BlockSize()));
    out.Set("reads", Napi::Number::New(env, static_cast<double>(reader_->misses)));
    out.Set("bytesRead", Napi::Number::New(env, static_cast<double>(reader_->bytesRead)));

    Napi::Array inodes = Napi::Array::New(env, walk_->inodes.size());
    for (size_t i = 0; i < walk_->inodes.size(); i++) {
      const InodeRec& r = walk_->inodes[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("ino", r.ino);
      o.Set("mode", r.mode);
      o.Set("uid", r.uid);
      o.Set("gid", r.gid);
      o.Set("links", r.links);
      o.Set("flags", r.flags);
      o.Set("sizeHigh", Napi::Number::New(env, static_cast<double>(r.size >> 32)));
      o.Set("sizeLow", Napi::Number::New(env, static_cast<double>(r.size & 0xffffffffu)));
      o.Set("mtime", Napi::Number::New(env, static_cast<double>(r.mtime)));
      o.Set("mtimeNsec", r.mtimeNsec);
      if (LINUX_S_ISCHR(r.mode) || LINUX_S_ISBLK(r.mode)) o.Set("rdev", r.rdev);
      o.Set("extStart", Napi::Number::New(env, static_cast<double>(r.extStart)));
      o.Set("extCount", Napi::Number::New(env, static_cast<double>(r.extCount)));
      o.Set("metaStart", Napi::Number::New(env, static_cast<double>(r.metaStart)));
      o.Set("metaCount", Napi::Number::New(env, static_cast<double>(r.metaCount)));
      if (LINUX_S_ISLNK(r.mode)) o.Set("target", Napi::Buffer<char>::Copy(env, r.target.data(), r.target.size()));
      if (r.hasInline) {
        o.Set("inline", true);
        if (!LINUX_S_ISLNK(r.mode)) o.Set("inlineData", Napi::Buffer<char>::Copy(env, r.inlineData.data(), r.inlineData.size()));
      }
      if (r.fastSymlink) o.Set("fastSymlink", true);
      inodes[i] = o;
    }
    out.Set("inodes", inodes);

    Napi::Array links = Napi::Array::New(env, walk_->links.size());
    for (size_t i = 0; i < walk_->links.size(); i++) {
      const Link& l = walk_->links[i];
      Napi::Array a = Napi::Array::New(env, 4);
      a[0u] = Napi::Number::New(env, l.parent);
      a[1u] = Napi::Number::New(env, l.ino);
      a[2u] = Napi::Number::New(env, l.fileType);
      a[3u] = Napi::Buffer<char>::Copy(env, l.name.data(), l.name.size());
      links[i] = a;
    }
    out.Set("links", links);
    out.Set("extents", Doubles(env, walk_->extents));
    out.Set("meta", Doubles(env, walk_->meta));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
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
  WalkError error_;
  bool failed_ = false;
};

std::string Str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

// ext2TocAsync(source, offset, options):
//   source: { file, blockSize } | { initiator, portal, target, lun, user?, password?, targetUser?,
//            targetPassword?, headerDigest?, timeoutSec }
//   offset: the byte where the file system starts; options: { windowBytes, windows }
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
  auto* w = new TocWorker(env, isFile, std::move(file), std::move(p), offset, fileBlockSize, windowBytes, windows);
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
