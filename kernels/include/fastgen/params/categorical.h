// Params of the categorical sampler (kernels/categorical.cu, csrc/categorical.cpp); Python
// mirror: fastgen/_native/cuda_categorical.py. Rules: params/stream.h.
#pragma once
#include "stream.h"

namespace fastgen {
namespace gpu {

// One Gumbel-max draw per row of logits, the CPU's CategoricalParams (csrc/fastgen.h) on the
// device: element (r, c) uses uniform number r * cols + c of the stream (one offset per call).
struct CategoricalGpuParams {
  const void* logits;   // [rows, cols] float32 / float64, finite, row stride logits_stride
  int64_t* out;         // [rows] the drawn column of each row
  int64_t rows, cols;   // cols >= 1
  int64_t logits_stride;
  double temperature;   // > 0; rounded to T inside, as the CPU's static_cast<T>(temperature)
  int64_t top_k;        // 0 or cols: every column competes; 1..cols-1: only the row's top k
  StreamParams stream;
};

}  // namespace gpu
}  // namespace fastgen
