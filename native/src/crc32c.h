#pragma once
#include <napi.h>
#include <stddef.h>
#include <stdint.h>

namespace xcopy {
void InitCrc32c(Napi::Env env, Napi::Object exports);
// CRC32C of p[0..n) continuing `previous` (0 to start), same convention as crc32c() in JS. Safe
// from any thread once InitCrc32c has run (the tables and the CPU check are set up there).
uint32_t Crc32cUpdate(uint32_t previous, const uint8_t* p, size_t n);
}
