#include "session.h"

#include <poll.h>

#include <cstdio>
#include <cstring>

namespace xcopy {

namespace {

constexpr uint64_t kTickMs = 1000;   // iscsi_service(ctx, 0) period: timeouts, reconnects, NOPs
constexpr uint64_t kRetryMs = 100;   // iscsi_which_events() == 0: ask again this much later

// uv handles are freed in their close callback (they must outlive uv_close()).
template <typename T>
void CloseAndFree(T* handle) {
  if (handle == nullptr) return;
  handle->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(handle),
           [](uv_handle_t* h) { delete reinterpret_cast<T*>(h); });
}

}  // namespace

Napi::Function Session::Init(Napi::Env env) {
  return DefineClass(
      env, "NativeSession",
      {
          InstanceMethod("setTargetName", &Session::SetTargetName),
          InstanceMethod("setSessionType", &Session::SetSessionType),
          InstanceMethod("setHeaderDigest", &Session::SetHeaderDigest),
          InstanceMethod("setInitiatorChap", &Session::SetInitiatorChap),
          InstanceMethod("setTargetChap", &Session::SetTargetChap),
          InstanceMethod("setTimeout", &Session::SetTimeout),
          InstanceMethod("setAutoReconnect", &Session::SetAutoReconnect),
          InstanceMethod("connect", &Session::Connect),
          InstanceMethod("execute", &Session::Execute),
          InstanceMethod("discovery", &Session::Discovery),
          InstanceMethod("logout", &Session::Logout),
          InstanceMethod("close", &Session::Close),
          InstanceMethod("queueLength", &Session::QueueLength),
          InstanceMethod("lastError", &Session::LastError),
      });
}

// new NativeSession(initiatorName: string)
Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info), env_(info.Env()) {
  std::string initiator = info[0].As<Napi::String>();
  ctx_ = iscsi_create_context(initiator.c_str());
  if (ctx_ == nullptr) throw Napi::Error::New(env_, "iscsi_create_context failed");
  napi_status st = napi_get_uv_event_loop(env_, &loop_);
  if (st != napi_ok) throw Napi::Error::New(env_, "no uv loop");
  asyncContext_ = std::make_unique<Napi::AsyncContext>(env_, "xcopy-agent:iscsi");

  tick_ = new uv_timer_t;
  uv_timer_init(loop_, tick_);
  tick_->data = this;
  uv_timer_start(tick_, OnTick, kTickMs, kTickMs);
  uv_unref(reinterpret_cast<uv_handle_t*>(tick_));  // never keeps the process alive by itself

  retry_ = new uv_timer_t;
  uv_timer_init(loop_, retry_);
  retry_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(retry_));
}

Session::~Session() {
  // Reached only when no request is in flight (the JS object is referenced while one is).
  CloseHandles();
  if (ctx_ != nullptr) {
    iscsi_destroy_context(ctx_);
    ctx_ = nullptr;
  }
  for (Pending* p : inflight_) delete p;
  inflight_.clear();
}

void Session::RequireContext(Napi::Env env) {
  if (ctx_ == nullptr) throw Napi::Error::New(env, "session is closed");
}

Napi::Value Session::SetTargetName(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  std::string name = info[0].As<Napi::String>();
  return Napi::Number::New(info.Env(), iscsi_set_targetname(ctx_, name.c_str()));
}

Napi::Value Session::SetSessionType(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  bool discovery = info[0].As<Napi::Boolean>();
  return Napi::Number::New(info.Env(),
                           iscsi_set_session_type(ctx_, discovery ? ISCSI_SESSION_DISCOVERY : ISCSI_SESSION_NORMAL));
}

// setHeaderDigest(mode): 0 NONE, 1 NONE_CRC32C, 2 CRC32C_NONE, 3 CRC32C (libiscsi's order of preference)
Napi::Value Session::SetHeaderDigest(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  int mode = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(info.Env(),
                           iscsi_set_header_digest(ctx_, static_cast<enum iscsi_header_digest>(mode)));
}

Napi::Value Session::SetInitiatorChap(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  std::string user = info[0].As<Napi::String>();
  std::string pass = info[1].As<Napi::String>();
  int rc = iscsi_set_initiator_username_pwd(ctx_, user.c_str(), pass.c_str());
  std::fill(pass.begin(), pass.end(), '\0');
  return Napi::Number::New(info.Env(), rc);
}

Napi::Value Session::SetTargetChap(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  std::string user = info[0].As<Napi::String>();
  std::string pass = info[1].As<Napi::String>();
  int rc = iscsi_set_target_username_pwd(ctx_, user.c_str(), pass.c_str());
  std::fill(pass.begin(), pass.end(), '\0');
  return Napi::Number::New(info.Env(), rc);
}

// setTimeout(seconds): applies to PDUs created after the call (iscsi.h); 0 = none.
Napi::Value Session::SetTimeout(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  int t = info[0].As<Napi::Number>().Int32Value();
  if (t != timeout_) {
    iscsi_set_timeout(ctx_, t);
    timeout_ = t;
  }
  return info.Env().Undefined();
}

Napi::Value Session::SetAutoReconnect(const Napi::CallbackInfo& info) {
  RequireContext(info.Env());
  bool on = info[0].As<Napi::Boolean>();
  iscsi_set_noautoreconnect(ctx_, on ? 0 : 1);
  return info.Env().Undefined();
}

Pending* Session::Track(std::unique_ptr<Pending> p) {
  Pending* raw = p.release();
  inflight_.insert(raw);
  return raw;
}

// Starts a request that only needs the context (connect, discovery, logout): tracks it, lets
// `start` submit it to libiscsi, and settles it at once when libiscsi refuses to start it.
Napi::Value Session::Submit(Napi::Env env, PendingKind kind, const std::function<int(Pending*)>& start) {
  RequireContext(env);
  auto owned = std::make_unique<Pending>(env, this, kind);
  Napi::Promise promise = owned->deferred.Promise();
  Pending* p = Track(std::move(owned));
  if (start(p) != 0) {
    Fail(p);
    return promise;
  }
  Arm();
  UpdateRefs();
  return promise;
}

// A request libiscsi refused to start: settle it with libiscsi's error text.
void Session::Fail(Pending* p) {
  p->completed = true;
  p->status = SCSI_STATUS_ERROR;
  p->error = iscsi_get_error(ctx_);
  completed_.push_back(p);
  Drain();
}

// connect(portal, lun): TCP connect + login (+ libiscsi's UA-consuming TEST UNIT READY when lun >= 0).
Napi::Value Session::Connect(const Napi::CallbackInfo& info) {
  std::string portal = info[0].As<Napi::String>();
  int lun = info[1].As<Napi::Number>().Int32Value();
  return Submit(info.Env(), PendingKind::Connect,
                [&](Pending* p) { return iscsi_full_connect_async(ctx_, portal.c_str(), lun, OnComplete, p); });
}

// execute(lun, cdb, direction, dataOut | null, dataInLength[, dataInBuffer])
//   direction: 0 none, 1 read (Data-In), 2 write (Data-Out)
Napi::Value Session::Execute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireContext(env);
  int lun = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> cdb = info[1].As<Napi::Buffer<uint8_t>>();
  int dir = info[2].As<Napi::Number>().Int32Value();
  uint32_t dataInLength = info[4].As<Napi::Number>().Uint32Value();

  auto owned = std::make_unique<Pending>(env, this, PendingKind::Scsi);
  int expxferlen = 0;
  bool hasOut = dir == SCSI_XFER_WRITE && info[3].IsBuffer();
  if (hasOut) {
    Napi::Buffer<uint8_t> out = info[3].As<Napi::Buffer<uint8_t>>();
    owned->dataOut = Napi::Persistent(out);
    owned->outDesc.data = out.Data();
    owned->outDesc.size = out.Length();
    expxferlen = static_cast<int>(out.Length());
  } else if (dir == SCSI_XFER_READ) {
    expxferlen = static_cast<int>(dataInLength);
  }
  owned->task = scsi_create_task(static_cast<int>(cdb.Length()), cdb.Data(), dir, expxferlen);
  if (owned->task == nullptr) throw Napi::Error::New(env, "scsi_create_task failed (out of memory)");
  if (dir == SCSI_XFER_READ && dataInLength > 0) {
    // Data-In is placed straight into a JS Buffer: no copy after the socket read. The caller
    // may lend its own (info[5], at least dataInLength bytes, checked in TypeScript) so that
    // hot loops reuse buffers instead of allocating one per command.
    Napi::Buffer<uint8_t> in = info.Length() > 5 && info[5].IsBuffer()
                                   ? info[5].As<Napi::Buffer<uint8_t>>()
                                   : Napi::Buffer<uint8_t>::New(env, dataInLength);
    owned->dataIn = Napi::Persistent(in);
    scsi_task_add_data_in_buffer(owned->task, static_cast<int>(dataInLength), in.Data());
  }
  Napi::Promise promise = owned->deferred.Promise();
  Pending* p = Track(std::move(owned));
  if (iscsi_scsi_command_async(ctx_, lun, p->task, OnComplete, hasOut ? &p->outDesc : nullptr, p) != 0) {
    Fail(p);
    return promise;
  }
  Arm();
  UpdateRefs();
  return promise;
}

// discovery(): SendTargets=All on a logged-in discovery session.
Napi::Value Session::Discovery(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), PendingKind::Discovery,
                [&](Pending* p) { return iscsi_discovery_async(ctx_, OnComplete, p); });
}

Napi::Value Session::Logout(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), PendingKind::Logout, [&](Pending* p) { return iscsi_logout_async(ctx_, OnComplete, p); });
}

// close(): every pending promise settles (status CANCELLED), the socket closes, handles go.
Napi::Value Session::Close(const Napi::CallbackInfo& info) {
  Shutdown("session closed");
  return info.Env().Undefined();
}

void Session::Shutdown(const char* why) {
  if (ctx_ != nullptr) {
    iscsi_scsi_cancel_all_tasks(ctx_);  // callbacks queue CANCELLED completions
    ClosePoll();                        // stop polling before libiscsi closes the fd
    iscsi_destroy_context(ctx_);        // cancels remaining PDUs (login, logout, discovery)
    ctx_ = nullptr;
  }
  for (Pending* p : inflight_) {
    if (!p->completed) {
      p->completed = true;
      p->status = SCSI_STATUS_CANCELLED;
      p->error = why;
      completed_.push_back(p);
    }
  }
  CloseHandles();
  Drain();
}

Napi::Value Session::QueueLength(const Napi::CallbackInfo& info) {
  if (ctx_ == nullptr) return Napi::Number::New(info.Env(), 0);
  return Napi::Number::New(info.Env(), iscsi_queue_length(ctx_));  // outqueue + waitpdu (O(n): not for hot paths)
}

Napi::Value Session::LastError(const Napi::CallbackInfo& info) {
  if (ctx_ == nullptr) return Napi::String::New(info.Env(), "");
  const char* e = iscsi_get_error(ctx_);
  return Napi::String::New(info.Env(), e ? e : "");
}

// ---- libiscsi callback: runs inside iscsi_service(); it only records and queues. ----
void Session::OnComplete(struct iscsi_context* ctx, int status, void* command_data, void* private_data) {
  Pending* p = static_cast<Pending*>(private_data);
  if (p == nullptr || p->completed) return;
  p->completed = true;
  p->status = status;
  if (status != SCSI_STATUS_GOOD && status != SCSI_STATUS_CONDITION_MET) {
    const char* e = iscsi_get_error(ctx);
    p->error = e ? e : "";
  }
  if (p->kind == PendingKind::Discovery && status == SCSI_STATUS_GOOD && command_data != nullptr) {
    // The list is only valid for the duration of the callback: copy it.
    for (auto* a = static_cast<struct iscsi_discovery_address*>(command_data); a != nullptr; a = a->next) {
      std::vector<std::string> portals;
      for (auto* tp = a->portals; tp != nullptr; tp = tp->next) portals.emplace_back(tp->portal ? tp->portal : "");
      p->targets.emplace_back(a->target_name ? a->target_name : "", std::move(portals));
    }
  }
  p->owner->completed_.push_back(p);
}

// ---- settling, on the JS thread, outside libiscsi ----
Napi::Value Session::Settle(Pending* p) {
  Napi::Env env = env_;
  Napi::Object r = Napi::Object::New(env);
  r.Set("status", Napi::Number::New(env, p->status));
  if (!p->error.empty()) r.Set("error", Napi::String::New(env, p->error));
  if (p->kind == PendingKind::Scsi && p->task != nullptr) {
    struct scsi_task* t = p->task;
    bool finished = p->status >= 0 && p->status <= 0xff;  // a SCSI status came back from the target
    if (finished) {
      r.Set("residualKind", Napi::Number::New(env, static_cast<int>(t->residual_status)));
      r.Set("residual", Napi::Number::New(env, static_cast<double>(t->residual)));
    }
    if (p->status == SCSI_STATUS_CHECK_CONDITION && t->datain.data != nullptr && t->datain.size >= 2) {
      // Data segment of a SCSI Response: SenseLength (2 bytes) then the sense data (RFC 7143 11.4.7.2).
      size_t len = (static_cast<size_t>(t->datain.data[0]) << 8) | t->datain.data[1];
      if (len > static_cast<size_t>(t->datain.size) - 2) len = static_cast<size_t>(t->datain.size) - 2;
      r.Set("sense", Napi::Buffer<uint8_t>::Copy(env, t->datain.data + 2, len));
    }
    if (!p->dataIn.IsEmpty()) {
      if (finished) r.Set("data", p->dataIn.Value());
      p->dataIn.Reset();
    }
    p->dataOut.Reset();
  }
  if (p->kind == PendingKind::Discovery) {
    Napi::Array arr = Napi::Array::New(env, p->targets.size());
    for (size_t i = 0; i < p->targets.size(); i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", p->targets[i].first);
      Napi::Array portals = Napi::Array::New(env, p->targets[i].second.size());
      for (size_t j = 0; j < p->targets[i].second.size(); j++) portals.Set(j, p->targets[i].second[j]);
      o.Set("portals", portals);
      arr.Set(i, o);
    }
    r.Set("targets", arr);
  }
  return r;
}

void Session::Drain() {
  // Re-entered only from the microtasks that run when the callback scope below closes, after
  // draining_ is cleared; a nested call while the loop runs would just find nothing to do.
  if (draining_ || completed_.empty()) {
    UpdateRefs();
    return;
  }
  Napi::HandleScope scope(env_);
  // A callback scope: when it closes, Node runs the microtasks the resolutions queued.
  Napi::CallbackScope cbScope(env_, *asyncContext_);
  draining_ = true;
  while (!completed_.empty()) {
    std::vector<Pending*> batch;
    batch.swap(completed_);
    for (Pending* p : batch) {
      inflight_.erase(p);
      std::unique_ptr<Pending> owned(p);
      Napi::Value result = Settle(p);
      if (p->task != nullptr) {
        scsi_free_scsi_task(p->task);
        p->task = nullptr;
      }
      p->deferred.Resolve(result);
    }
  }
  draining_ = false;
  UpdateRefs();
}

// The JS object and the poll handle are referenced only while requests are in flight: an idle
// session neither keeps the process alive nor escapes garbage collection with work pending.
void Session::UpdateRefs() {
  bool busy = !inflight_.empty();
  if (poll_ != nullptr) {
    if (busy) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    else uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  if (retry_ != nullptr) {
    if (busy) uv_ref(reinterpret_cast<uv_handle_t*>(retry_));
    else uv_unref(reinterpret_cast<uv_handle_t*>(retry_));
  }
  if (busy && !referenced_) {
    Ref();
    referenced_ = true;
  } else if (!busy && referenced_) {
    Unref();
    referenced_ = false;
  }
}

void Session::ClosePoll() {
  if (poll_ != nullptr) {
    uv_poll_stop(poll_);
    CloseAndFree(poll_);
    poll_ = nullptr;
  }
  fd_ = -1;
  events_ = 0;
}

void Session::CloseHandles() {
  ClosePoll();
  if (tick_ != nullptr) {
    uv_timer_stop(tick_);
    CloseAndFree(tick_);
    tick_ = nullptr;
  }
  if (retry_ != nullptr) {
    uv_timer_stop(retry_);
    CloseAndFree(retry_);
    retry_ = nullptr;
  }
}

// Re-arm the poll only when the fd or the wanted events change (QEMU iscsi_set_events).
void Session::Arm() {
  if (ctx_ == nullptr) return;
  int fd = iscsi_get_fd(ctx_);
  if (fd != fd_) {
    ClosePoll();
    if (fd >= 0) {
      poll_ = new uv_poll_t;
      if (uv_poll_init(loop_, poll_, fd) != 0) {
        delete poll_;
        poll_ = nullptr;
        return;
      }
      poll_->data = this;
      fd_ = fd;
    }
  }
  int want = iscsi_which_events(ctx_);
  if (want == 0 || poll_ == nullptr) {
    // e.g. during a reconnect: nothing to wait for now, ask again shortly.
    if (poll_ != nullptr && events_ != 0) {
      uv_poll_stop(poll_);
      events_ = 0;
    }
    if (retry_ != nullptr && !uv_is_active(reinterpret_cast<uv_handle_t*>(retry_))) {
      uv_timer_start(retry_, OnRetry, kRetryMs, 0);
    }
    return;
  }
  int uvEvents = ((want & POLLIN) ? UV_READABLE : 0) | ((want & POLLOUT) ? UV_WRITABLE : 0);
  if (uvEvents != events_) {
    uv_poll_start(poll_, uvEvents, OnPoll);
    events_ = uvEvents;
  }
}

void Session::Service(int revents) {
  if (ctx_ == nullptr) return;
  if (iscsi_service(ctx_, revents) < 0) {
    // The connection failed; libiscsi may have reconnected on a new socket that reuses the
    // same descriptor number: start over with a fresh poll handle.
    ClosePoll();
  }
  Arm();
  Drain();
}

void Session::OnPoll(uv_poll_t* handle, int status, int events) {
  Session* self = static_cast<Session*>(handle->data);
  if (self == nullptr) return;
  int revents = 0;
  if (status < 0) revents |= POLLERR;
  if (events & UV_READABLE) revents |= POLLIN;
  if (events & UV_WRITABLE) revents |= POLLOUT;
  if (events & UV_DISCONNECT) revents |= POLLHUP;
  self->Service(revents);
}

void Session::OnTick(uv_timer_t* handle) {
  Session* self = static_cast<Session*>(handle->data);
  if (self == nullptr) return;
  self->Service(0);
}

void Session::OnRetry(uv_timer_t* handle) {
  Session* self = static_cast<Session*>(handle->data);
  if (self == nullptr || self->ctx_ == nullptr) return;
  self->Service(0);
}

}  // namespace xcopy
