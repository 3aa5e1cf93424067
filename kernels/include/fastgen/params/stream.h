// The random stream every kernel's params struct embeds, and the params of the kernel that
// writes a stream buffer (kernels/sampling.cu fg_set_stream).
//
// Rules of every struct under params/ (one header per op, included by the op's kernel and by
// the host harnesses in tests/cuda/): structs are passed to kernels by value; every field is 8
// bytes wide (pointers, int64_t, uint64_t, double) so that the layout has no padding and the
// op's launcher module (fastgen/_native/cuda_<op>.py) mirrors it with a plain NumPy structured
// dtype, its one Python mirror, checked against sizeof/offsetof by tests/cuda/*_host.py.
// Scalars are double and converted to the kernel's T inside, which rounds exactly as the
// CPU's T(value) does. Arrays are C-contiguous unless a stride is given.
//
// Random streams: a kernel draws from (seed, offset + rel) where (seed, offset) come from `rng`
// when it is set (a device array {seed, offset}, so that a captured CUDA graph can be replayed
// with a new offset written before each replay) and from the `seed` / `offset` fields otherwise;
// `rel` is the field `offset` when `rng` is set. Element (r, c) of a [rows, cols] call uses flat
// index r * cols + c, exactly like csrc/ (see philox.h for the counter layout).
#pragma once
#include "../common.h"
#include "../philox.h"

namespace fastgen {
namespace gpu {

struct StreamParams {
  const uint64_t* rng;  // device {seed, offset}, or nullptr to use the fields below
  uint64_t seed;
  uint64_t offset;      // absolute offset (rng == nullptr) or offset relative to rng[1]
};

FG_HD uint64_t stream_seed(const StreamParams& s) { return s.rng ? s.rng[0] : s.seed; }
FG_HD uint64_t stream_offset(const StreamParams& s) { return s.rng ? s.rng[1] + s.offset : s.offset; }
// Philox block `block` of the stream the params name.
FG_HD Philox4 stream_block(const StreamParams& s, uint64_t block) {
  return philox_block(stream_seed(s), stream_offset(s), block);
}

// Writes {seed, offset} into a device stream buffer from inside the launch sequence (a kernel
// rather than a host copy, so it is ordered on the stream like everything else).
struct SetStreamParams {
  uint64_t* rng;
  uint64_t seed, offset;
};

}  // namespace gpu
}  // namespace fastgen
