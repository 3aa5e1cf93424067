// Host replay of the VAE / pooling / transposed-convolution kernels' per-thread code
// (kernels/reparam.cu, elbo.cu, pool.cu, conv.cu), the companion of harness.cu: it includes the .cu files,
// compiled by nvcc, and calls the host+device `*_block` / `*_unit` / `*_partial` functions the
// kernels' threads call, in plain loops on the CPU. No GPU is touched. Where a kernel reduces
// across threads (the likelihood rows, the KL of a row) the replay emulates the kernel's shuffle
// tree for the launch's block size. tests/cuda/test_cuda_vae_host.py compares the output with
// fastgen._C. Not covered here: launches, shuffles and shared memory themselves (gpu tests do).
//
// usage: harness_vae layout
//        harness_vae OP DTYPE IN_FILE OUT_FILE INT...
//   IN_FILE: the op's inputs back to back as raw bytes (T arrays, int64 index arrays), or "-".
//   OUT_FILE: its outputs back to back (T arrays; int64 indices after the values).
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../kernels/conv.cu"
#include "../../kernels/pool.cu"
#include "../../kernels/reparam.cu"
#include "../../kernels/elbo.cu"

#include "harness_io.h"

using namespace fastgen::gpu;
using harness_io::read_file;
using harness_io::write_file;

namespace {

struct Out {
  std::vector<char> bytes;
  template <typename V> void put(const std::vector<V>& v) {
    const char* b = reinterpret_cast<const char*>(v.data());
    bytes.insert(bytes.end(), b, b + v.size() * sizeof(V));
  }
  void save(const char* path) const {
    FILE* f = std::fopen(path, "wb");
    if (!f) { std::perror(path); std::exit(2); }
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
};


void layout() {
  SIZE(StreamParams); FIELD(StreamParams, rng); FIELD(StreamParams, seed); FIELD(StreamParams, offset);
  SIZE(ReparamGpuParams); FIELD(ReparamGpuParams, mu); FIELD(ReparamGpuParams, logvar); FIELD(ReparamGpuParams, z);
  FIELD(ReparamGpuParams, kl); FIELD(ReparamGpuParams, rows); FIELD(ReparamGpuParams, cols);
  FIELD(ReparamGpuParams, mu_stride); FIELD(ReparamGpuParams, logvar_stride); FIELD(ReparamGpuParams, stream);
  FIELD(ReparamGpuParams, first_row);
  SIZE(ReparamBackwardGpuParams); FIELD(ReparamBackwardGpuParams, grad_z); FIELD(ReparamBackwardGpuParams, grad_kl);
  FIELD(ReparamBackwardGpuParams, mu); FIELD(ReparamBackwardGpuParams, logvar);
  FIELD(ReparamBackwardGpuParams, grad_mu); FIELD(ReparamBackwardGpuParams, grad_logvar);
  FIELD(ReparamBackwardGpuParams, rows); FIELD(ReparamBackwardGpuParams, cols); FIELD(ReparamBackwardGpuParams, stream);
  FIELD(ReparamBackwardGpuParams, first_row);
  SIZE(BernoulliLikelihoodGpuParams); FIELD(BernoulliLikelihoodGpuParams, x);
  FIELD(BernoulliLikelihoodGpuParams, logits); FIELD(BernoulliLikelihoodGpuParams, grad);
  FIELD(BernoulliLikelihoodGpuParams, out); FIELD(BernoulliLikelihoodGpuParams, grad_x);
  FIELD(BernoulliLikelihoodGpuParams, rows); FIELD(BernoulliLikelihoodGpuParams, cols);
  SIZE(GaussianLikelihoodGpuParams); FIELD(GaussianLikelihoodGpuParams, x); FIELD(GaussianLikelihoodGpuParams, mean);
  FIELD(GaussianLikelihoodGpuParams, logvar); FIELD(GaussianLikelihoodGpuParams, grad);
  FIELD(GaussianLikelihoodGpuParams, out); FIELD(GaussianLikelihoodGpuParams, grad_logvar);
  FIELD(GaussianLikelihoodGpuParams, grad_x); FIELD(GaussianLikelihoodGpuParams, logvar_mode);
  FIELD(GaussianLikelihoodGpuParams, rows); FIELD(GaussianLikelihoodGpuParams, cols);
  SIZE(MaxPoolGpuParams); FIELD(MaxPoolGpuParams, in); FIELD(MaxPoolGpuParams, out); FIELD(MaxPoolGpuParams, indices);
  FIELD(MaxPoolGpuParams, planes); FIELD(MaxPoolGpuParams, in_h); FIELD(MaxPoolGpuParams, in_w);
  FIELD(MaxPoolGpuParams, out_h); FIELD(MaxPoolGpuParams, out_w); FIELD(MaxPoolGpuParams, kernel_h);
  FIELD(MaxPoolGpuParams, kernel_w); FIELD(MaxPoolGpuParams, stride_h); FIELD(MaxPoolGpuParams, stride_w);
  FIELD(MaxPoolGpuParams, pad_h); FIELD(MaxPoolGpuParams, pad_w);
  SIZE(PlanesGpuParams); FIELD(PlanesGpuParams, src); FIELD(PlanesGpuParams, indices); FIELD(PlanesGpuParams, dst);
  FIELD(PlanesGpuParams, planes); FIELD(PlanesGpuParams, src_plane); FIELD(PlanesGpuParams, dst_plane);
  FIELD(PlanesGpuParams, accumulate);
  SIZE(AvgUnpoolGpuParams); FIELD(AvgUnpoolGpuParams, in); FIELD(AvgUnpoolGpuParams, out);
  FIELD(AvgUnpoolGpuParams, planes); FIELD(AvgUnpoolGpuParams, h); FIELD(AvgUnpoolGpuParams, w);
  FIELD(AvgUnpoolGpuParams, kernel_h); FIELD(AvgUnpoolGpuParams, kernel_w);
  SIZE(ConvTransposeGpuParams); FIELD(ConvTransposeGpuParams, cols); FIELD(ConvTransposeGpuParams, bias);
  FIELD(ConvTransposeGpuParams, out); FIELD(ConvTransposeGpuParams, batch); FIELD(ConvTransposeGpuParams, in_c);
  FIELD(ConvTransposeGpuParams, in_h); FIELD(ConvTransposeGpuParams, in_w); FIELD(ConvTransposeGpuParams, out_c);
  FIELD(ConvTransposeGpuParams, out_h); FIELD(ConvTransposeGpuParams, out_w); FIELD(ConvTransposeGpuParams, kernel_h);
  FIELD(ConvTransposeGpuParams, kernel_w); FIELD(ConvTransposeGpuParams, stride_h);
  FIELD(ConvTransposeGpuParams, stride_w); FIELD(ConvTransposeGpuParams, pad_h); FIELD(ConvTransposeGpuParams, pad_w);
  FIELD(ConvTransposeGpuParams, activation); FIELD(ConvTransposeGpuParams, slope);
  SIZE(ActivationBackwardGpuParams); FIELD(ActivationBackwardGpuParams, grad_out);
  FIELD(ActivationBackwardGpuParams, y); FIELD(ActivationBackwardGpuParams, grad_in);
  FIELD(ActivationBackwardGpuParams, n); FIELD(ActivationBackwardGpuParams, activation);
  FIELD(ActivationBackwardGpuParams, slope);
}

// The kernels' warp_sum on 32 lane values: lane 0's result of the shuffle-down tree.
template <typename S> S warp_tree(std::vector<S> v) {
  v.resize(32, S(0));
  for (int off = 16; off > 0; off >>= 1)
    for (int l = 0; l + off < 32; ++l) v[l] += v[l + off];
  return v[0];
}

// The kernels' block_sum over `threads` per-thread values (a multiple of 32).
double block_tree(const std::vector<double>& parts) {
  std::vector<double> warps;
  for (size_t w = 0; w < parts.size(); w += 32)
    warps.push_back(warp_tree(std::vector<double>(parts.begin() + w, parts.begin() + w + 32)));
  return warp_tree(warps);
}

struct Reader {
  const char* p;
  template <typename V> const V* take(int64_t n) {
    const V* r = reinterpret_cast<const V*>(p);
    p += n * sizeof(V);
    return r;
  }
};

template <typename T> int run(const std::string& op, const std::vector<char>& in, const char* out_path,
                              const std::vector<int64_t>& a) {
  Reader rd{in.data()};
  Out out;
  if (op == "reparam") {  // a: rows cols seed offset first_row | in: mu, logvar | out: z, kl
    const int64_t rows = a[0], cols = a[1], first_row = a[4];
    const T* mu = rd.take<T>(rows * cols);
    const T* lv = rd.take<T>(rows * cols);
    std::vector<T> z(rows * cols, T(-7)), kl(rows, T(-7));
    ReparamGpuParams p{mu, lv, z.data(), kl.data(), rows, cols, cols, cols,
                       StreamParams{nullptr, static_cast<uint64_t>(a[2]), static_cast<uint64_t>(a[3])}, first_row};
    for (int64_t r = 0; r < rows; ++r) {  // one warp per row: lane l takes blocks first + l, + 32, ...
      std::vector<T> lanes(32, T(0));
      const int64_t first = reparam_first_block(first_row + r, cols);
      for (int64_t b = first; b < reparam_end_block(first_row + r, cols); ++b)
        lanes[(b - first) % 32] += reparam_forward_block<T>(p, r, b);
      kl[r] = warp_tree(lanes);
    }
    out.put(z);
    out.put(kl);
  } else if (op == "reparam_backward") {  // a: rows cols seed offset use_gz use_gkl first_row | in: gz, gkl, mu, logvar
    const int64_t rows = a[0], cols = a[1];
    const T* gz = rd.take<T>(rows * cols);
    const T* gk = rd.take<T>(rows);
    const T* mu = rd.take<T>(rows * cols);
    const T* lv = rd.take<T>(rows * cols);
    std::vector<T> dmu(rows * cols), dlv(rows * cols);
    ReparamBackwardGpuParams p{a[4] ? gz : nullptr, a[5] ? gk : nullptr, mu, lv, dmu.data(), dlv.data(), rows, cols,
                               StreamParams{nullptr, static_cast<uint64_t>(a[2]), static_cast<uint64_t>(a[3])}, a[6]};
    for (int64_t b = 0; b < reparam_backward_blocks(p); ++b) reparam_backward_block<T>(p, b);
    out.put(dmu);
    out.put(dlv);
  } else if (op == "bernoulli_ll") {  // a: rows cols threads | in: x, logits, g | out: ll, grad_logits, grad_x
    const int64_t rows = a[0], cols = a[1], threads = a[2];
    const T* x = rd.take<T>(rows * cols);
    const T* l = rd.take<T>(rows * cols);
    const T* g = rd.take<T>(rows);
    std::vector<T> ll(rows), dl(rows * cols), dx(rows * cols);
    BernoulliLikelihoodGpuParams p{x, l, g, nullptr, nullptr, rows, cols};
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> parts(threads);
      for (int64_t t = 0; t < threads; ++t) parts[t] = bernoulli_ll_partial<T>(p, r, t, threads);
      ll[r] = T(block_tree(parts));
    }
    p.out = dl.data();
    p.grad_x = dx.data();
    for (int64_t i = 0; i < rows * cols; ++i) bernoulli_ll_backward_unit<T>(p, i);
    out.put(ll);
    out.put(dl);
    out.put(dx);
  } else if (op == "gaussian_ll") {  // a: rows cols threads mode | in: x, mean, logvar, g
    const int64_t rows = a[0], cols = a[1], threads = a[2], mode = a[3];
    const T* x = rd.take<T>(rows * cols);
    const T* m = rd.take<T>(rows * cols);
    const int64_t nv = mode == 2 ? rows * cols : (mode == 1 ? cols : 0);
    const T* v = rd.take<T>(nv);
    const T* g = rd.take<T>(rows);
    std::vector<T> ll(rows), dm(rows * cols), dv(nv), dx(rows * cols);
    GaussianLikelihoodGpuParams p{x, m, mode ? v : nullptr, g, nullptr, nullptr, nullptr, mode, rows, cols};
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> parts(threads);
      for (int64_t t = 0; t < threads; ++t) parts[t] = gaussian_ll_partial<T>(p, r, t, threads);
      ll[r] = T(block_tree(parts));
    }
    p.out = dm.data();
    p.grad_x = dx.data();
    p.grad_logvar = mode ? dv.data() : nullptr;
    for (int64_t i = 0; i < rows * cols; ++i) gaussian_ll_backward_unit<T>(p, i);
    if (mode == 1)
      for (int64_t c = 0; c < cols; ++c) gaussian_ll_backward_column<T>(p, c);
    out.put(ll);
    out.put(dm);
    out.put(dv);
    out.put(dx);
  } else if (op == "max_pool") {  // a: planes in_h in_w out_h out_w kh kw sh sw ph pw | in: x | out: values, indices
    MaxPoolGpuParams p{nullptr, nullptr, nullptr, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10]};
    const int64_t n_out = p.planes * p.out_h * p.out_w;
    p.in = rd.take<T>(p.planes * p.in_h * p.in_w);
    std::vector<T> values(n_out);
    std::vector<int64_t> idx(n_out, -1);
    p.out = values.data();
    p.indices = idx.data();
    for (int64_t o = 0; o < n_out; ++o) max_pool_unit<T>(p, o);
    out.put(values);
    out.put(idx);
  } else if (op == "scatter" || op == "gather") {  // a: planes src_plane dst_plane accumulate | in: src, indices
    const int64_t planes = a[0], sp = a[1], dp = a[2];
    const T* src = rd.take<T>(planes * sp);
    const int64_t* idx = rd.take<int64_t>(planes * (op == "scatter" ? sp : dp));
    std::vector<T> dst(planes * dp, T(0));  // the wrapper zeroes dst before a scatter
    PlanesGpuParams p{src, idx, dst.data(), planes, sp, dp, a[3]};
    if (op == "gather") {
      for (int64_t i = 0; i < planes * dp; ++i) gather_unit<T>(p, i);
    } else if (a[3]) {
      for (int64_t plane = 0; plane < planes; ++plane) scatter_add_plane<T>(p, plane);
    } else {
      for (int64_t i = 0; i < planes * sp; ++i) scatter_assign_unit<T>(p, i);
    }
    out.put(dst);
  } else if (op == "avg_unpool" || op == "avg_unpool_backward") {  // a: planes h w kh kw
    AvgUnpoolGpuParams p{nullptr, nullptr, a[0], a[1], a[2], a[3], a[4]};
    const int64_t small = p.planes * p.h * p.w, big = small * p.kernel_h * p.kernel_w;
    const bool fwd = op == "avg_unpool";
    p.in = rd.take<T>(fwd ? small : big);
    std::vector<T> dst(fwd ? big : small);
    p.out = dst.data();
    for (int64_t o = 0; o < (int64_t)dst.size(); ++o) {
      if (fwd) avg_unpool_unit<T>(p, o);
      else avg_unpool_backward_unit<T>(p, o);
    }
    out.put(dst);
  } else if (op == "conv_output" || op == "conv_im2col") {
    // a: batch in_c in_h in_w out_c out_h out_w kh kw sh sw ph pw activation slope_x1000 use_bias
    ConvTransposeGpuParams p{nullptr, nullptr, nullptr, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8],
                             a[9], a[10], a[11], a[12], a[13], static_cast<double>(a[14]) / 1000.0};
    const int64_t n_cols = p.out_c * p.kernel_h * p.kernel_w * p.batch * p.in_h * p.in_w;
    const int64_t n_out = p.batch * p.out_c * p.out_h * p.out_w;
    if (op == "conv_output") {
      const T* cols = rd.take<T>(n_cols);
      const T* bias = rd.take<T>(p.out_c);
      std::vector<T> y(n_out);
      p.cols = const_cast<T*>(cols);
      p.bias = a[15] ? bias : nullptr;
      p.out = y.data();
      for (int64_t o = 0; o < n_out; ++o) conv_transpose_output_unit<T>(p, o);
      out.put(y);
    } else {
      const T* grad = rd.take<T>(n_out);
      std::vector<T> cols(n_cols, T(-7));
      p.cols = cols.data();
      p.out = const_cast<T*>(grad);
      for (int64_t e = 0; e < n_cols; ++e) conv_transpose_im2col_unit<T>(p, e);
      out.put(cols);
    }
  } else if (op == "activation_backward") {  // a: n activation slope_x1000 | in: grad_out, y
    const int64_t n = a[0];
    const T* g = rd.take<T>(n);
    const T* y = rd.take<T>(n);
    std::vector<T> gi(n);
    ActivationBackwardGpuParams p{g, y, gi.data(), n, a[1], static_cast<double>(a[2]) / 1000.0};
    for (int64_t i = 0; i < n; ++i) activation_backward_unit<T>(p, i);
    out.put(gi);
  } else {
    std::fprintf(stderr, "unknown op %s\n", op.c_str());
    return 2;
  }
  out.save(out_path);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "layout") {
    layout();
    return 0;
  }
  if (argc < 5) {
    std::fprintf(stderr, "usage: harness_vae layout | harness_vae OP DTYPE IN OUT INT...\n");
    return 2;
  }
  const std::string op = argv[1], dtype = argv[2];
  std::vector<int64_t> ints;
  for (int i = 5; i < argc; ++i) ints.push_back(static_cast<int64_t>(std::strtoull(argv[i], nullptr, 10)));
  const std::vector<char> in = read_file(argv[3]);
  if (dtype == "float32") return run<float>(op, in, argv[4], ints);
  if (dtype == "float64") return run<double>(op, in, argv[4], ints);
  std::fprintf(stderr, "unknown dtype %s\n", dtype.c_str());
  return 2;
}
