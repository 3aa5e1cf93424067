// Max pooling's window scan, shared by the CPU (csrc/pool.cpp) and the CUDA kernel
// (kernels/pool.cu), so that both pick the same value and argmax bit for bit.
#pragma once
#include "common.h"

namespace fastgen {

// -infinity from its bits (NVRTC has no <limits>).
FG_HD float neg_infinity(float) { return bits_as_float(0xff800000u); }
FG_HD double neg_infinity(double) { return bits_as_double(0xfff0000000000000ull); }

template <typename T> struct PoolMax {
  T value;
  int64_t index;  // flat position h * in_w + w in the input plane
};

// The maximum of the window whose top-left corner is (h0, w0) (it may lie in the padding: only
// the part inside the in_h x in_w plane x is scanned). The first maximum in row-major window
// order wins a tie; padding never wins. A window of NaNs (or an empty one) keeps -infinity and
// the index of its first in-plane cell.
template <typename T>
FG_HD PoolMax<T> max_pool_window(const T* x, int64_t in_h, int64_t in_w, int64_t h0, int64_t w0, int64_t kernel_h,
                                 int64_t kernel_w) {
  const int64_t h_begin = h0 > 0 ? h0 : 0, w_begin = w0 > 0 ? w0 : 0;
  const int64_t h_end = h0 + kernel_h < in_h ? h0 + kernel_h : in_h;
  const int64_t w_end = w0 + kernel_w < in_w ? w0 + kernel_w : in_w;
  PoolMax<T> best{neg_infinity(T()), h_begin * in_w + w_begin};
  for (int64_t h = h_begin; h < h_end; ++h)
    for (int64_t w = w_begin; w < w_end; ++w) {
      const T v = x[h * in_w + w];
      if (v > best.value) {
        best.value = v;
        best.index = h * in_w + w;
      }
    }
  return best;
}

}  // namespace fastgen
