// Params of the pooling kernels (kernels/pool.cu, csrc/pool.cpp); Python mirror:
// fastgen/_native/cuda_pool.py. Rules: params/stream.h.
#pragma once
#include "../common.h"

namespace fastgen {
namespace gpu {

// Images [planes, H, W], each plane contiguous; indices are int64 flat positions h * W + w in the
// input plane of the pooling (torch's convention).
struct MaxPoolGpuParams {
  const void* in;       // [planes, in_h, in_w]
  void* out;            // [planes, out_h, out_w]
  int64_t* indices;     // [planes, out_h, out_w]
  int64_t planes, in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
};

// scatter: dst [planes, dst_plane] = 0, then dst[plane][indices[i]] (+)= src[plane][i];
// gather: dst [planes, dst_plane] = src[plane][indices[plane][i]] (indices [planes, dst_plane]).
struct PlanesGpuParams {
  const void* src;
  const int64_t* indices;
  void* dst;
  int64_t planes, src_plane, dst_plane;
  int64_t accumulate;   // scatter: 0 assign (max unpooling), 1 add (max pooling's backward)
};

// Average unpooling [planes, h, w] -> [planes, h kh, w kw] and its adjoint (block sums).
struct AvgUnpoolGpuParams {
  const void* in;       // forward: [planes, h, w]; backward: the gradient [planes, h kh, w kw]
  void* out;            // forward: [planes, h kh, w kw]; backward: [planes, h, w]
  int64_t planes, h, w, kernel_h, kernel_w;   // h, w: the small (pooled) size
};

}  // namespace gpu
}  // namespace fastgen
