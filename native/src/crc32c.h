#pragma once
#include <napi.h>

namespace xcopy {
void InitCrc32c(Napi::Env env, Napi::Object exports);
}
