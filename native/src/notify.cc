// The service manager's readiness protocol (sd_notify(3), systemd 252): one datagram of
// newline-separated VAR=VALUE assignments ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...")
// sent to the AF_UNIX socket named by $NOTIFY_SOCKET — a path, or "@name" for the abstract
// namespace. Node has no datagram sockets of the unix family, hence this small binding; it is
// written from the protocol's manual page, not from libsystemd (not linked: no new dependency).
#include "notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace xcopy {
namespace {

// sdNotify(state: string): true when sent, false when $NOTIFY_SOCKET is unset (not under a
// service manager); throws with the errno text when the socket refuses the datagram.
Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    throw Napi::TypeError::New(env, "sdNotify(state): state must be a string");
  }
  const std::string state = info[0].As<Napi::String>().Utf8Value();
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (name == nullptr || name[0] == '\0') return Napi::Boolean::New(env, false);
  const size_t len = std::strlen(name);
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if ((name[0] != '/' && name[0] != '@') || len >= sizeof addr.sun_path) {
    throw Napi::Error::New(env, std::string("NOTIFY_SOCKET is not a unix socket path or @name: ") + name);
  }
  std::memcpy(addr.sun_path, name, len);
  if (name[0] == '@') addr.sun_path[0] = '\0';  // the abstract namespace
  const socklen_t alen = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + len);
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Napi::Error::New(env, std::string("socket: ") + std::strerror(errno));
  const ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<struct sockaddr*>(&addr), alen);
  const int saved = errno;
  close(fd);
  if (n < 0) throw Napi::Error::New(env, std::string("sendto NOTIFY_SOCKET: ") + std::strerror(saved));
  return Napi::Boolean::New(env, true);
}

}  // namespace

void InitNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}

}  // namespace xcopy
