// Transposed convolution: cols = W^T @ X (BLAS) gives, for every input pixel, its kh x kw
// contributions to each output channel; the output pass gathers, for every output pixel, the
// contributions that land on it, adds the bias and applies the activation, writing each output
// once. conv_transpose2d_forward runs both per chunk of images, so that cols is read back from
// cache instead of memory (a whole batch's cols is 4x the output: 134 MB for a DCGAN layer at
// batch 128). A 1 x 1 input without padding (the DCGAN projection of z) skips cols: its output is
// x @ weight, already in NCHW order (conv_transpose2d_projection). The backward's im2col gathers
// the gradient the other way (the CUDA backward's reference; the torch op's CPU backward runs
// torch's convolution_backward). Formulas of the
// activations: kernels/include/fastgen/activation.h.
#include <algorithm>

#include "aligned.h"
#include "fastgen.h"
#include "fastgen/activation.h"
#include "philox_cpu.h"  // kParallelMinElements

namespace fastgen {
namespace cpu {

namespace {

// Chunk sizes. Images of at least kDirectMinPixels pixels get a GEMM each and a chunk each, so
// that a chunk's cols stay in L2; smaller images are packed kPackedColumns pixels per GEMM,
// because each GEMM repacks the whole weight (docs/performance.md, "transposed convolution").
constexpr int64_t kDirectMinPixels = 128;
constexpr int64_t kPackedColumns = 512;

// Whether x[0, n) holds no NaN or infinity (the op's error for x, found while x is in cache, by
// the thread that owns the chunk; data_summary.cpp's all_finite is the parallel whole-array check).
template <typename T> bool all_finite_serial(const T* x, int64_t n) {
  int64_t bad = 0;
#pragma omp simd reduction(+ : bad)
  for (int64_t i = 0; i < n; ++i) bad += (x[i] - x[i] != T(0)) ? 1 : 0;  // inf - inf and NaN - NaN are NaN
  return bad == 0;
}

// out[ox] = act(acc[ox % sw][ox / sw]) for one output row: the phases' sums interleaved back
// into the row, each output written once. The activation is a template argument so that the
// loop has no branch on it and vectorises.
template <Activation A, typename T>
void store_row(const T* acc, int64_t phase_len, int64_t sw, int64_t out_w, T slope, T* out) {
  if (sw == 1) {
#pragma omp simd
    for (int64_t ox = 0; ox < out_w; ++ox) out[ox] = activate(A, acc[ox], slope);
  } else if (sw == 2) {
    const T* even = acc;
    const T* odd = acc + phase_len;
    const int64_t pairs = out_w / 2;
#pragma omp simd
    for (int64_t q = 0; q < pairs; ++q) {
      out[2 * q] = activate(A, even[q], slope);
      out[2 * q + 1] = activate(A, odd[q], slope);
    }
    if (out_w % 2) out[out_w - 1] = activate(A, even[pairs], slope);
  } else {
    for (int64_t ox = 0; ox < out_w; ++ox) out[ox] = activate(A, acc[(ox % sw) * phase_len + ox / sw], slope);
  }
}

template <typename T>
void store_row(Activation act, const T* acc, int64_t phase_len, int64_t sw, int64_t out_w, T slope, T* out) {
  switch (act) {
    case Activation::kRelu: return store_row<Activation::kRelu>(acc, phase_len, sw, out_w, slope, out);
    case Activation::kLeakyRelu: return store_row<Activation::kLeakyRelu>(acc, phase_len, sw, out_w, slope, out);
    case Activation::kTanh: return store_row<Activation::kTanh>(acc, phase_len, sw, out_w, slope, out);
    case Activation::kSigmoid: return store_row<Activation::kSigmoid>(acc, phase_len, sw, out_w, slope, out);
    default: return store_row<Activation::kNone>(acc, phase_len, sw, out_w, slope, out);
  }
}

// out[i] = act(out[i] + b) over n entries, the activation a template argument (a branch-free loop).
template <Activation A, typename T> void bias_activate(T* out, int64_t n, T b, T slope) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = activate(A, out[i] + b, slope);
}

template <typename T> void bias_activate(Activation act, T* out, int64_t n, T b, T slope) {
  switch (act) {
    case Activation::kRelu: return bias_activate<Activation::kRelu>(out, n, b, slope);
    case Activation::kLeakyRelu: return bias_activate<Activation::kLeakyRelu>(out, n, b, slope);
    case Activation::kTanh: return bias_activate<Activation::kTanh>(out, n, b, slope);
    case Activation::kSigmoid: return bias_activate<Activation::kSigmoid>(out, n, b, slope);
    default: return bias_activate<Activation::kNone>(out, n, b, slope);
  }
}

// True for the DCGAN projection of z: a 1 x 1 input, no padding, output the kernel's size. Each
// image's output is then its row of x times the weight, (1, in_c) @ (in_c, out_c kh kw), already
// in NCHW order: no cols, no gather.
// How a pass splits the batch: `images` per chunk, `count` chunks. One wide image per chunk (its
// GEMM is as wide as it gets; more images would only push cols out of L2), else enough small
// ones for kPackedColumns GEMM columns; chunk_elements > 0 (tests) caps a chunk's cols buffer
// instead. The chunks depend on the shape alone, not on the thread count, so each image's GEMM
// has the same columns whatever OMP_NUM_THREADS is; and they are equal (33 images as 17 + 16,
// not 32 + 1). batch >= 1.
struct ImageChunks {
  int64_t images, count;
};
ImageChunks image_chunks(const ConvTransposeGeometry& g, int64_t chunk_elements) {
  const int64_t in_plane = g.in_h * g.in_w;
  const int64_t per_image = std::max<int64_t>(1, g.out_c * g.kernel_h * g.kernel_w * in_plane);
  const int64_t fit = chunk_elements > 0            ? std::max<int64_t>(1, chunk_elements / per_image)
                      : in_plane >= kDirectMinPixels ? 1
                                                     : (kPackedColumns + in_plane - 1) / in_plane;
  const int64_t first_count = (g.batch + fit - 1) / fit;
  const int64_t images = (g.batch + first_count - 1) / first_count;
  return {images, (g.batch + images - 1) / images};
}

bool is_projection(const ConvTransposeGeometry& g) {
  return g.in_h == 1 && g.in_w == 1 && g.pad_h == 0 && g.pad_w == 0 && g.out_h == g.kernel_h &&
         g.out_w == g.kernel_w;
}

// Images per chunk of the projection (its GEMM's rows): chunks spread the batch over the threads,
// and depend on the shape only, so results do not depend on the thread count.
constexpr int64_t kProjectionImages = 16;

// True for the DCGAN up-sampling layer: kernel 4, stride 2, padding 1, output exactly twice the input.
bool is_k4s2p1(const ConvTransposeGeometry& g) {
  return g.kernel_h == 4 && g.kernel_w == 4 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 1 && g.pad_w == 1 &&
         g.out_h == 2 * g.in_h && g.out_w == 2 * g.in_w;
}

// One output plane of a k4s2p1 layer. Output (2a + py, 2b + px) receives exactly 2 x 2 taps:
// kernel rows ky = 1, 3 from input rows a, a - 1 when py = 0, and ky = 0, 2 from a + 1, a when
// py = 1 (columns alike). So each of the 4 phases is an in_h x in_w plane, and every tap adds
// one input plane shifted by dy * in_w + dx to it as a single flat, vectorised loop over the
// whole phase plane (rows of only 4 or 8 pixels no longer cut it into short loops). The one
// border column that a dx = -1 / +1 shift wraps into the neighbouring row is masked out (keep_left /
// keep_right), the border rows by the loop bounds; then the phases are interleaved into the
// output rows with the activation.
template <typename T>
void plane_k4s2p1(const T* plane_cols, int64_t cols_ld, int64_t H, int64_t W, T b, Activation act, T slope,
                  const T* keep_left, const T* keep_right, T* acc, T* out) {
  static constexpr int kTap[2][2] = {{1, 3}, {0, 2}};     // [phase][tap]: kernel row / column
  static constexpr int kShift[2][2] = {{0, -1}, {1, 0}};  // [phase][tap]: input row / column offset
  const int64_t P = H * W;
  for (int py = 0; py < 2; ++py) {
    for (int px = 0; px < 2; ++px) {
      T* a = acc + (2 * py + px) * P;
      std::fill(a, a + P, b);
      for (int ty = 0; ty < 2; ++ty) {
        for (int tx = 0; tx < 2; ++tx) {
          const int64_t dy = kShift[py][ty], dx = kShift[px][tx];
          const T* src = plane_cols + (kTap[py][ty] * 4 + kTap[px][tx]) * cols_ld;
          const int64_t shift = dy * W + dx;
          // a + dy inside [0, H); src stays inside the plane (the clipped ends are masked anyway)
          const int64_t f_begin = std::max<int64_t>(std::max<int64_t>(0, -dy) * W, -shift);
          const int64_t f_end = std::min<int64_t>(std::min<int64_t>(H, H - dy) * W, P - shift);
          const T* keep = dx < 0 ? keep_left : keep_right;
          if (dx == 0) {
#pragma omp simd
            for (int64_t f = f_begin; f < f_end; ++f) a[f] += src[f + shift];
          } else {
#pragma omp simd
            for (int64_t f = f_begin; f < f_end; ++f) a[f] += keep[f] != T(0) ? src[f + shift] : T(0);
          }
        }
      }
    }
  }
  for (int64_t y = 0; y < H; ++y) {
    for (int py = 0; py < 2; ++py) {
      store_row(act, acc + 2 * py * P + y * W, P, 2, 2 * W, slope, out + (2 * y + py) * 2 * W);
    }
  }
}

// Images [n_begin, n_end) of the output from their cols, whose column (n - n_begin) * in_plane + pixel
// holds input pixel `pixel` of image n (row stride cols_ld).
//
// Output columns fall into stride_w phases (ox mod stride_w). Within a phase, output q (ox = q
// stride_w + phase) receives from kernel column kx = phase + pad_w (mod stride_w) the input
// column ix = q + d, d = (phase + pad_w - kx) / stride_w: a contiguous stretch of a cols row
// shifted by d. Likewise output row oy receives from the kernel rows ky = oy + pad_h
// (mod stride_h) the input row iy = (oy + pad_h - ky) / stride_h. So every output row is the
// bias plus contiguous, vectorised adds into one small accumulator per phase, then one
// interleaving store with the activation: no scatter, each output written once.
template <typename T>
void output_images(const ConvTransposeGeometry& g, const T* cols, int64_t cols_ld, int64_t n_begin, int64_t n_end,
                   const T* bias, T* out_all, Activation act, T slope) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  const int64_t sw = g.stride_w, phase_len = (g.out_w + sw - 1) / sw;
  const int64_t taps = g.kernel_h * g.kernel_w;
  const bool k4s2p1 = is_k4s2p1(g);
#pragma omp parallel if ((n_end - n_begin) * g.out_c * out_plane >= kParallelMinElements)
  {
    AlignedVector<T> acc_buffer(static_cast<size_t>(k4s2p1 ? 4 * in_plane : sw * phase_len));
    T* acc = acc_buffer.data();
    AlignedVector<T> keep(static_cast<size_t>(k4s2p1 ? 2 * in_plane : 0));  // keep_left, keep_right
    for (int64_t f = 0; k4s2p1 && f < in_plane; ++f) {
      keep[f] = f % g.in_w != 0 ? T(1) : T(0);
      keep[in_plane + f] = f % g.in_w != g.in_w - 1 ? T(1) : T(0);
    }
    // Channel outer, image inner: the images of a chunk lie side by side in each cols row, so
    // consecutive planes read consecutive stretches of the same kernel_h * kernel_w rows.
#pragma omp for collapse(2) schedule(static)
    for (int64_t co = 0; co < g.out_c; ++co) {
      for (int64_t n = n_begin; n < n_end; ++n) {
        T* out = out_all + (n * g.out_c + co) * out_plane;
        const T b = bias ? bias[co] : T(0);
        const T* plane_cols = cols + co * taps * cols_ld + (n - n_begin) * in_plane;
        if (k4s2p1) {
          plane_k4s2p1(plane_cols, cols_ld, g.in_h, g.in_w, b, act, slope, keep.data(), keep.data() + in_plane, acc,
                       out);
          continue;
        }
        for (int64_t oy = 0; oy < g.out_h; ++oy) {
          std::fill(acc, acc + sw * phase_len, b);
          // ky = (oy + pad_h) mod stride_h, then every stride_h-th kernel row
          for (int64_t ky = (oy + g.pad_h) % g.stride_h; ky < g.kernel_h; ky += g.stride_h) {
            const int64_t iy = (oy + g.pad_h - ky) / g.stride_h;
            if (iy < 0) break;  // iy only decreases as ky grows
            if (iy >= g.in_h) continue;
            for (int64_t phase = 0; phase < sw; ++phase) {
              T* a = acc + phase * phase_len;
              const int64_t len = (g.out_w - phase + sw - 1) / sw;  // outputs of this phase
              for (int64_t kx = (phase + g.pad_w) % sw; kx < g.kernel_w; kx += sw) {
                const int64_t d = (phase + g.pad_w - kx) / sw;  // exact: kx = phase + pad_w (mod sw)
                const int64_t q_begin = std::max<int64_t>(0, -d), q_end = std::min<int64_t>(len, g.in_w - d);
                const T* src = plane_cols + (ky * g.kernel_w + kx) * cols_ld + iy * g.in_w + d;
#pragma omp simd
                for (int64_t q = q_begin; q < q_end; ++q) a[q] += src[q];
              }
            }
          }
          store_row(act, acc, phase_len, sw, g.out_w, slope, out + oy * g.out_w);
        }
      }
    }
  }
}

}  // namespace

template <typename T> void conv_transpose2d_output(const ConvTransposeParams<T>& p) {
  const ConvTransposeGeometry& g = p.geometry;
  output_images(g, p.cols, g.batch * g.in_h * g.in_w, 0, g.batch, p.bias, p.out, static_cast<Activation>(p.activation),
                p.slope);
}

template <typename T> int conv_transpose2d_projection(const ConvTransposeForwardParams<T>& p) {
  const ConvTransposeGeometry& g = p.geometry;
  const int64_t taps = g.kernel_h * g.kernel_w, per_image = g.out_c * taps;
  const int64_t nb = p.chunk_elements > 0 ? std::max<int64_t>(1, p.chunk_elements / per_image) : kProjectionImages;
  const int64_t n_chunks = (g.batch + nb - 1) / nb;
  const Activation act = static_cast<Activation>(p.activation);
  int flags = 0;
#pragma omp parallel for schedule(dynamic, 1) if (p.parallel_chunks && n_chunks > 1) reduction(| : flags)
  for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
    const int64_t n0 = chunk * nb, m = std::min<int64_t>(nb, g.batch - n0);
    const T* xc = p.x + n0 * g.in_c;
    T* oc = p.out + n0 * per_image;
    if (!all_finite_serial(xc, m * g.in_c)) flags |= 1;
    if (g.in_c == 0) {
      std::fill(oc, oc + m * per_image, T(0));
    } else {
      gemm<T>(false, false, m, per_image, g.in_c, T(1), xc, g.in_c, p.weight, per_image, T(0), oc, per_image);
    }
    for (int64_t j = 0; j < m; ++j) {
      for (int64_t co = 0; co < g.out_c; ++co) {
        bias_activate(act, oc + (j * g.out_c + co) * taps, taps, p.bias ? p.bias[co] : T(0), p.slope);
      }
    }
  }
  return flags;
}

template <typename T> int conv_transpose2d_forward(const ConvTransposeForwardParams<T>& p) {
  const ConvTransposeGeometry& g = p.geometry;
  if (g.batch == 0) return 0;
  if (is_projection(g)) return conv_transpose2d_projection(p);
  const int64_t in_plane = g.in_h * g.in_w, rows = g.out_c * g.kernel_h * g.kernel_w;
  // Images with many pixels are multiplied one by one straight from x (each GEMM is wide
  // enough); small ones are packed as [in_c, images * pixels] so that one GEMM covers the chunk.
  const bool wide_images = in_plane >= kDirectMinPixels;
  const ImageChunks chunks = image_chunks(g, p.chunk_elements);
  const int64_t nb = chunks.images, n_chunks = chunks.count;
  const bool direct = wide_images || nb == 1;
  const Activation act = static_cast<Activation>(p.activation);
  int flags = 0;
#pragma omp parallel if (p.parallel_chunks) reduction(| : flags)
  {
    AlignedVector<T> cols(static_cast<size_t>(rows * nb * in_plane));
    AlignedVector<T> packed(direct ? 0 : static_cast<size_t>(g.in_c * nb * in_plane));
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      const int64_t n0 = chunk * nb;
      const int64_t m = std::min<int64_t>(nb, g.batch - n0), ld = m * in_plane;
      // x's NaN/inf check rides on the GEMM's read of the chunk: the check pulls it into cache.
      if (direct) {
        for (int64_t j = 0; j < m; ++j) {
          const T* xj = p.x + (n0 + j) * g.in_c * in_plane;
          if (!all_finite_serial(xj, g.in_c * in_plane)) flags |= 1;
          gemm<T>(true, false, rows, in_plane, g.in_c, T(1), p.weight, rows, xj, in_plane, T(0),
                  cols.data() + j * in_plane, ld);
        }
      } else {
        T* xp = packed.data();
        for (int64_t c = 0; c < g.in_c; ++c) {
          for (int64_t j = 0; j < m; ++j) {
            const T* src = p.x + ((n0 + j) * g.in_c + c) * in_plane;
            std::copy(src, src + in_plane, xp + c * ld + j * in_plane);
          }
        }
        if (!all_finite_serial(xp, g.in_c * ld)) flags |= 1;
        gemm<T>(true, false, rows, ld, g.in_c, T(1), p.weight, rows, xp, ld, T(0), cols.data(), ld);
      }
      output_images(g, cols.data(), ld, n0, n0 + m, p.bias, p.out, act, p.slope);
    }
  }
  return flags;
}

namespace {

// Images [n0, n0 + m) of the gradient gathered into cols [out_c kh kw, ld]: column
// j * in_plane + pixel holds, for each tap (co, ky, kx), the gradient of the output that input
// pixel `pixel` of image n0 + j sent that tap to (0 where it fell outside the output). Channel
// and image outer, taps inner: each gradient plane is read while in L1, once for all its taps.
template <typename T>
void im2col_images(const ConvTransposeGeometry& g, const T* grad, int64_t n0, int64_t m, T* cols, int64_t ld) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  for (int64_t co = 0; co < g.out_c; ++co) {
    for (int64_t j = 0; j < m; ++j) {
      const T* src = grad + ((n0 + j) * g.out_c + co) * out_plane;
      for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
        for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
          T* dst_plane = cols + ((co * g.kernel_h + ky) * g.kernel_w + kx) * ld + j * in_plane;
          // input columns whose output column ox = ix stride_w - pad_w + kx lies in [0, out_w)
          const int64_t first = g.pad_w - kx;  // ix stride_w >= first
          const int64_t ix_begin = std::min<int64_t>(g.in_w, first > 0 ? (first + g.stride_w - 1) / g.stride_w : 0);
          const int64_t last = g.out_w - 1 + g.pad_w - kx;  // ix stride_w <= last
          const int64_t ix_end = last < 0 ? 0 : std::min<int64_t>(g.in_w, last / g.stride_w + 1);
          for (int64_t iy = 0; iy < g.in_h; ++iy) {
            const int64_t oy = iy * g.stride_h - g.pad_h + ky;
            T* dst = dst_plane + iy * g.in_w;
            if (oy < 0 || oy >= g.out_h || ix_begin >= ix_end) {
              std::fill(dst, dst + g.in_w, T(0));
              continue;
            }
            const T* row = src + oy * g.out_w - g.pad_w + kx;  // row[ix stride_w] = output (oy, ox)
            for (int64_t ix = 0; ix < ix_begin; ++ix) dst[ix] = T(0);
            if (g.stride_w == 2) {
#pragma omp simd
              for (int64_t ix = ix_begin; ix < ix_end; ++ix) dst[ix] = row[2 * ix];
            } else {
              for (int64_t ix = ix_begin; ix < ix_end; ++ix) dst[ix] = row[ix * g.stride_w];
            }
            for (int64_t ix = ix_end; ix < g.in_w; ++ix) dst[ix] = T(0);
          }
        }
      }
    }
  }
}

// Partial sums of grad_weight: the chunks are split into at most this many groups, each summed
// in chunk order into its own buffer, and the groups' buffers are added in group order, so the
// result does not depend on the thread count (groups and chunks depend on the shape only).
constexpr int64_t kBackwardGroups = 8;

}  // namespace

template <typename T> void conv_transpose2d_backward(const ConvTransposeBackwardParams<T>& p) {
  const ConvTransposeGeometry& g = p.geometry;
  const int64_t in_plane = g.in_h * g.in_w, rows = g.out_c * g.kernel_h * g.kernel_w;
  const int64_t w_size = g.in_c * rows;
  if (g.batch == 0 || g.in_c == 0 || w_size == 0) {
    std::fill(p.grad_weight, p.grad_weight + w_size, T(0));
    if (p.grad_x) std::fill(p.grad_x, p.grad_x + g.batch * g.in_c * in_plane, T(0));
    return;
  }
  const ImageChunks chunks = image_chunks(g, p.chunk_elements);  // the forward's chunks
  const int64_t nb = chunks.images, n_chunks = chunks.count;
  const bool direct = nb == 1;
  const int64_t n_groups = std::min<int64_t>(n_chunks, kBackwardGroups);
  // group 0 sums into grad_weight itself, the others into partial
  AlignedVector<T> partial(static_cast<size_t>((n_groups - 1) * w_size));
#pragma omp parallel if (p.parallel_chunks && n_groups > 1)
  {
    AlignedVector<T> cols(static_cast<size_t>(rows * nb * in_plane));
    AlignedVector<T> xp(direct ? 0 : static_cast<size_t>(g.in_c * nb * in_plane));
    AlignedVector<T> gxp(direct || !p.grad_x ? 0 : static_cast<size_t>(g.in_c * nb * in_plane));
#pragma omp for schedule(dynamic, 1)
    for (int64_t group = 0; group < n_groups; ++group) {
      T* gw = group == 0 ? p.grad_weight : partial.data() + (group - 1) * w_size;
      const int64_t c_begin = group * n_chunks / n_groups, c_end = (group + 1) * n_chunks / n_groups;
      for (int64_t chunk = c_begin; chunk < c_end; ++chunk) {
        const int64_t n0 = chunk * nb, m = std::min<int64_t>(nb, g.batch - n0), ld = m * in_plane;
        im2col_images(g, p.grad, n0, m, cols.data(), ld);
        const T* X = p.x + n0 * g.in_c * in_plane;
        if (!direct) {
          for (int64_t c = 0; c < g.in_c; ++c) {
            for (int64_t j = 0; j < m; ++j) {
              const T* src = p.x + ((n0 + j) * g.in_c + c) * in_plane;
              std::copy(src, src + in_plane, xp.data() + c * ld + j * in_plane);
            }
          }
          X = xp.data();
        }
        // grad_weight (in_c x rows) += X (in_c x ld) @ cols^T
        gemm<T>(false, true, g.in_c, rows, ld, T(1), X, ld, cols.data(), ld, chunk == c_begin ? T(0) : T(1), gw,
                rows);
        if (!p.grad_x) continue;
        // grad_x (in_c x ld) = weight (in_c x rows) @ cols
        if (direct) {
          gemm<T>(false, false, g.in_c, ld, rows, T(1), p.weight, rows, cols.data(), ld, T(0),
                  p.grad_x + n0 * g.in_c * in_plane, ld);
        } else {
          gemm<T>(false, false, g.in_c, ld, rows, T(1), p.weight, rows, cols.data(), ld, T(0), gxp.data(), ld);
          for (int64_t c = 0; c < g.in_c; ++c) {
            for (int64_t j = 0; j < m; ++j) {
              const T* src = gxp.data() + c * ld + j * in_plane;
              std::copy(src, src + in_plane, p.grad_x + ((n0 + j) * g.in_c + c) * in_plane);
            }
          }
        }
      }
    }
  }
  // the groups' sums, added in group order
  if (n_groups > 1) {
    T* gw = p.grad_weight;
    const T* part = partial.data();
#pragma omp parallel for schedule(static) if (p.parallel_chunks && w_size >= kParallelMinElements)
    for (int64_t i = 0; i < w_size; ++i) {
      T s = gw[i];
      for (int64_t k = 0; k < n_groups - 1; ++k) s += part[k * w_size + i];
      gw[i] = s;
    }
  }
}

template <typename T> void conv_transpose2d_im2col(const ConvTransposeGeometry& g, const T* grad, T* cols) {
  const int64_t in_plane = g.in_h * g.in_w, cols_ld = g.batch * in_plane, out_plane = g.out_h * g.out_w;
  const int64_t rows = g.out_c * g.kernel_h * g.kernel_w;
#pragma omp parallel for schedule(static) if (rows * cols_ld >= kParallelMinElements)
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t kx = row % g.kernel_w, ky = (row / g.kernel_w) % g.kernel_h, co = row / (g.kernel_w * g.kernel_h);
    T* c = cols + row * cols_ld;
    for (int64_t n = 0; n < g.batch; ++n) {
      const T* src = grad + (n * g.out_c + co) * out_plane;
      for (int64_t iy = 0; iy < g.in_h; ++iy) {
        const int64_t oy = iy * g.stride_h - g.pad_h + ky;
        T* dst = c + n * in_plane + iy * g.in_w;
        if (oy < 0 || oy >= g.out_h) {
          for (int64_t ix = 0; ix < g.in_w; ++ix) dst[ix] = T(0);
          continue;
        }
        for (int64_t ix = 0; ix < g.in_w; ++ix) {
          const int64_t ox = ix * g.stride_w - g.pad_w + kx;
          dst[ix] = (ox >= 0 && ox < g.out_w) ? src[oy * g.out_w + ox] : T(0);
        }
      }
    }
  }
}

template <typename T>
void activation_backward(const T* grad_out, const T* y, int64_t n, int activation, T slope, T* grad_in) {
  const Activation act = static_cast<Activation>(activation);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) grad_in[i] = grad_out[i] * activation_derivative_from_output(act, y[i], slope);
}

#define FASTGEN_INSTANTIATE(T)                                                                        \
  template void conv_transpose2d_output<T>(const ConvTransposeParams<T>&);                           \
  template int conv_transpose2d_forward<T>(const ConvTransposeForwardParams<T>&);                    \
  template void conv_transpose2d_im2col<T>(const ConvTransposeGeometry&, const T*, T*);              \
  template void conv_transpose2d_backward<T>(const ConvTransposeBackwardParams<T>&);                 \
  template void activation_backward<T>(const T*, const T*, int64_t, int, T, T*);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen
