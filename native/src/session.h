// A libiscsi context driven by libuv, the way QEMU's block/iscsi.c drives it from its own loop:
// one uv_poll on iscsi_get_fd(), re-armed only when iscsi_which_events() changes (it can be 0:
// ask again ~100 ms later), and a ~1 s timer calling iscsi_service(ctx, 0) so that libiscsi's
// timeouts and reconnects run. libiscsi's callbacks only queue completions; promises are settled
// after iscsi_service() returns, never from inside libiscsi.
//
// Thin C++: arguments are validated in TypeScript (src/initiator/); this layer converts and calls.
#pragma once

#include <napi.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

extern "C" {
#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>
}

namespace xcopy {

class Session;

enum class PendingKind { Connect, Scsi, Discovery, Logout };

// One request in flight. Owned by Session::inflight_ until settled.
struct Pending {
  Pending(Napi::Env env, Session* owner, PendingKind kind)
      : owner(owner), kind(kind), deferred(Napi::Promise::Deferred::New(env)) {}
  Session* owner;
  PendingKind kind;
  Napi::Promise::Deferred deferred;
  Napi::Reference<Napi::Buffer<uint8_t>> dataOut;  // keeps Data-Out bytes alive (not copied)
  Napi::Reference<Napi::Buffer<uint8_t>> dataIn;   // Data-In lands here directly
  struct iscsi_data outDesc {};
  struct scsi_task* task = nullptr;
  bool completed = false;
  int status = 0;
  std::string error;
  std::vector<std::pair<std::string, std::vector<std::string>>> targets;  // SendTargets result
};

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Session(const Napi::CallbackInfo& info);
  ~Session() override;

 private:
  // JS methods.
  Napi::Value SetTargetName(const Napi::CallbackInfo& info);
  Napi::Value SetSessionType(const Napi::CallbackInfo& info);
  Napi::Value SetHeaderDigest(const Napi::CallbackInfo& info);
  Napi::Value SetInitiatorChap(const Napi::CallbackInfo& info);
  Napi::Value SetTargetChap(const Napi::CallbackInfo& info);
  Napi::Value SetTimeout(const Napi::CallbackInfo& info);
  Napi::Value SetAutoReconnect(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value Execute(const Napi::CallbackInfo& info);
  Napi::Value Discovery(const Napi::CallbackInfo& info);
  Napi::Value Logout(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value QueueLength(const Napi::CallbackInfo& info);
  Napi::Value LastError(const Napi::CallbackInfo& info);

  // Event loop integration.
  void Arm();
  void Service(int revents);
  void Drain();
  void UpdateRefs();
  void ClosePoll();
  void CloseHandles();
  void Shutdown(const char* why);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTick(uv_timer_t* handle);
  static void OnRetry(uv_timer_t* handle);
  static void OnComplete(struct iscsi_context* ctx, int status, void* command_data, void* private_data);

  Napi::Value Submit(Napi::Env env, PendingKind kind, const std::function<int(Pending*)>& start);
  void Fail(Pending* p);
  Napi::Value Settle(Pending* p);
  Pending* Track(std::unique_ptr<Pending> p);
  void RequireContext(Napi::Env env);

  Napi::Env env_;
  uv_loop_t* loop_ = nullptr;
  struct iscsi_context* ctx_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* tick_ = nullptr;
  uv_timer_t* retry_ = nullptr;
  int fd_ = -1;
  int events_ = 0;
  bool draining_ = false;
  bool referenced_ = false;
  int timeout_ = -1;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
  std::set<Pending*> inflight_;
  std::vector<Pending*> completed_;
};

}  // namespace xcopy
