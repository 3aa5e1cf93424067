// Annealed importance sampling of log Z for a Bernoulli-Bernoulli RBM: all chains advance
// together through the temperatures, so each temperature costs two products (v @ W^T, h @ W)
// over the whole batch of chains, both with a 0/1 operand (binary_matmul when it pays), plus
// one fused pass that adds the log-weight increments and prepares the hidden logits.
// The formulas are in kernels/include/fastgen/ais.h.
#include <algorithm>
#include <vector>

#include "aligned.h"
#include "fastgen.h"
#include "fastgen/ais.h"
#include "philox_cpu.h"
#include "rbm_helpers.h"

namespace fastgen {
namespace cpu {

using rbm_detail::at;
using rbm_detail::BinaryOperand;
using rbm_detail::bernoulli;
using rbm_detail::product;
using rbm_detail::total;

template <typename T> void rbm_ais(const AISParams<T>& p) {
  const int64_t n = p.n_chains, nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  if (n == 0) return;
  std::fill(p.log_weights, p.log_weights + n, 0.0);
  const int64_t last = p.n_betas - 1;  // index of beta = 1

  const rbm_detail::WeightLayouts<T> layouts(p.rbm.weights, nh, nv);
  const int64_t ldw = layouts.ldw, ldt = layouts.ldt;
  AlignedVector<T> hidden(n * ldt, T(0)), visible(n * ldw, T(0)), v(n * nv, T(0));
  std::vector<int32_t> v_indices(n * nv), v_counts(n), h_indices(n * nh), h_counts(n);
  // The hidden states' bit masks, written by the sampler: a table product takes its codes from
  // them instead of rebuilding them from the lists.
  std::vector<uint64_t> h_masks(n * mask_words_for(nh));
  std::vector<double> bias_gap(nv);  // b - b_A, for the visible part of the increments
  std::vector<T> mixed_bias(nv);
  for (int64_t i = 0; i < nv; ++i)
    bias_gap[i] = static_cast<double>(p.rbm.visible_bias[i]) - static_cast<double>(p.base_visible_bias[i]);

  // v_0 ~ the base-rate model: independent units with logits b_A.
  bernoulli<T>(visible.data(), ldw, false, v.data(), nv, n, nv, p.base_visible_bias, at(p.stream, 0),
               v_indices.data(), v_counts.data(), nv);
  // nnz < 0 tells product() to use BLAS.
  auto nnz = [&](const int32_t* counts) { return p.binary_products ? total(counts, n) : int64_t(-1); };
  const bool parallel_rows = n * nh >= kParallelMinElements / 8;

  for (int64_t k = 1; k <= last; ++k) {
    const double beta0 = p.betas[k - 1], beta1 = p.betas[k];
    const BinaryOperand<T> vs{v.data(), nv, v_indices.data(), v_counts.data(), nv, nnz(v_counts.data()), n, nv};
    product(vs, layouts.WT.data(), ldt, nh, hidden.data(), ldt);
    const T* c = p.rbm.hidden_bias;
    const T beta_t = static_cast<T>(beta1);
    // One chain per iteration, summed in a fixed order: the weights do not depend on the
    // thread count. The buffer leaves with P(h = 1 | v) at beta1, which the transition samples.
    const T step = static_cast<T>(beta1 - beta0);
#pragma omp parallel for schedule(static) if (parallel_rows)
    for (int64_t r = 0; r < n; ++r) {
      const int32_t* ones = v_indices.data() + r * nv;
      double visible_part = 0.0;
      for (int32_t q = 0; q < v_counts[r]; ++q) visible_part += bias_gap[ones[q]];
      T* a = hidden.data() + r * ldt;
      T largest = T(0);
#pragma omp simd reduction(max : largest)
      for (int64_t j = 0; j < nh; ++j) {
        a[j] += c[j];
        largest = std::max(largest, a[j] < T(0) ? -a[j] : a[j]);
      }
      double hidden_part = 0.0;
      if (static_cast<double>(step) * static_cast<double>(largest) <= 0.5) {
#pragma omp simd reduction(+ : hidden_part)
        for (int64_t j = 0; j < nh; ++j) {
          const T s = sigmoid(beta_t * a[j]);
          hidden_part += static_cast<double>(ais_hidden_increment_small_step(s, step * a[j]));
          a[j] = s;
        }
      } else {
#pragma omp simd reduction(+ : hidden_part)
        for (int64_t j = 0; j < nh; ++j) {
          hidden_part += ais_hidden_increment(a[j], beta0, beta1);
          a[j] = sigmoid(beta_t * a[j]);
        }
      }
      p.log_weights[r] += (beta1 - beta0) * visible_part + hidden_part;
    }
    if (k == last) break;
    // The transition at beta1, which leaves p_beta1 invariant: h | v, then v | h.
    BernoulliParams<T> draw_h{hidden.data(), nullptr, nullptr, hidden.data(), n, nh, ldt, ldt, ldt,
                              /*from_logits=*/false, at(p.stream, 2 * k - 1)};
    draw_h.indices = h_indices.data();
    draw_h.counts = h_counts.data();
    draw_h.indices_stride = nh;
    draw_h.masks = h_masks.data();
    sample_bernoulli(draw_h);
    const BinaryOperand<T> hs{hidden.data(), ldt, h_indices.data(), h_counts.data(), nh, nnz(h_counts.data()),
                              n, nh, h_masks.data()};
    product(hs, layouts.W.data(), ldw, nv, visible.data(), ldw);
    for (int64_t i = 0; i < nv; ++i)
      mixed_bias[i] = ais_mixed_visible_bias(p.base_visible_bias[i], p.rbm.visible_bias[i], beta1);
#pragma omp parallel for schedule(static) if (parallel_rows)
    for (int64_t r = 0; r < n; ++r) {
      T* x = visible.data() + r * ldw;
#pragma omp simd
      for (int64_t i = 0; i < nv; ++i) x[i] *= beta_t;
    }
    bernoulli<T>(visible.data(), ldw, false, v.data(), nv, n, nv, mixed_bias.data(), at(p.stream, 2 * k),
                 v_indices.data(), v_counts.data(), nv);
  }
  if (p.visible_out != nullptr) std::copy(v.begin(), v.end(), p.visible_out);
}

template void rbm_ais<float>(const AISParams<float>&);
template void rbm_ais<double>(const AISParams<double>&);

}  // namespace cpu
}  // namespace fastgen
