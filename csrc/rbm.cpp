// Bernoulli-Bernoulli RBM loops on the CPU: CD-k / PCD-k epochs and the exact
// pseudo-likelihood (the Gibbs chain is gibbs.cpp). GEMMs go to BLAS; what surrounds them (bias, sigmoid, sampling,
// statistics, parameter update) is fused here, and the per-batch loop never returns to Python,
// which is what makes scikit-learn's batch_size=10 fast.
#include <algorithm>
#include <vector>

#include "fastgen.h"
#include "rbm_helpers.h"
#include "fastgen/math.h"
#include "philox_cpu.h"

namespace fastgen {
namespace cpu {
namespace {

using rbm_detail::at;
using rbm_detail::column_sums;
using rbm_detail::sample_states_rows;
using rbm_detail::scale;
using rbm_detail::sigmoid_rows;

// probs[r, :] = sigmoid(pre[r, :] + bias) and states ~ Bernoulli(probs), fused.
template <typename T>
void sigmoid_sample_rows(T* pre_to_probs, T* states, int64_t rows, int64_t cols, const T* bias, RandomStream s) {
  BernoulliParams<T> p{pre_to_probs, bias, pre_to_probs, states, rows, cols, cols, cols, cols, true, s};
  sample_bernoulli(p);
}

// velocity -= decay * param; param += velocity  (velocity already holds momentum * v + lr * grad)
template <typename T> void apply_velocity(T* param, T* velocity, int64_t n, T decay) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    const T v = velocity[i] - decay * param[i];
    velocity[i] = v;
    param[i] += v;
  }
}

}  // namespace

template <typename T>
void sgd_momentum_update(T* param, T* velocity, const T* grad, int64_t n, T lr, T momentum, T weight_decay) {
  if (velocity == nullptr) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
    for (int64_t i = 0; i < n; ++i) param[i] += lr * (grad[i] - weight_decay * param[i]);
    return;
  }
#pragma omp parallel for simd schedule(static) if (n >= kParallelMinElements)
  for (int64_t i = 0; i < n; ++i) {
    const T v = momentum * velocity[i] + lr * (grad[i] - weight_decay * param[i]);
    velocity[i] = v;
    param[i] += v;
  }
}

template <typename T> void rbm_train_batches(const TrainParams<T>& p) {
  const int64_t nv = p.rbm.n_visible, nh = p.rbm.n_hidden;
  const rbm_detail::BatchShape shape(p);
  const int64_t max_batch = shape.max_batch, max_chains = shape.max_chains;
  const bool persistent = shape.persistent;
  if (p.binary_products) {
    // A density limit of 0 asks for every product on BLAS, which only the per-product loop does.
    if (p.hidden_slices && max_batch + max_chains <= kSlicedMaxRows && binary_max_density() > 0.0)
      return rbm_train_batches_sliced(p);
    return rbm_train_batches_binary(p);
  }
  if (max_batch == 0) return;
  T* W = p.rbm.weights;
  // Data and model statistics share one buffer each, stacked along the batch axis:
  //   hidden  = [P(h | v_data) * lr/B ; P(h | v_k) * -lr/C]   [B + C, nh]
  //   visible = [v_data ; v_k]                                [B + C, nv]
  // so the weight update is a single GEMM hidden^T @ visible with K = B + C, which reads and
  // writes W once per batch instead of twice (the GEMMs are small at batch_size=10).
  std::vector<T> hidden((max_batch + max_chains) * nh), visible((max_batch + max_chains) * nv);
  std::vector<T> cd_chains(persistent ? 0 : max_batch * nh), bias_grad(std::max(nv, nh));
  const bool use_momentum = p.weights_velocity != nullptr;
  const T lr = p.learning_rate;

  int64_t batch_index = 0;
  for (int64_t start = 0; start < p.n_samples; start += p.batch_size, ++batch_index) {
    const int64_t B = std::min(p.batch_size, p.n_samples - start);
    const T* v = p.data + start * p.data_stride;
    const RandomStream s = at(p.stream, batch_index * shape.offsets_per_batch);
    T* hidden_pos = hidden.data();
    T* visible_pos = visible.data();
    for (int64_t r = 0; r < B; ++r) std::copy(v + r * p.data_stride, v + r * p.data_stride + nv, visible_pos + r * nv);

    // Positive phase: P(h | v_data).
    gemm<T>(false, true, B, nh, nv, T(1), visible_pos, nv, W, nv, T(0), hidden_pos, nh);
    T* chains;
    int64_t C;
    if (persistent) {
      chains = p.persistent_chains;
      C = p.n_chains;
      sigmoid_rows(hidden_pos, B, nh, p.rbm.hidden_bias);
    } else {  // CD-k starts its chain from h ~ P(h | v_data)
      chains = cd_chains.data();
      C = B;
      sigmoid_sample_rows(hidden_pos, chains, B, nh, p.rbm.hidden_bias, s);
    }
    T* hidden_neg = hidden_pos + B * nh;
    T* visible_neg = visible_pos + B * nv;

    // Negative phase: k block-Gibbs steps h -> v -> h from the chains.
    for (int step = 0; step < p.cd_k; ++step) {
      gemm<T>(false, false, C, nv, nh, T(1), chains, nh, W, nv, T(0), visible_neg, nv);
      sample_states_rows(visible_neg, visible_neg, C, nv, p.rbm.visible_bias, at(s, 1 + 2 * step));
      gemm<T>(false, true, C, nh, nv, T(1), visible_neg, nv, W, nv, T(0), hidden_neg, nh);
      const bool last = step + 1 == p.cd_k;
      if (last && !persistent) {
        sigmoid_rows(hidden_neg, C, nh, p.rbm.hidden_bias);
      } else {
        sigmoid_sample_rows(hidden_neg, chains, C, nh, p.rbm.hidden_bias, at(s, 2 + 2 * step));
      }
    }

    // Biases (no weight decay): gradients are differences of means.
    column_sums(bias_grad.data(), visible_pos, B, nv, T(1) / B, visible_neg, C, nv, T(-1) / C, nv);
    sgd_momentum_update(p.rbm.visible_bias, p.visible_bias_velocity, bias_grad.data(), nv, lr, p.momentum, T(0));
    column_sums(bias_grad.data(), hidden_pos, B, nh, T(1) / B, hidden_neg, C, nh, T(-1) / C, nh);
    sgd_momentum_update(p.rbm.hidden_bias, p.hidden_bias_velocity, bias_grad.data(), nh, lr, p.momentum, T(0));

    // Weights: lr * (<h v^T>_data / B - <h v^T>_model / C), the scales folded into the rows.
    scale(hidden_pos, B * nh, lr / static_cast<T>(B));
    scale(hidden_neg, C * nh, -lr / static_cast<T>(C));
    if (use_momentum) {
      T* VW = p.weights_velocity;
      gemm<T>(true, false, nh, nv, B + C, T(1), hidden_pos, nh, visible_pos, nv, p.momentum, VW, nv);
      apply_velocity(W, VW, nh * nv, lr * p.weight_decay);
    } else {
      gemm<T>(true, false, nh, nv, B + C, T(1), hidden_pos, nh, visible_pos, nv, T(1) - lr * p.weight_decay, W, nv);
    }
  }
}

template <typename T>
void rbm_pseudo_likelihood(const RBMWeights<T>& rbm, const T* visible, const T* hidden_preact, T* out, int64_t rows) {
  const int64_t nv = rbm.n_visible, nh = rbm.n_hidden;
  if (rows == 0) return;
  // Column i of W, contiguous: flipping visible unit i shifts every hidden input by d * W[:, i].
  std::vector<T> wt(nv * nh);
  for (int64_t j = 0; j < nh; ++j)
    for (int64_t i = 0; i < nv; ++i) wt[i * nh + j] = rbm.weights[j * nv + i];
#pragma omp parallel for schedule(dynamic, 4) if (rows * nv * nh >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const T* x = hidden_preact + r * nh;
    const T* v = visible + r * nv;
    std::vector<T> sp(nh);
    for (int64_t j = 0; j < nh; ++j) sp[j] = softplus(x[j]);
    T total = T(0);
    for (int64_t i = 0; i < nv; ++i) {
      const T d = T(1) - T(2) * v[i];  // v_i -> 1 - v_i
      const T* w = wt.data() + i * nh;
      T acc = T(0);
#pragma omp simd reduction(+ : acc)
      for (int64_t j = 0; j < nh; ++j) acc += softplus(x[j] + d * w[j]) - sp[j];
      // F(v flipped) - F(v); log P(v_i | v_-i) = log sigmoid of it.
      const T delta = -d * rbm.visible_bias[i] - acc;
      total += log_sigmoid(delta);
    }
    out[r] = total;
  }
}

#define FASTGEN_INSTANTIATE(T)                                                                  \
  template void rbm_train_batches<T>(const TrainParams<T>&);                                    \
  template void rbm_pseudo_likelihood<T>(const RBMWeights<T>&, const T*, const T*, T*, int64_t); \
  template void sgd_momentum_update<T>(T*, T*, const T*, int64_t, T, T, T);
FASTGEN_INSTANTIATE(float)
FASTGEN_INSTANTIATE(double)
#undef FASTGEN_INSTANTIATE

}  // namespace cpu
}  // namespace fastgen
