// Device-side helpers every kernel file shares: the grid-stride loop (any grid size is
// correct; the host picks one that fills the device) and sums in a fixed order (the same bits
// every run). Device code only: the host harnesses in tests/cuda/ call the per-thread
// functions directly instead.
#pragma once
#include "common.h"

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// for (i = this thread's first item; i < count; i += every thread of the grid)
#define FG_GRID_STRIDE_LOOP(i, count)                                                          \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (count);   \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

namespace fastgen {
namespace gpu {

// Sum over a warp by a fixed shuffle tree: lane 0 ends with the total, the same bits every run.
template <typename S> __device__ __forceinline__ S warp_sum(S v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

// Sum over a thread block (blockDim.x a multiple of 32, at most 1024): warps first, then warp 0
// over the warps' sums; thread 0 ends with the total. Every thread of the block must call it.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double warp_sums[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // warp_sums may still be read by the previous call's warp 0
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) v = warp_sum(lane < warps ? warp_sums[lane] : 0.0);
  return v;
}

}  // namespace gpu
}  // namespace fastgen
#endif
