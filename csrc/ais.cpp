// Annealed importance sampling for a Bernoulli-Bernoulli RBM, both ways: forward from the
// base-rate model (rbm_ais, log Z) and in reverse from data rows (rbm_raise, log P(x)). All
// chains advance together through the temperatures, so each temperature costs two products
// (v @ W^T, h @ W) over the whole batch of chains, both with a 0/1 operand (binary_matmul when
// it pays), plus one fused pass that adds the log-weight increments and prepares the hidden
// probabilities. The formulas are in kernels/include/fastgen/ais.h.
#include <algorithm>
#include <cmath>
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

namespace {

// The chains' states and the two steps both directions are made of.
template <typename T> class Annealer {
 public:
  Annealer(const RBMWeights<T>& rbm, const T* base_visible_bias, int64_t n_chains, bool binary_products,
           int64_t first_chain)
      : rbm_(rbm), base_(base_visible_bias), n_(n_chains), first_chain_(first_chain), nv_(rbm.n_visible),
        nh_(rbm.n_hidden),
        binary_products_(binary_products), layouts_(rbm.weights, nh_, nv_), ldw_(layouts_.ldw), ldt_(layouts_.ldt),
        hidden_(n_ * ldt_, T(0)), visible_(n_ * ldw_, T(0)), v_(n_ * nv_, T(0)), v_indices_(n_ * nv_), v_counts_(n_),
        h_indices_(n_ * nh_), h_counts_(n_), h_masks_(n_ * mask_words_for(nh_)), bias_gap_(nv_), mixed_bias_(nv_),
        parallel_rows_(n_ * nh_ >= kParallelMinElements / 8) {
    for (int64_t i = 0; i < nv_; ++i)
      bias_gap_[i] = static_cast<double>(rbm.visible_bias[i]) - static_cast<double>(base_visible_bias[i]);
  }

  // v ~ the base-rate model: independent units with logits b_A.
  void draw_from_base(RandomStream s) {
    bernoulli<T>(visible_.data(), ldw_, false, v_.data(), nv_, n_, nv_, base_, s, v_indices_.data(), v_counts_.data(),
                 nv_, nullptr, first_chain_);
  }

  // v = row r / chains_per_row of x (given 0/1 rows, [n_chains / chains_per_row, n_visible]).
  void start_from_rows(const T* x, int64_t chains_per_row) {
    for (int64_t r = 0; r < n_; ++r) std::copy(x + (r / chains_per_row) * nv_, x + (r / chains_per_row + 1) * nv_,
                                               v_.data() + r * nv_);
    binary_rows_from_dense<T>(v_.data(), n_, nv_, nv_, v_indices_.data(), v_counts_.data(), nv_);
  }

  // With a = W v + c for the current states: adds log p*_beta_to(v) - log p*_beta_from(v) to
  // each chain's log-weight (when log_weights is given) and leaves sigmoid(beta_to a), the
  // probabilities a transition at beta_to samples h with. One chain per iteration, summed in a
  // fixed order: the weights do not depend on the thread count.
  void hidden_pass(double beta_from, double beta_to, double* log_weights) {
    const BinaryOperand<T> vs{v_.data(), nv_, v_indices_.data(), v_counts_.data(), nv_, nnz(v_counts_.data()), n_, nv_};
    product(vs, layouts_.WT.data(), ldt_, nh_, hidden_.data(), ldt_);
    const T* c = rbm_.hidden_bias;
    const T beta_t = static_cast<T>(beta_to);
    const T step = static_cast<T>(beta_to - beta_from);  // negative in reverse
#pragma omp parallel for schedule(static) if (parallel_rows_)
    for (int64_t r = 0; r < n_; ++r) {
      T* a = hidden_.data() + r * ldt_;
      T largest = T(0);
#pragma omp simd reduction(max : largest)
      for (int64_t j = 0; j < nh_; ++j) {
        a[j] += c[j];
        largest = std::max(largest, a[j] < T(0) ? -a[j] : a[j]);
      }
      if (log_weights == nullptr) {
#pragma omp simd
        for (int64_t j = 0; j < nh_; ++j) a[j] = sigmoid(beta_t * a[j]);
        continue;
      }
      const int32_t* ones = v_indices_.data() + r * nv_;
      double visible_part = 0.0;
      for (int32_t q = 0; q < v_counts_[r]; ++q) visible_part += bias_gap_[ones[q]];
      double hidden_part = 0.0;
      if (std::abs(static_cast<double>(step)) * static_cast<double>(largest) <= 0.5) {
#pragma omp simd reduction(+ : hidden_part)
        for (int64_t j = 0; j < nh_; ++j) {
          const T s = sigmoid(beta_t * a[j]);
          hidden_part += static_cast<double>(ais_hidden_increment_small_step(s, step * a[j]));
          a[j] = s;
        }
      } else {
#pragma omp simd reduction(+ : hidden_part)
        for (int64_t j = 0; j < nh_; ++j) {
          hidden_part += ais_hidden_increment(a[j], beta_from, beta_to);
          a[j] = sigmoid(beta_t * a[j]);
        }
      }
      log_weights[r] += (beta_to - beta_from) * visible_part + hidden_part;
    }
  }

  // The transition at beta, which leaves p*_beta invariant: h | v (from the probabilities the
  // last hidden_pass left, at this beta), then v | h. Takes offsets s and s + 1.
  void transition(double beta, RandomStream s) {
    BernoulliParams<T> draw_h{hidden_.data(), nullptr, nullptr, hidden_.data(), n_, nh_, ldt_, ldt_, ldt_,
                              /*from_logits=*/false, s};
    draw_h.indices = h_indices_.data();
    draw_h.counts = h_counts_.data();
    draw_h.indices_stride = nh_;
    draw_h.masks = h_masks_.data();
    draw_h.first_row = first_chain_;
    sample_bernoulli(draw_h);
    const BinaryOperand<T> hs{hidden_.data(), ldt_, h_indices_.data(), h_counts_.data(), nh_, nnz(h_counts_.data()),
                              n_, nh_, h_masks_.data()};
    product(hs, layouts_.W.data(), ldw_, nv_, visible_.data(), ldw_);
    for (int64_t i = 0; i < nv_; ++i) mixed_bias_[i] = ais_mixed_visible_bias(base_[i], rbm_.visible_bias[i], beta);
    const T beta_t = static_cast<T>(beta);
#pragma omp parallel for schedule(static) if (parallel_rows_)
    for (int64_t r = 0; r < n_; ++r) {
      T* x = visible_.data() + r * ldw_;
#pragma omp simd
      for (int64_t i = 0; i < nv_; ++i) x[i] *= beta_t;
    }
    bernoulli<T>(visible_.data(), ldw_, false, v_.data(), nv_, n_, nv_, mixed_bias_.data(), at(s, 1),
                 v_indices_.data(), v_counts_.data(), nv_, nullptr, first_chain_);
  }

  void copy_states(T* out) const { std::copy(v_.begin(), v_.end(), out); }

 private:
  // nnz < 0 tells product() to use BLAS.
  int64_t nnz(const int32_t* counts) const { return binary_products_ ? total(counts, n_) : int64_t(-1); }

  const RBMWeights<T>& rbm_;
  const T* base_;
  const int64_t n_, first_chain_, nv_, nh_;
  const bool binary_products_;
  const rbm_detail::WeightLayouts<T> layouts_;
  const int64_t ldw_, ldt_;
  AlignedVector<T> hidden_, visible_, v_;
  std::vector<int32_t> v_indices_, v_counts_, h_indices_, h_counts_;
  // The hidden states' bit masks, written by the sampler: a table product takes its codes from
  // them instead of rebuilding them from the lists.
  std::vector<uint64_t> h_masks_;
  std::vector<double> bias_gap_;  // b - b_A, for the visible part of the increments
  std::vector<T> mixed_bias_;
  const bool parallel_rows_;
};

}  // namespace

template <typename T> void rbm_ais(const AISParams<T>& p) {
  if (p.n_chains == 0) return;
  std::fill(p.log_weights, p.log_weights + p.n_chains, 0.0);
  Annealer<T> chains(p.rbm, p.base_visible_bias, p.n_chains, p.binary_products, p.first_chain);
  chains.draw_from_base(at(p.stream, 0));
  const int64_t last = p.n_betas - 1;  // index of beta = 1
  for (int64_t k = 1; k <= last; ++k) {
    chains.hidden_pass(p.betas[k - 1], p.betas[k], p.log_weights);
    if (k < last) chains.transition(p.betas[k], at(p.stream, 2 * k - 1));
  }
  if (p.visible_out != nullptr) chains.copy_states(p.visible_out);
}

// From x_K = x: x_k-1 = T_beta_k(x_k) for k = K, ..., 1, adding
// log p*_beta_k-1(x_k-1) - log p*_beta_k(x_k-1) after each transition.
template <typename T> void rbm_raise(const RAISEParams<T>& p) {
  const int64_t n = p.n_rows * p.chains_per_row;
  if (n == 0) return;
  std::fill(p.log_weights, p.log_weights + n, 0.0);
  Annealer<T> chains(p.rbm, p.base_visible_bias, n, p.binary_products, p.first_chain);
  chains.start_from_rows(p.data, p.chains_per_row);
  const int64_t last = p.n_betas - 1;
  chains.hidden_pass(p.betas[last], p.betas[last], nullptr);
  for (int64_t k = last; k >= 1; --k) {
    chains.transition(p.betas[k], at(p.stream, 2 * (last - k)));
    chains.hidden_pass(p.betas[k], p.betas[k - 1], p.log_weights);
  }
}

template void rbm_ais<float>(const AISParams<float>&);
template void rbm_ais<double>(const AISParams<double>&);
template void rbm_raise<float>(const RAISEParams<float>&);
template void rbm_raise<double>(const RAISEParams<double>&);

}  // namespace cpu
}  // namespace fastgen
