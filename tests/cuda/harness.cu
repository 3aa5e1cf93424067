// Host replay of the CUDA kernels' per-thread code: includes kernels/*.cu, compiled by nvcc,
// and calls the host+device `*_block` / `*_unit` functions the kernels call, in plain loops on
// the CPU. No GPU is touched (no kernel launch, no CUDA runtime call), so this runs anywhere nvcc
// does; tests/cuda/test_cuda_host.py compares its output bitwise with fastgen._C. What it does
// not cover: the launch configuration, shared memory and synchronisation (the gpu-marked tests
// do).
//
// usage: harness layout
//        harness OP DTYPE ROWS COLS SEED OFFSET USE_RNG IN_FILE OUT_FILE [EXTRA...]
//   OP: bits | uniform | normal | bernoulli | gaussian | gibbs_fused
//   IN_FILE: the op's inputs back to back (raw, DTYPE), OUT_FILE: its outputs back to back.
//   USE_RNG=1 reads (seed, offset) through StreamParams::rng with offset 0 relative, as a graph
//   replay does.
#include <cstdio>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "../../kernels/sampling.cu"
#include "../../kernels/gibbs.cu"
#include "../../kernels/cd.cu"

#include "harness_io.h"

using namespace fastgen::gpu;
using harness_io::read_file;
using harness_io::write_file;

namespace {


void layout() {
  SIZE(StreamParams); FIELD(StreamParams, rng); FIELD(StreamParams, seed); FIELD(StreamParams, offset);
  SIZE(FillParams); FIELD(FillParams, out); FIELD(FillParams, n); FIELD(FillParams, stream);
  SIZE(BernoulliGpuParams); FIELD(BernoulliGpuParams, input); FIELD(BernoulliGpuParams, bias);
  FIELD(BernoulliGpuParams, probs); FIELD(BernoulliGpuParams, states); FIELD(BernoulliGpuParams, clamp);
  FIELD(BernoulliGpuParams, rows); FIELD(BernoulliGpuParams, cols); FIELD(BernoulliGpuParams, input_stride);
  FIELD(BernoulliGpuParams, probs_stride); FIELD(BernoulliGpuParams, states_stride);
  FIELD(BernoulliGpuParams, clamp_stride); FIELD(BernoulliGpuParams, from_logits); FIELD(BernoulliGpuParams, stream);
  SIZE(GaussianGpuParams); FIELD(GaussianGpuParams, mean); FIELD(GaussianGpuParams, bias);
  FIELD(GaussianGpuParams, stddev); FIELD(GaussianGpuParams, stddev_scalar); FIELD(GaussianGpuParams, out);
  FIELD(GaussianGpuParams, rows); FIELD(GaussianGpuParams, cols); FIELD(GaussianGpuParams, mean_stride);
  FIELD(GaussianGpuParams, out_stride); FIELD(GaussianGpuParams, stream);
  SIZE(VelocityParams); FIELD(VelocityParams, param); FIELD(VelocityParams, velocity); FIELD(VelocityParams, n);
  FIELD(VelocityParams, decay);
  SIZE(SgdParams); FIELD(SgdParams, param); FIELD(SgdParams, velocity); FIELD(SgdParams, grad); FIELD(SgdParams, n);
  FIELD(SgdParams, lr); FIELD(SgdParams, momentum); FIELD(SgdParams, weight_decay);
  SIZE(SetStreamParams); FIELD(SetStreamParams, rng); FIELD(SetStreamParams, seed); FIELD(SetStreamParams, offset);
  SIZE(GibbsFusedParams); FIELD(GibbsFusedParams, weights); FIELD(GibbsFusedParams, visible_bias);
  FIELD(GibbsFusedParams, hidden_bias); FIELD(GibbsFusedParams, visible); FIELD(GibbsFusedParams, clamp);
  FIELD(GibbsFusedParams, rows); FIELD(GibbsFusedParams, n_visible); FIELD(GibbsFusedParams, n_hidden);
  FIELD(GibbsFusedParams, visible_stride); FIELD(GibbsFusedParams, clamp_stride); FIELD(GibbsFusedParams, steps);
  FIELD(GibbsFusedParams, stream);
}

template <typename T> int run(const std::string& op, int64_t rows, int64_t cols, StreamParams stream,
                              const std::vector<char>& in, const char* out_path, int argc, char** argv) {
  const int64_t n = rows * cols;
  const T* x = reinterpret_cast<const T*>(in.data());
  if (op == "bits" || op == "uniform" || op == "normal") {
    std::vector<char> out(n * (op == "bits" ? sizeof(uint32_t) : sizeof(T)));
    FillParams p{out.data(), n, stream};
    for (int64_t b = 0; b < blocks_for(n); ++b) {
      if (op == "bits") fill_bits_block(p, b);
      else if (op == "uniform") fill_uniform_block<T>(p, b);
      else fill_normal_block<T>(p, b);
    }
    write_file(out_path, out.data(), out.size());
    return 0;
  }
  if (op == "bernoulli") {  // in: input [n], bias [cols]; EXTRA: from_logits use_bias want_probs
    const int from_logits = std::atoi(argv[0]), use_bias = std::atoi(argv[1]), want_probs = std::atoi(argv[2]);
    std::vector<T> probs(n, T(-1)), states(n, T(-1));
    BernoulliGpuParams p{x, use_bias ? x + n : nullptr, want_probs ? probs.data() : nullptr, states.data(), nullptr,
                         rows, cols, cols, cols, cols, 0, from_logits, stream};
    for (int64_t b = 0; b < blocks_for(n); ++b) bernoulli_block<T>(p, b);
    probs.insert(probs.end(), states.begin(), states.end());
    write_file(out_path, probs.data(), probs.size() * sizeof(T));
    return 0;
  }
  if (op == "gaussian") {  // in: mean [n], bias [cols], std [cols]; EXTRA: use_bias use_std_array std_scalar
    const int use_bias = std::atoi(argv[0]), use_std = std::atoi(argv[1]);
    const double sd = std::atof(argv[2]);
    std::vector<T> out(n);
    GaussianGpuParams p{x, use_bias ? x + n : nullptr, use_std ? x + n + cols : nullptr, sd, out.data(),
                        rows, cols, cols, cols, stream};
    for (int64_t b = 0; b < blocks_for(n); ++b) gaussian_block<T>(p, b);
    write_file(out_path, out.data(), out.size() * sizeof(T));
    return 0;
  }
  if (op == "gibbs_fused") {  // in: W [nh, nv], b_vis [nv], b_hid [nh], v [rows, nv]; EXTRA: nh steps
    const int64_t nv = cols, nh = std::atoll(argv[0]), steps = std::atoll(argv[1]);
    const T* Wg = x;
    const T* b_vis = Wg + nh * nv;
    const T* b_hid = b_vis + nv;
    std::vector<T> v(b_hid + nh, b_hid + nh + rows * nv);
    GibbsFusedParams p{Wg, b_vis, b_hid, v.data(), nullptr, rows, nv, nh, nv, 0, steps, stream};
    // The kernel's shared-memory copy of W, with its padded stride, and its per-chain loop.
    const int64_t ldw = fused_weight_stride(nv);
    std::vector<T> W(nh * ldw, T(0)), h(nh);
    for (int64_t j = 0; j < nh; ++j)
      for (int64_t i = 0; i < nv; ++i) W[j * ldw + i] = Wg[j * nv + i];
    for (int64_t row = 0; row < rows; ++row) {
      T* vr = v.data() + row * nv;
      for (int64_t s = 0; s < steps; ++s) {
        for (int64_t j = 0; j < nh; ++j) h[j] = fused_hidden_unit<T>(p, W.data(), ldw, vr, row, s, j);
        for (int64_t i = 0; i < nv; ++i) vr[i] = fused_visible_unit<T>(p, W.data(), ldw, h.data(), row, s, i);
      }
    }
    write_file(out_path, v.data(), v.size() * sizeof(T));
    return 0;
  }
  std::fprintf(stderr, "unknown op %s\n", op.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "layout") {
    layout();
    return 0;
  }
  if (argc < 10) {
    std::fprintf(stderr, "usage: harness layout | harness OP DTYPE ROWS COLS SEED OFFSET USE_RNG IN OUT [EXTRA...]\n");
    return 2;
  }
  const std::string op = argv[1], dtype = argv[2];
  const int64_t rows = std::atoll(argv[3]), cols = std::atoll(argv[4]);
  const uint64_t seed = std::strtoull(argv[5], nullptr, 10), offset = std::strtoull(argv[6], nullptr, 10);
  const bool use_rng = std::atoi(argv[7]) != 0;
  static uint64_t rng[2];
  rng[0] = seed;
  rng[1] = offset;
  const StreamParams stream = use_rng ? StreamParams{rng, 0, 0} : StreamParams{nullptr, seed, offset};
  const std::vector<char> in = read_file(argv[8]);
  if (dtype == "float32") return run<float>(op, rows, cols, stream, in, argv[9], argc - 10, argv + 10);
  if (dtype == "float64") return run<double>(op, rows, cols, stream, in, argv[9], argc - 10, argv + 10);
  std::fprintf(stderr, "unknown dtype %s\n", dtype.c_str());
  return 2;
}
