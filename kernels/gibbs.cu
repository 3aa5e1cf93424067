// CUDA kernel of k-step block-Gibbs sampling for RBMs whose weights fit in shared memory: all k
// steps of a chain in one thread block (fastgen/_native/cuda_gibbs.py; larger RBMs run the
// per-step cuBLAS GEMMs and the sampling kernel instead). Same headers and the same counter
// layout as the CPU's Gibbs chain (csrc/gibbs.cpp). Parameter struct: fastgen/params/gibbs.h.
#include "fastgen/math.h"
#include "fastgen/params/gibbs.h"
#include "fastgen/philox.h"
#include "fastgen/sampling.h"

namespace fastgen {
namespace gpu {

// The Bernoulli draw of element `index` of a stream: the uniform is lane index % 4 of Philox
// block index / 4 (one Philox evaluation per element here: in the fused kernel each thread owns
// scattered units, and the arithmetic is small beside the unit's dot product).
template <typename T> FG_HD T draw_element(const StreamParams& s, uint64_t offset_extra, uint64_t index, T prob) {
  StreamParams t = s;
  t.offset += offset_extra;
  const Philox4 r = stream_block(t, index >> 2);
  return bernoulli_state(prob, uniform01<T>(r.v[index & 3]));
}

// One unit of the fused Gibbs kernel's step s for chain `row` (W with row stride ldw, the chain's
// current v or h): hidden unit j from v, visible unit i from h. Host+device, so that a host
// program replays the kernel's arithmetic and counters (tests/cuda/harness.cu).
template <typename T>
FG_HD T fused_hidden_unit(const GibbsFusedParams& p, const T* W, int64_t ldw, const T* v, int64_t row, int64_t s,
                          int64_t j) {
  const T* w = W + j * ldw;
  T acc = T(0);
  for (int64_t i = 0; i < p.n_visible; ++i) acc += w[i] * v[i];
  const T prob = sigmoid(acc + static_cast<const T*>(p.hidden_bias)[j]);
  return draw_element<T>(p.stream, 2 * s, static_cast<uint64_t>(row * p.n_hidden + j), prob);
}
template <typename T>
FG_HD T fused_visible_unit(const GibbsFusedParams& p, const T* W, int64_t ldw, const T* h, int64_t row, int64_t s,
                           int64_t i) {
  T acc = T(0);
  for (int64_t j = 0; j < p.n_hidden; ++j) acc += h[j] * W[j * ldw + i];
  const T prob = sigmoid(acc + static_cast<const T*>(p.visible_bias)[i]);
  return draw_element<T>(p.stream, 2 * s + 1, static_cast<uint64_t>(row * p.n_visible + i), prob);
}

// Shared-memory layout of the fused Gibbs kernel: W with a padded row stride (odd, so threads
// reading one column each across rows hit different banks), then v and h of the block's chain.
FG_HD int64_t fused_weight_stride(int64_t n_visible) { return n_visible | 1; }
FG_HD int64_t fused_shared_elements(int64_t n_visible, int64_t n_hidden) {
  return n_hidden * fused_weight_stride(n_visible) + n_visible + n_hidden;
}

}  // namespace gpu
}  // namespace fastgen

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// One thread block per chain. Step s: h_j ~ Bernoulli(sigmoid(c_j + W_j . v)) with stream offset
// + 2 s and element index row * n_hidden + j; then v_i ~ Bernoulli(sigmoid(b_i + h . W_:i)) with
// offset + 2 s + 1 and index row * n_visible + i (clamped units keep their value): the counters
// of csrc/gibbs.cpp, so only the dot products' rounding differs from the CPU.
template <typename T> __device__ void gibbs_fused(const fastgen::gpu::GibbsFusedParams& p) {
  extern __shared__ __align__(16) unsigned char fg_shared_raw[];
  T* shared = reinterpret_cast<T*>(fg_shared_raw);
  const int64_t nv = p.n_visible, nh = p.n_hidden, ldw = fastgen::gpu::fused_weight_stride(nv);
  T* W = shared;
  T* v = W + nh * ldw;
  T* h = v + nv;
  const T* Wg = static_cast<const T*>(p.weights);
  for (int64_t e = threadIdx.x; e < nh * nv; e += blockDim.x) {
    const int64_t j = e / nv, i = e - j * nv;
    W[j * ldw + i] = Wg[e];
  }
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    T* vg = static_cast<T*>(p.visible) + row * p.visible_stride;
    const unsigned char* mask = p.clamp ? p.clamp + row * p.clamp_stride : nullptr;
    __syncthreads();  // W loaded / previous row's v written back
    for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) v[i] = vg[i];
    __syncthreads();
    for (int64_t s = 0; s < p.steps; ++s) {
      for (int64_t j = threadIdx.x; j < nh; j += blockDim.x) h[j] = fastgen::gpu::fused_hidden_unit<T>(p, W, ldw, v, row, s, j);
      __syncthreads();
      for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) {
        if (mask && mask[i]) continue;  // clamped: keeps its value
        v[i] = fastgen::gpu::fused_visible_unit<T>(p, W, ldw, h, row, s, i);
      }
      __syncthreads();
    }
    for (int64_t i = threadIdx.x; i < nv; i += blockDim.x) vg[i] = v[i];
  }
}

#define FG_GIBBS_KERNELS(T, SUFFIX)                                                           \
  extern "C" __global__ void fg_gibbs_fused_##SUFFIX(const fastgen::gpu::GibbsFusedParams p) { \
    gibbs_fused<T>(p);                                                                        \
  }

FG_GIBBS_KERNELS(float, f32)
FG_GIBBS_KERNELS(double, f64)
#undef FG_GIBBS_KERNELS
#endif
