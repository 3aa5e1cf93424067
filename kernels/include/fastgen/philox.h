// Philox4x32-10 counter-based generator (Salmon, Moraes, Dror, Shaw, "Parallel random numbers:
// as easy as 1, 2, 3", SC 2011). Known-answer vectors: Random123 tests/kat_vectors.
//
// fastgen's stream layout (the contract every backend follows):
//   key     = 64-bit seed                       {seed_lo, seed_hi}
//   counter = {block_lo, block_hi, offset_lo, offset_hi}
// where `offset` is the per-call offset handed out by fastgen.Generator and element i of a
// call reads lane (i % 4) of block (i / 4). One call therefore consumes exactly one offset,
// and the value drawn for element i depends only on (seed, offset, i): never on threads,
// tiling or device.
#pragma once
#include "common.h"

namespace fastgen {

struct Philox4 { uint32_t v[4]; };

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1

FG_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

FG_HD Philox4 philox4x32_round(Philox4 c, uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  philox_mulhilo(kPhiloxM0, c.v[0], hi0, lo0);
  philox_mulhilo(kPhiloxM1, c.v[2], hi1, lo1);
  Philox4 r;
  r.v[0] = hi1 ^ c.v[1] ^ k0;
  r.v[1] = lo1;
  r.v[2] = hi0 ^ c.v[3] ^ k1;
  r.v[3] = lo0;
  return r;
}

// The bare bijection: 10 rounds with the key bumped between rounds.
FG_HD Philox4 philox4x32_10(Philox4 ctr, uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    if (round > 0) { k0 += kPhiloxW0; k1 += kPhiloxW1; }
    ctr = philox4x32_round(ctr, k0, k1);
  }
  return ctr;
}

// Block `block` of the stream (seed, offset).
FG_HD Philox4 philox_block(uint64_t seed, uint64_t offset, uint64_t block) {
  Philox4 c;
  c.v[0] = static_cast<uint32_t>(block);
  c.v[1] = static_cast<uint32_t>(block >> 32);
  c.v[2] = static_cast<uint32_t>(offset);
  c.v[3] = static_cast<uint32_t>(offset >> 32);
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

}  // namespace fastgen
