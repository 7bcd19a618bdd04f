#pragma once
#include <napi.h>

namespace xcopy {
// sdNotify(state): the systemd notification protocol, sd_notify(3) (notify.cc).
void InitNotify(Napi::Env env, Napi::Object exports);
}
