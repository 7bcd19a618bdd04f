// CRC32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 7143 13.1) over a Buffer, the
// project's one CRC32C: the SSE4.2 CRC32 instruction where the CPU has it (checked once at load,
// __builtin_cpu_supports), else portable slicing-by-8 tables. crc32c(data, previous) continues a
// running CRC. The TypeScript face is src/native/crc32c.ts, used for every size (iSCSI header and
// data digests, OBF records; the measurement behind that is in docs/native.md).
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

// The portable path: any CPU, either byte order (the four bytes are assembled least significant
// first; compilers make that one load on little-endian hosts).
uint32_t Software(uint32_t crc, const uint8_t* p, size_t n) {
  while (n >= 8) {
    uint32_t lo = (static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
                   static_cast<uint32_t>(p[3]) << 24) ^
                  crc;
    crc = g_table[7][lo & 0xff] ^ g_table[6][(lo >> 8) & 0xff] ^ g_table[5][(lo >> 16) & 0xff] ^ g_table[4][lo >> 24] ^
          g_table[3][p[4]] ^ g_table[2][p[5]] ^ g_table[1][p[6]] ^ g_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ g_table[0][(crc ^ *p++) & 0xff];
  return crc;
}

// The hardware path runs three independent CRC streams over the thirds of each 3 × kLane-byte
// block (the crc32 instruction has a latency of 3 cycles and a throughput of 1: one stream uses a
// third of it), then joins them: the register after A‖B is the register after A shifted over
// |B| bytes of zeros, XOR the register of B started from zero. A shift over kLane bytes is a
// multiplication by x^(8·kLane) mod P (g_shift, computed at start).
constexpr size_t kLane = 2048;
uint32_t g_shift = 0;

// a·b mod P, both reflected (bit 31 is x^0).
uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1) ? (b >> 1) ^ 0x82F63B78u : b >> 1;
  }
  return p;
}

void BuildShift() {
  uint32_t k = 1u << 31;  // x^0
  for (size_t i = 0; i < 8 * kLane; i++) k = (k & 1) ? (k >> 1) ^ 0x82F63B78u : k >> 1;  // · x
  g_shift = k;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 3 * kLane) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < kLane; i += 8) {
      uint64_t v0, v1, v2;
      memcpy(&v0, p + i, 8);
      memcpy(&v1, p + kLane + i, 8);
      memcpy(&v2, p + 2 * kLane + i, 8);
      c = _mm_crc32_u64(c, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    c = MultModP(g_shift, static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1);
    c = MultModP(g_shift, static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c2);
    p += 3 * kLane;
    n -= 3 * kLane;
  }
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

uint32_t PortableUpdate(uint32_t previous, const uint8_t* p, size_t n) { return ~Software(~previous, p, n); }

// crc32c(buffer, previous) → unsigned 32-bit CRC (Update = Crc32cUpdate, the path chosen at load);
// crc32cPortable(buffer, previous), the same by the portable tables on any CPU (Update =
// PortableUpdate), so the tests cover the fallback where crc32c takes the SSE4.2 path.
template <uint32_t (*Update)(uint32_t, const uint8_t*, size_t)>
Napi::Value Crc32cCall(const Napi::CallbackInfo& info) {
  auto buf = info[0].As<Napi::Uint8Array>();
  uint32_t prev = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Number::New(info.Env(), static_cast<double>(Update(prev, buf.Data(), buf.ByteLength())));
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
  BuildShift();
#if defined(__x86_64__)
  __builtin_cpu_init();
  g_hw = __builtin_cpu_supports("sse4.2");
#endif
  exports.Set("crc32c", Napi::Function::New(env, Crc32cCall<Crc32cUpdate>, "crc32c"));
  exports.Set("crc32cPortable", Napi::Function::New(env, Crc32cCall<PortableUpdate>, "crc32cPortable"));
  exports.Set("crc32cHardware", Napi::Boolean::New(env, g_hw));
}

}  // namespace xcopy
