// Parameter struct of the categorical sampler's CUDA kernel (kernels/categorical.cu), passed by
// value. Same rules as gpu_params.h: every field is 8 bytes wide, so there is no padding and
// fastgen/_cuda_categorical.py mirrors it with a NumPy structured dtype (checked against this
// layout by tests/cuda/test_cuda_categorical_host.py through tests/cuda/harness_categorical.cu).
#pragma once
#include "gpu_params.h"

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
