// CRC32C (Castagnoli, reflected polynomial 0x82F63B78) over a Buffer: the SSE4.2 CRC32
// instruction where the CPU has it (checked at run time), else slicing-by-8 tables. Same
// convention as src/target/iscsi/crc32c.ts: crc32c(data, previous) continues a running CRC.
// The TypeScript side calls this for large buffers only (OBF records, iSCSI data digests).
#include "crc32c.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace xcopy {

namespace {

uint32_t g_table[8][256];
bool g_hw = false;

void BuildTables() {
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t c = b;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    g_table[0][b] = c;
  }
  for (uint32_t b = 0; b < 256; b++) {
    for (int k = 1; k < 8; k++) g_table[k][b] = (g_table[k - 1][b] >> 8) ^ g_table[0][g_table[k - 1][b] & 0xff];
  }
}

uint32_t Software(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t lo;
    memcpy(&lo, p, 4);
    lo ^= crc;  // little-endian hosts only (x86-64, aarch64)
    crc = g_table[7][lo & 0xff] ^ g_table[6][(lo >> 8) & 0xff] ^ g_table[5][(lo >> 16) & 0xff] ^ g_table[4][lo >> 24] ^
          g_table[3][p[4]] ^ g_table[2][p[5]] ^ g_table[1][p[6]] ^ g_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ g_table[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
#endif

// crc32c(buffer, previous): unsigned 32-bit CRC.
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  auto buf = info[0].As<Napi::Uint8Array>();
  uint32_t prev = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), static_cast<double>(Crc32cUpdate(prev, buf.Data(), buf.ByteLength())));
}

}  // namespace

uint32_t Crc32cUpdate(uint32_t previous, const uint8_t* p, size_t n) {
  uint32_t crc = ~previous;
#if defined(__x86_64__)
  crc = g_hw ? Hardware(crc, p, n) : Software(crc, p, n);
#else
  crc = Software(crc, p, n);
#endif
  return ~crc;
}

void InitCrc32c(Napi::Env env, Napi::Object exports) {
  BuildTables();
#if defined(__x86_64__)
  __builtin_cpu_init();
  g_hw = __builtin_cpu_supports("sse4.2");
#endif
  exports.Set("crc32c", Napi::Function::New(env, Crc32c, "crc32c"));
  exports.Set("crc32cHardware", Napi::Boolean::New(env, g_hw));
}

}  // namespace xcopy
