#pragma once
#include <napi.h>

namespace xcopy {
void InitFileOps(Napi::Env env, Napi::Object exports);
}
