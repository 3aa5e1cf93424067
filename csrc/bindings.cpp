// pybind11 module fastgen._C. Thin: unpack arrays into the kernels' params structs, release the
// GIL, run. fastgen/ops has already validated everything; the few checks here only keep a
// direct caller of this private module from reading or writing out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "aligned.h"
#include "release_gil.h"
#include "fastgen.h"
#include "fastgen/philox.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace py = pybind11;
using namespace fastgen::cpu;

namespace {

template <typename T> using Array = py::array_t<T, py::array::c_style>;
template <typename T> using OptArray = std::optional<Array<T>>;

void need(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(std::string("fastgen._C: ") + what);
}
// A 1-D (or 0-D) array is one row: rows * cols must never exceed the array's size.
int64_t rows_of(const py::array& a) { return a.ndim() == 2 ? a.shape(0) : 1; }
int64_t cols_of(const py::array& a) { return a.ndim() == 2 ? a.shape(1) : static_cast<int64_t>(a.size()); }
template <typename T> const T* ptr(const OptArray<T>& a) { return a ? a->data() : nullptr; }
template <typename T> T* mut(OptArray<T>& a) { return a ? a->mutable_data() : nullptr; }

template <typename T> void py_fill_uniform(Array<T>& out, uint64_t seed, uint64_t offset) {
  T* o = out.mutable_data();
  const int64_t n = out.size();
  run_released([&] {
    fill_uniform<T>(o, n, {seed, offset});
  });
}
template <typename T> void py_fill_normal(Array<T>& out, uint64_t seed, uint64_t offset) {
  T* o = out.mutable_data();
  const int64_t n = out.size();
  run_released([&] {
    fill_normal<T>(o, n, {seed, offset});
  });
}
void py_fill_bits(Array<uint32_t>& out, uint64_t seed, uint64_t offset) {
  uint32_t* o = out.mutable_data();
  const int64_t n = out.size();
  run_released([&] {
    fill_bits(o, n, {seed, offset});
  });
}

template <typename T>
void py_sample_bernoulli(const Array<T>& input, const OptArray<T>& bias, OptArray<T>& probs, OptArray<T>& states,
                         bool from_logits, uint64_t seed, uint64_t offset, int64_t first_row) {
  const int64_t rows = rows_of(input), cols = cols_of(input);
  need(!bias || bias->size() == cols, "bias must have one entry per column");
  need(!probs || probs->size() == input.size(), "probs must match input");
  need(!states || states->size() == input.size(), "states must match input");
  need(from_logits || (states && !probs && !bias), "probabilities in, states out");
  need(first_row >= 0, "first_row must be >= 0");
  BernoulliParams<T> p{input.data(), ptr(bias), mut(probs), mut(states), rows, cols, cols, cols, cols, from_logits,
                       {seed, offset}};
  p.first_row = first_row;
  run_released([&] {
    sample_bernoulli<T>(p);
  });
}

// The states of sample_bernoulli with the compact forms the RBM loops ask of it: (indices
// [rows, cols], counts [rows], masks [rows, mask_words_for(cols)] as uint64). For tests.
template <typename T>
py::tuple py_sample_bernoulli_rows(const Array<T>& input, const OptArray<T>& bias, Array<T>& states, bool from_logits,
                                   uint64_t seed, uint64_t offset) {
  const int64_t rows = rows_of(input), cols = cols_of(input);
  need(!bias || bias->size() == cols, "bias must have one entry per column");
  need(states.size() == input.size(), "states must match input");
  need(from_logits || !bias, "bias is for logits");
  const int64_t words = mask_words_for(cols);
  Array<int32_t> indices({rows, cols});
  Array<int32_t> counts({rows});
  py::array_t<uint64_t> masks({rows, words});
  BernoulliParams<T> p{input.data(), ptr(bias), nullptr, states.mutable_data(), rows, cols, cols, cols, cols,
                       from_logits, {seed, offset}};
  p.indices = indices.mutable_data();
  p.counts = counts.mutable_data();
  p.indices_stride = cols;
  p.masks = masks.mutable_data();
  {
    run_released([&] {
      sample_bernoulli<T>(p);
    });
  }
  return py::make_tuple(indices, counts, masks);
}

template <typename T>
void py_sample_gaussian(const Array<T>& mean, const OptArray<T>& bias, const OptArray<T>& stddev, T stddev_scalar,
                        Array<T>& out, uint64_t seed, uint64_t offset, int64_t first_row) {
  const int64_t rows = rows_of(mean), cols = cols_of(mean);
  need(!bias || bias->size() == cols, "bias must have one entry per column");
  need(!stddev || stddev->size() == cols, "stddev must have one entry per column");
  need(out.size() == mean.size(), "out must match mean");
  need(first_row >= 0, "first_row must be >= 0");
  GaussianParams<T> p{mean.data(), ptr(bias), ptr(stddev), stddev_scalar, out.mutable_data(), rows, cols, cols, cols,
                      {seed, offset}};
  p.first_row = first_row;
  run_released([&] {
    sample_gaussian<T>(p);
  });
}

template <typename T>
RBMWeights<T> rbm_view(T* weights, T* visible_bias, T* hidden_bias, const Array<T>& w, const Array<T>& vb,
                       const Array<T>& hb) {
  need(w.ndim() == 2, "weights must be [n_hidden, n_visible]");
  RBMWeights<T> r{weights, visible_bias, hidden_bias, w.shape(1), w.shape(0)};
  need(vb.size() == r.n_visible && hb.size() == r.n_hidden, "bias sizes must match weights");
  return r;
}
// The parameters of an RBM that a kernel trains in place.
template <typename T> RBMWeights<T> rbm_of(Array<T>& weights, Array<T>& visible_bias, Array<T>& hidden_bias) {
  return rbm_view(weights.mutable_data(), visible_bias.mutable_data(), hidden_bias.mutable_data(), weights,
                  visible_bias, hidden_bias);
}
// The parameters of an RBM that a kernel only reads (Gibbs, AIS, pseudo-likelihood): they may be
// read-only, as a model memory-mapped by joblib is. These kernels never write through the pointers.
template <typename T>
RBMWeights<T> rbm_read_only(const Array<T>& weights, const Array<T>& visible_bias, const Array<T>& hidden_bias) {
  return rbm_view(const_cast<T*>(weights.data()), const_cast<T*>(visible_bias.data()),
                  const_cast<T*>(hidden_bias.data()), weights, visible_bias, hidden_bias);
}

template <typename T>
void py_gibbs(const Array<T>& weights, const Array<T>& visible_bias, const Array<T>& hidden_bias, const Array<T>& visible_in,
              Array<T>& visible_out, OptArray<T>& hidden_probs_out, const std::optional<Array<uint8_t>>& clamp,
              int steps, uint64_t seed, uint64_t offset, bool binary_products) {
  RBMWeights<T> rbm = rbm_read_only(weights, visible_bias, hidden_bias);
  const int64_t rows = rows_of(visible_in);
  need(cols_of(visible_in) == rbm.n_visible && visible_out.size() == visible_in.size(), "visible shapes");
  need(!hidden_probs_out || hidden_probs_out->size() == rows * rbm.n_hidden, "hidden_probs_out shape");
  need(!clamp || clamp->size() == rbm.n_visible || clamp->size() == visible_in.size(), "clamp shape");
  need(steps >= 0, "steps >= 0");
  GibbsParams<T> p{rbm, visible_in.data(), visible_out.mutable_data(), mut(hidden_probs_out),
                   clamp ? clamp->data() : nullptr,
                   (clamp && clamp->size() == visible_in.size()) ? rbm.n_visible : 0, rows, steps, {seed, offset},
                   binary_products};
  run_released([&] {
    gibbs<T>(p);
  });
}

template <typename T>
void py_rbm_ais(const Array<T>& weights, const Array<T>& visible_bias, const Array<T>& hidden_bias, const Array<T>& base_visible_bias,
                const Array<double>& betas, Array<double>& log_weights, OptArray<T>& visible_out, uint64_t seed,
                uint64_t offset, bool binary_products, int64_t first_chain) {
  need(first_chain >= 0, "first_chain must be >= 0");
  RBMWeights<T> rbm = rbm_read_only(weights, visible_bias, hidden_bias);
  need(base_visible_bias.size() == rbm.n_visible, "base_visible_bias must have n_visible entries");
  need(betas.ndim() == 1 && betas.size() >= 2, "betas must be 1-D with >= 2 entries");
  const int64_t n = log_weights.size();
  need(!visible_out || visible_out->size() == n * rbm.n_visible, "visible_out must be [n_chains, n_visible]");
  AISParams<T> p{rbm, base_visible_bias.data(), betas.data(), betas.size(), n, log_weights.mutable_data(),
                 mut(visible_out), {seed, offset}, binary_products, first_chain};
  run_released([&] {
    rbm_ais<T>(p);
  });
}

template <typename T>
void py_rbm_raise(const Array<T>& weights, const Array<T>& visible_bias, const Array<T>& hidden_bias,
                  const Array<T>& base_visible_bias, const Array<double>& betas, const Array<T>& data,
                  Array<double>& log_weights, uint64_t seed, uint64_t offset, bool binary_products,
                  int64_t first_chain) {
  need(first_chain >= 0, "first_chain must be >= 0");
  RBMWeights<T> rbm = rbm_read_only(weights, visible_bias, hidden_bias);
  need(base_visible_bias.size() == rbm.n_visible, "base_visible_bias must have n_visible entries");
  need(betas.ndim() == 1 && betas.size() >= 2, "betas must be 1-D with >= 2 entries");
  need(data.ndim() == 2 && data.shape(1) == rbm.n_visible, "data must be [n_rows, n_visible]");
  need(log_weights.ndim() == 2 && log_weights.shape(0) == data.shape(0) && log_weights.shape(1) >= 1,
       "log_weights must be [n_rows, chains_per_row]");
  RAISEParams<T> p{rbm, base_visible_bias.data(), betas.data(), betas.size(), data.data(), data.shape(0),
                   log_weights.shape(1), log_weights.mutable_data(), {seed, offset}, binary_products,
                   first_chain};
  run_released([&] {
    rbm_raise<T>(p);
  });
}

template <typename T>
void py_rbm_train_batches(Array<T>& weights, Array<T>& visible_bias, Array<T>& hidden_bias,
                          OptArray<T>& weights_velocity, OptArray<T>& visible_bias_velocity,
                          OptArray<T>& hidden_bias_velocity, OptArray<T>& persistent_chains, const Array<T>& data,
                          int64_t batch_size, int cd_k, T learning_rate, T momentum, T weight_decay, uint64_t seed,
                          uint64_t offset, bool binary_products, bool hidden_slices) {
  RBMWeights<T> rbm = rbm_of(weights, visible_bias, hidden_bias);
  need(data.ndim() == 2 && data.shape(1) == rbm.n_visible, "data must be [n_samples, n_visible]");
  need(batch_size >= 1 && cd_k >= 1, "batch_size >= 1 and cd_k >= 1");
  const bool momentum_buffers = weights_velocity && visible_bias_velocity && hidden_bias_velocity;
  need(momentum_buffers == (weights_velocity || visible_bias_velocity || hidden_bias_velocity),
       "velocities: all three or none");
  need(!momentum_buffers || (weights_velocity->size() == weights.size() &&
                             visible_bias_velocity->size() == rbm.n_visible &&
                             hidden_bias_velocity->size() == rbm.n_hidden),
       "velocity shapes must match the parameters");
  need(!persistent_chains || (persistent_chains->ndim() == 2 && persistent_chains->shape(1) == rbm.n_hidden &&
                              persistent_chains->shape(0) >= 1),
       "persistent_chains must be [n_chains >= 1, n_hidden]");
  TrainParams<T> p{rbm,
                   mut(weights_velocity),
                   mut(visible_bias_velocity),
                   mut(hidden_bias_velocity),
                   mut(persistent_chains),
                   persistent_chains ? persistent_chains->shape(0) : 0,
                   data.data(),
                   data.shape(0),
                   rbm.n_visible,
                   batch_size,
                   cd_k,
                   learning_rate,
                   momentum,
                   weight_decay,
                   {seed, offset},
                   binary_products,
                   hidden_slices};
  run_released([&] {
    rbm_train_batches<T>(p);
  });
}

// Positional order for the trainers' per-batch calls (see fastgen/ops/cd.py cd_statistics_numpy).
template <typename T>
void py_rbm_batch_statistics(const Array<T>& weights, const Array<T>& visible_bias, const Array<T>& hidden_bias,
                             const Array<T>& data, OptArray<T>& chains, bool persistent, Array<T>& grad_weights,
                             Array<T>& grad_visible_bias, Array<T>& grad_hidden_bias, int cd_k, T data_scale,
                             T chains_scale, uint64_t seed, uint64_t offset, int64_t first_row, int64_t first_chain,
                             bool binary_products, bool model_term) {
  RBMWeights<T> rbm = rbm_read_only(weights, visible_bias, hidden_bias);
  need(data.ndim() == 2 && data.shape(1) == rbm.n_visible, "data must be [rows, n_visible]");
  need(cd_k >= 1 && first_row >= 0 && first_chain >= 0, "cd_k >= 1, first_row >= 0, first_chain >= 0");
  need(!chains || (chains->ndim() == 2 && chains->shape(1) == rbm.n_hidden), "chains must be [n_chains, n_hidden]");
  need(persistent ? bool(chains) : !chains || chains->shape(0) == data.shape(0),
       "chains: PCD needs the persistent chains; CD takes none or one row per data row");
  need(grad_weights.size() == weights.size() && grad_visible_bias.size() == rbm.n_visible &&
           grad_hidden_bias.size() == rbm.n_hidden,
       "the gradients must have the parameters' shapes");
  StatisticsParams<T> p{rbm, data.data(), data.shape(0), rbm.n_visible, mut(chains),
                        persistent ? chains->shape(0) : 0, persistent, cd_k, data_scale, chains_scale,
                        grad_weights.mutable_data(), grad_visible_bias.mutable_data(),
                        grad_hidden_bias.mutable_data(), {seed, offset}, first_row, first_chain, binary_products,
                        model_term};
  run_released([&] {
    rbm_batch_statistics<T>(p);
  });
}

template <typename T>
void py_rbm_pseudo_likelihood(const Array<T>& weights, const Array<T>& visible_bias, const Array<T>& hidden_bias,
                              const Array<T>& visible, const Array<T>& hidden_preact, Array<T>& out) {
  RBMWeights<T> rbm = rbm_read_only(weights, visible_bias, hidden_bias);
  const int64_t rows = rows_of(visible);
  need(cols_of(visible) == rbm.n_visible, "visible must be [rows, n_visible]");
  need(hidden_preact.size() == rows * rbm.n_hidden && out.size() == rows, "hidden_preact / out shapes");
  const T* v = visible.data();
  const T* x = hidden_preact.data();
  T* o = out.mutable_data();
  run_released([&] {
    rbm_pseudo_likelihood<T>(rbm, v, x, o, rows);
  });
}

template <typename T>
void py_sgd_momentum_update(Array<T>& param, OptArray<T>& velocity, const Array<T>& grad, T lr, T momentum,
                            T weight_decay) {
  need(grad.size() == param.size() && (!velocity || velocity->size() == param.size()), "shapes must match");
  T* pp = param.mutable_data();
  T* vp = mut(velocity);
  const T* gp = grad.data();
  const int64_t n = param.size();
  run_released([&] {
    sgd_momentum_update<T>(pp, vp, gp, n, lr, momentum, weight_decay);
  });
}

// Index lists of a 0/1 matrix x [rows, cols]: (indices [rows, cols], counts [rows], nnz), or
// nnz = -1 when x holds another value.
template <typename T> py::tuple py_binary_rows(const Array<T>& x) {
  need(x.ndim() == 2, "x must be 2-D");
  const int64_t rows = x.shape(0), cols = x.shape(1);
  Array<int32_t> indices({rows, cols});
  Array<int32_t> counts({rows});
  const T* xp = x.data();
  int32_t* ip = indices.mutable_data();
  int32_t* cp = counts.mutable_data();
  int64_t nnz;
  {
    run_released([&] {
      nnz = binary_rows_from_dense<T>(xp, rows, cols, cols, ip, cp, cols);
    });
  }
  return py::make_tuple(indices, counts, nnz);
}

BinaryRows lists_of(const Array<int32_t>& indices, const Array<int32_t>& counts, int64_t K) {
  need(indices.ndim() == 2 && counts.ndim() == 1 && counts.shape(0) == indices.shape(0), "indices/counts shapes");
  const int64_t rows = indices.shape(0), stride = indices.shape(1);
  const int32_t* c = counts.data();
  const int32_t* idx = indices.data();
  for (int64_t r = 0; r < rows; ++r) {
    need(c[r] >= 0 && c[r] <= stride, "counts out of range");
    for (int32_t k = 0; k < c[r]; ++k) need(idx[r * stride + k] >= 0 && idx[r * stride + k] < K, "index out of range");
  }
  return BinaryRows{idx, c, nullptr, stride, rows, K};
}

// out = bias + A @ M with A given by its index lists (A: [rows, K], M: [K, N], out: [rows, N]).
// masks (optional, uint64 [rows, mask_words_for(K)]): the same rows as bit masks, as the sampler
// hands them to the subset-sum tables.
template <typename T>
void py_binary_matmul(const Array<int32_t>& indices, const Array<int32_t>& counts, const Array<T>& M,
                      const OptArray<T>& bias, Array<T>& out, const std::optional<py::array_t<uint64_t>>& masks) {
  need(M.ndim() == 2, "M must be 2-D");
  BinaryRows a = lists_of(indices, counts, M.shape(0));
  if (masks) {
    need(masks->ndim() == 2 && masks->shape(0) == a.rows && masks->shape(1) == mask_words_for(a.cols) &&
             (masks->flags() & py::array::c_style),
         "masks must be C-contiguous uint64 [rows, K / 64 + 1]");
    a.masks = masks->data();
  }
  const int64_t N = M.shape(1);
  need(out.ndim() == 2 && out.shape(0) == a.rows && out.shape(1) == N, "out must be [rows, N]");
  need(!bias || bias->size() == N, "bias must be [N]");
  const T* mp = M.data();
  const T* bp = ptr(bias);
  T* op = out.mutable_data();
  run_released([&] {
    binary_matmul<T>(a, mp, N, N, bp, op, N);
  });
}

// out = A.T @ M with A given by its index lists (A: [rows, K], M: [rows, N], out: [K, N]).
template <typename T>
void py_binary_transposed_matmul(const Array<int32_t>& indices, const Array<int32_t>& counts, int64_t K,
                                 const Array<T>& M, Array<T>& out) {
  const BinaryRows a = lists_of(indices, counts, K);
  need(M.ndim() == 2 && M.shape(0) == a.rows, "M must be [rows, N]");
  const int64_t N = M.shape(1);
  need(out.ndim() == 2 && out.shape(0) == K && out.shape(1) == N, "out must be [K, N]");
  const T* mp = M.data();
  T* op = out.mutable_data();
  run_released([&] {
    int64_t nnz = 0;
    for (int64_t r = 0; r < a.rows; ++r) nnz += a.counts[r];
    std::vector<int32_t> col_indices(std::max<int64_t>(nnz, 1)), col_counts(K);
    std::vector<int64_t> col_starts(K);
    const int64_t offset = 0;
    transpose_binary_rows(&a, &offset, 1, K, col_indices.data(), col_counts.data(), col_starts.data());
    const BinaryRows t{col_indices.data(), col_counts.data(), col_starts.data(), 0, K, a.rows};
    binary_matmul<T>(t, mp, N, N, nullptr, op, N);
  });
}

// y [rows, out] = bias + x [rows, in] @ w_t [in, out] on x's nonzeros. Returns the
// SparseLinearStatus: 0 done, 1 x denser than max_density (y untouched: the caller's dense GEMM
// runs instead), 2 x holds a NaN or infinity.
template <typename T>
int py_sparse_linear_forward(const Array<T>& x, const Array<T>& w_t, const OptArray<T>& bias, Array<T>& y,
                             double max_density) {
  need(x.ndim() == 2 && w_t.ndim() == 2 && x.shape(1) == w_t.shape(0), "x must be [rows, in], w_t [in, out]");
  const int64_t rows = x.shape(0), in = x.shape(1), out = w_t.shape(1);
  need(!bias || (bias->ndim() == 1 && bias->shape(0) == out), "bias must be [out]");
  need(y.ndim() == 2 && y.shape(0) == rows && y.shape(1) == out, "y must be [rows, out]");
  const SparseLinearParams<T> p{x.data(), rows, in, out, max_density};
  const T* wp = w_t.data();
  const T* bp = ptr(bias);
  T* yp = y.mutable_data();
  return run_released([&] {
    return sparse_linear_forward<T>(p, wp, bp, yp);
  });
}

// grad_b [out] (optional) = grad_y summed over rows; grad_w_t [in, out] (optional) = x^T @ grad_y
// on x's nonzeros. Returns the status as the forward (1: grad_w_t untouched, grad_b written).
template <typename T>
int py_sparse_linear_backward(const Array<T>& x, const Array<T>& grad_y, OptArray<T>& grad_w_t,
                              OptArray<T>& grad_b, double max_density) {
  need(x.ndim() == 2 && grad_y.ndim() == 2 && grad_y.shape(0) == x.shape(0), "x must be [rows, in], grad_y [rows, out]");
  const int64_t rows = x.shape(0), in = x.shape(1), out = grad_y.shape(1);
  need(!grad_w_t || (grad_w_t->ndim() == 2 && grad_w_t->shape(0) == in && grad_w_t->shape(1) == out),
       "grad_w_t must be [in, out]");
  need(!grad_b || (grad_b->ndim() == 1 && grad_b->shape(0) == out), "grad_b must be [out]");
  const SparseLinearParams<T> p{x.data(), rows, in, out, max_density};
  const T* gp = grad_y.data();
  T* gw = mut(grad_w_t);
  T* gb = mut(grad_b);
  return run_released([&] {
    return sparse_linear_backward<T>(p, gp, gw, gb);
  });
}

// One draw per row of logits [rows, cols] (or one row [cols]) into out [rows] (int64).
template <typename T>
void py_sample_categorical(const Array<T>& logits, Array<int64_t>& out, double temperature, int64_t top_k,
                           uint64_t seed, uint64_t offset) {
  need(logits.ndim() == 1 || logits.ndim() == 2, "logits must be 1-D or 2-D");
  const int64_t rows = rows_of(logits), cols = cols_of(logits);
  need(cols >= 1, "logits must have at least one column");
  need(out.size() == rows, "out must have one entry per row");
  need(temperature > 0.0, "temperature > 0");
  need(top_k >= 0 && top_k <= cols, "0 <= top_k <= cols");
  CategoricalParams<T> p{logits.data(), out.mutable_data(), rows, cols, cols, static_cast<T>(temperature), top_k,
                         {seed, offset}};
  run_released([&] {
    sample_categorical<T>(p);
  });
}

// z [rows, cols] = mu + exp(logvar / 2) * eps and kl [rows], for mu and logvar [rows, cols].
template <typename T>
int py_reparameterize_forward(const Array<T>& mu, const Array<T>& logvar, Array<T>& z, OptArray<T>& kl,
                              uint64_t seed, uint64_t offset, int64_t first_row) {
  need(mu.ndim() == 2 && logvar.ndim() == 2 && z.ndim() == 2, "mu, logvar, z must be 2-D");
  const int64_t rows = mu.shape(0), cols = mu.shape(1);
  need(logvar.shape(0) == rows && logvar.shape(1) == cols && z.shape(0) == rows && z.shape(1) == cols,
       "mu, logvar and z must have the same shape");
  need(!kl || kl->size() == rows, "kl must have one entry per row");
  need(first_row >= 0, "first_row must be >= 0");
  ReparamParams<T> p{mu.data(), logvar.data(), z.mutable_data(), mut(kl), rows, cols, cols, cols, {seed, offset},
                     first_row};
  return run_released([&] {
    return reparameterize_forward<T>(p);  // bit 0: mu, bit 1: logvar has a NaN or infinity
  });
}

template <typename T>
void py_reparameterize_backward(const OptArray<T>& grad_z, const OptArray<T>& grad_kl, const Array<T>& mu,
                                const Array<T>& logvar, Array<T>& grad_mu, Array<T>& grad_logvar, uint64_t seed,
                                uint64_t offset, int64_t first_row) {
  need(mu.ndim() == 2, "mu must be 2-D");
  const int64_t rows = mu.shape(0), cols = mu.shape(1), n = rows * cols;
  need(logvar.size() == n && grad_mu.size() == n && grad_logvar.size() == n && (!grad_z || grad_z->size() == n),
       "mu, logvar, grad_z, grad_mu, grad_logvar must have the same shape");
  need(!grad_kl || grad_kl->size() == rows, "grad_kl must have one entry per row");
  ReparamBackwardParams<T> p{ptr(grad_z), ptr(grad_kl), mu.data(), logvar.data(), grad_mu.mutable_data(),
                             grad_logvar.mutable_data(), rows, cols, {seed, offset}, first_row};
  run_released([&] {
    reparameterize_backward<T>(p);
  });
}

// Pooling kernels over [planes, H, W] arrays (shapes checked in fastgen/ops/pool.py).
template <typename T>
void py_max_pool2d(const Array<T>& in, Array<T>& out, Array<int64_t>& indices, std::array<int64_t, 6> window) {
  need(in.ndim() == 3 && out.ndim() == 3 && indices.size() == out.size() && out.shape(0) == in.shape(0),
       "max_pool2d: in [planes, H, W], out and indices [planes, out_h, out_w]");
  PoolGeometry g{in.shape(0), in.shape(1), in.shape(2), out.shape(1), out.shape(2),
                 window[0], window[1], window[2], window[3], window[4], window[5]};
  need(g.kernel_h >= 1 && g.kernel_w >= 1 && g.stride_h >= 1 && g.stride_w >= 1 && g.pad_h >= 0 && g.pad_w >= 0 &&
           2 * g.pad_h <= g.kernel_h && 2 * g.pad_w <= g.kernel_w &&
           g.out_h == (g.in_h + 2 * g.pad_h - g.kernel_h) / g.stride_h + 1 &&
           g.out_w == (g.in_w + 2 * g.pad_w - g.kernel_w) / g.stride_w + 1,
       "max_pool2d: window does not produce the output size");
  run_released([&] {
    max_pool2d_forward<T>(g, in.data(), out.mutable_data(), indices.mutable_data());
  });
}

template <typename T>
void py_scatter_planes(const Array<T>& src, const Array<int64_t>& indices, Array<T>& dst, bool accumulate) {
  need(src.ndim() >= 1 && dst.ndim() >= 1 && src.shape(0) == dst.shape(0) && indices.size() == src.size(),
       "scatter_planes: src and indices [planes, ...], dst [planes, ...]");
  const int64_t planes = src.shape(0);
  const int64_t src_plane = planes ? src.size() / planes : 0, dst_plane = planes ? dst.size() / planes : 0;
  const int64_t* idx = indices.data();
  for (int64_t i = 0; i < indices.size(); ++i) need(idx[i] >= 0 && idx[i] < dst_plane, "index outside the plane");
  run_released([&] {
    scatter_planes<T>(src.data(), idx, planes, src_plane, dst.mutable_data(), dst_plane, accumulate);
  });
}

template <typename T> void py_gather_planes(const Array<T>& src, const Array<int64_t>& indices, Array<T>& dst) {
  need(src.ndim() >= 1 && dst.ndim() >= 1 && src.shape(0) == dst.shape(0) && indices.size() == dst.size(),
       "gather_planes: src [planes, ...], indices and dst [planes, ...]");
  const int64_t planes = src.shape(0);
  const int64_t src_plane = planes ? src.size() / planes : 0, dst_plane = planes ? dst.size() / planes : 0;
  const int64_t* idx = indices.data();
  for (int64_t i = 0; i < indices.size(); ++i) need(idx[i] >= 0 && idx[i] < src_plane, "index outside the plane");
  run_released([&] {
    gather_planes<T>(src.data(), src_plane, idx, planes, dst_plane, dst.mutable_data());
  });
}

template <typename T> void py_avg_unpool2d(const Array<T>& in, Array<T>& out, int64_t kh, int64_t kw, bool backward) {
  // forward: in [planes, h, w] -> out [planes, h kh, w kw]; backward: in is the gradient of out.
  const Array<T>& small = backward ? out : in;
  const Array<T>& big = backward ? in : out;
  need(small.ndim() == 3 && big.ndim() == 3 && kh >= 1 && kw >= 1 && big.shape(0) == small.shape(0) &&
           big.shape(1) == small.shape(1) * kh && big.shape(2) == small.shape(2) * kw,
       "avg_unpool2d: shapes [planes, h, w] and [planes, h * kh, w * kw]");
  run_released([&] {
    if (backward) {
      avg_unpool2d_backward<T>(in.data(), out.shape(0), out.shape(1), out.shape(2), kh, kw, out.mutable_data());
    } else {
      avg_unpool2d_forward<T>(in.data(), in.shape(0), in.shape(1), in.shape(2), kh, kw, out.mutable_data());
    }
  });
}

// Transposed convolution pieces (shapes checked in fastgen/ops/conv.py). geometry: batch, in_c, in_h, in_w, out_c,
// out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w.
ConvTransposeGeometry conv_geometry(const std::array<int64_t, 13>& v) {
  ConvTransposeGeometry g{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  need(g.kernel_h >= 1 && g.kernel_w >= 1 && g.stride_h >= 1 && g.stride_w >= 1 && g.pad_h >= 0 && g.pad_w >= 0,
       "conv geometry");
  return g;
}

template <typename T>
void py_conv_transpose2d_output(const Array<T>& cols, const OptArray<T>& bias, Array<T>& out,
                                std::array<int64_t, 13> geometry, int activation, T slope) {
  const ConvTransposeGeometry g = conv_geometry(geometry);
  need(cols.size() == g.out_c * g.kernel_h * g.kernel_w * g.batch * g.in_h * g.in_w, "cols size");
  need(out.size() == g.batch * g.out_c * g.out_h * g.out_w, "out size");
  need(!bias || bias->size() == g.out_c, "bias size");
  need(activation >= 0 && activation <= 4, "activation code");
  ConvTransposeParams<T> p{g, cols.data(), ptr(bias), out.mutable_data(), activation, slope};
  run_released([&] {
    conv_transpose2d_output<T>(p);
  });
}

template <typename T>
int py_conv_transpose2d_forward(const Array<T>& x, const Array<T>& weight, const OptArray<T>& bias, Array<T>& out,
                                 std::array<int64_t, 13> geometry, int activation, T slope, bool parallel_chunks,
                                 int64_t chunk_elements) {
  const ConvTransposeGeometry g = conv_geometry(geometry);
  need(x.size() == g.batch * g.in_c * g.in_h * g.in_w, "x size");
  need(weight.size() == g.in_c * g.out_c * g.kernel_h * g.kernel_w, "weight size");
  need(out.size() == g.batch * g.out_c * g.out_h * g.out_w, "out size");
  need(!bias || bias->size() == g.out_c, "bias size");
  need(activation >= 0 && activation <= 4, "activation code");
  need(chunk_elements >= 0, "chunk_elements >= 0");
  ConvTransposeForwardParams<T> p{g, x.data(), weight.data(), ptr(bias), out.mutable_data(), activation, slope,
                                  parallel_chunks, chunk_elements};
  return run_released([&] {
    return conv_transpose2d_forward<T>(p);  // 1: x holds a NaN or infinity
  });
}

template <typename T> void py_conv_transpose2d_im2col(const Array<T>& grad, Array<T>& cols, std::array<int64_t, 13> geometry) {
  const ConvTransposeGeometry g = conv_geometry(geometry);
  need(cols.size() == g.out_c * g.kernel_h * g.kernel_w * g.batch * g.in_h * g.in_w, "cols size");
  need(grad.size() == g.batch * g.out_c * g.out_h * g.out_w, "grad size");
  run_released([&] {
    conv_transpose2d_im2col<T>(g, grad.data(), cols.mutable_data());
  });
}

template <typename T>
void py_conv_transpose2d_backward(const Array<T>& grad, const Array<T>& x, const Array<T>& weight,
                                  std::optional<Array<T>> grad_x, Array<T>& grad_weight,
                                  std::array<int64_t, 13> geometry, bool parallel_chunks, int64_t chunk_elements) {
  const ConvTransposeGeometry g = conv_geometry(geometry);
  need(x.size() == g.batch * g.in_c * g.in_h * g.in_w, "x size");
  need(weight.size() == g.in_c * g.out_c * g.kernel_h * g.kernel_w, "weight size");
  need(grad_weight.size() == weight.size(), "grad_weight size");
  need(!grad_x || grad_x->size() == x.size(), "grad_x size");
  need(grad.size() == g.batch * g.out_c * g.out_h * g.out_w, "grad size");
  need(chunk_elements >= 0, "chunk_elements >= 0");
  ConvTransposeBackwardParams<T> p{g, grad.data(), x.data(), weight.data(),
                                   grad_x ? grad_x->mutable_data() : nullptr, grad_weight.mutable_data(),
                                   parallel_chunks, chunk_elements};
  run_released([&] {
    conv_transpose2d_backward<T>(p);
  });
}

template <typename T>
void py_activation_backward(const Array<T>& grad_out, const Array<T>& y, Array<T>& grad_in, int activation, T slope) {
  need(grad_out.size() == y.size() && grad_in.size() == y.size(), "shapes must match");
  need(activation >= 0 && activation <= 4, "activation code");
  run_released([&] {
    activation_backward<T>(grad_out.data(), y.data(), y.size(), activation, slope, grad_in.mutable_data());
  });
}

// Whether every element of x is finite (the ops' NaN/inf check).
template <typename T> bool py_all_finite(const py::array_t<T, py::array::c_style>& x) {
  const T* p = x.data();
  const int64_t n = x.size();
  return run_released([&] {
    return all_finite<T>(p, n);
  });
}

// (finite, min, max) of x [rows, cols]; column_sums [cols] filled when given.
template <typename T>
py::tuple py_summarize_rows(const Array<T>& x, std::optional<Array<double>>& column_sums) {
  const int64_t rows = rows_of(x), cols = cols_of(x);
  need(!column_sums || column_sums->size() == cols, "column_sums must have one entry per column");
  double* sums = column_sums ? column_sums->mutable_data() : nullptr;
  DataSummary<T> s;
  {
    run_released([&] {
      s = summarize_rows<T>(x.data(), rows, cols, cols, sums);
    });
  }
  return py::make_tuple(s.finite, s.min, s.max);
}

void* capsule_pointer(const py::capsule& c) {
  void* p = PyCapsule_GetPointer(c.ptr(), PyCapsule_GetName(c.ptr()));
  if (p == nullptr) throw py::error_already_set();
  return p;
}

template <typename T> void bind_dtype(py::module_& m) {
  const auto nc = [](const char* name) { return py::arg(name).noconvert(); };
  const auto opt = [](const char* name) { return py::arg(name).noconvert().none(true); };
  m.def("fill_uniform", &py_fill_uniform<T>, nc("out"), py::arg("seed"), py::arg("offset"));
  m.def("fill_normal", &py_fill_normal<T>, nc("out"), py::arg("seed"), py::arg("offset"));
  m.def("sample_bernoulli", &py_sample_bernoulli<T>, nc("input"), opt("bias"), opt("probs"), opt("states"),
        py::arg("from_logits"), py::arg("seed"), py::arg("offset"), py::arg("first_row") = 0);
  m.def("sample_gaussian", &py_sample_gaussian<T>, nc("mean"), opt("bias"), opt("stddev"), py::arg("stddev_scalar"),
        nc("out"), py::arg("seed"), py::arg("offset"), py::arg("first_row") = 0);
  m.def("rbm_gibbs", &py_gibbs<T>, nc("weights"), nc("visible_bias"), nc("hidden_bias"), nc("visible_in"),
        nc("visible_out"), opt("hidden_probs_out"), opt("clamp"), py::arg("steps"), py::arg("seed"),
        py::arg("offset"), py::arg("binary_products") = true);
  m.def("rbm_train_batches", &py_rbm_train_batches<T>, nc("weights"), nc("visible_bias"), nc("hidden_bias"),
        opt("weights_velocity"), opt("visible_bias_velocity"), opt("hidden_bias_velocity"),
        opt("persistent_chains"), nc("data"), py::arg("batch_size"), py::arg("cd_k"), py::arg("learning_rate"),
        py::arg("momentum"), py::arg("weight_decay"), py::arg("seed"), py::arg("offset"),
        py::arg("binary_products") = true, py::arg("hidden_slices") = true);
  m.def("rbm_batch_statistics", &py_rbm_batch_statistics<T>, nc("weights"), nc("visible_bias"), nc("hidden_bias"),
        nc("data"), opt("chains"), py::arg("persistent"), nc("grad_weights"), nc("grad_visible_bias"), nc("grad_hidden_bias"),
        py::arg("cd_k"), py::arg("data_scale"), py::arg("chains_scale"), py::arg("seed"), py::arg("offset"),
        py::arg("first_row"), py::arg("first_chain"), py::arg("binary_products"), py::arg("model_term"));
  m.def("rbm_ais", &py_rbm_ais<T>, nc("weights"), nc("visible_bias"), nc("hidden_bias"), nc("base_visible_bias"),
        nc("betas"), nc("log_weights"), opt("visible_out"), py::arg("seed"), py::arg("offset"),
        py::arg("binary_products"), py::arg("first_chain") = 0);
  m.def("rbm_raise", &py_rbm_raise<T>, nc("weights"), nc("visible_bias"), nc("hidden_bias"), nc("base_visible_bias"),
        nc("betas"), nc("data"), nc("log_weights"), py::arg("seed"), py::arg("offset"), py::arg("binary_products"),
        py::arg("first_chain") = 0);
  m.def("rbm_pseudo_likelihood", &py_rbm_pseudo_likelihood<T>, nc("weights"), nc("visible_bias"),
        nc("hidden_bias"), nc("visible"), nc("hidden_preact"), nc("out"));
  m.def("sgd_momentum_update", &py_sgd_momentum_update<T>, nc("param"), opt("velocity"), nc("grad"),
        py::arg("learning_rate"), py::arg("momentum"), py::arg("weight_decay"));
  m.def("binary_rows", &py_binary_rows<T>, nc("x"));
  m.def("binary_matmul", &py_binary_matmul<T>, nc("indices"), nc("counts"), nc("M"), opt("bias"), nc("out"),
        py::arg("masks").noconvert() = py::none());
  m.def("sample_bernoulli_rows", &py_sample_bernoulli_rows<T>, nc("input"), opt("bias"), nc("states"),
        py::arg("from_logits"), py::arg("seed"), py::arg("offset"));
  m.def("sample_categorical", &py_sample_categorical<T>, nc("logits"), nc("out"), py::arg("temperature"),
        py::arg("top_k"), py::arg("seed"), py::arg("offset"));
  m.def("reparameterize_forward", &py_reparameterize_forward<T>, nc("mu"), nc("logvar"), nc("z"), opt("kl"),
        py::arg("seed"), py::arg("offset"), py::arg("first_row") = 0);
  m.def("reparameterize_backward", &py_reparameterize_backward<T>, opt("grad_z"), opt("grad_kl"), nc("mu"),
        nc("logvar"), nc("grad_mu"), nc("grad_logvar"), py::arg("seed"), py::arg("offset"), py::arg("first_row") = 0);
  m.def("max_pool2d", &py_max_pool2d<T>, nc("input"), nc("out"), nc("indices"), py::arg("window"));
  m.def("scatter_planes", &py_scatter_planes<T>, nc("src"), nc("indices"), nc("dst"), py::arg("accumulate"));
  m.def("gather_planes", &py_gather_planes<T>, nc("src"), nc("indices"), nc("dst"));
  m.def("avg_unpool2d", &py_avg_unpool2d<T>, nc("input"), nc("out"), py::arg("kernel_h"), py::arg("kernel_w"),
        py::arg("backward"));
  m.def("conv_transpose2d_output", &py_conv_transpose2d_output<T>, nc("cols"), opt("bias"), nc("out"),
        py::arg("geometry"), py::arg("activation"), py::arg("slope"));
  m.def("conv_transpose2d_forward", &py_conv_transpose2d_forward<T>, nc("x"), nc("weight"), opt("bias"), nc("out"),
        py::arg("geometry"), py::arg("activation"), py::arg("slope"), py::arg("parallel_chunks"),
        py::arg("chunk_elements") = 0);
  m.def("conv_transpose2d_im2col", &py_conv_transpose2d_im2col<T>, nc("grad"), nc("cols"), py::arg("geometry"));
  m.def("conv_transpose2d_backward", &py_conv_transpose2d_backward<T>, nc("grad"), nc("x"), nc("weight"),
        opt("grad_x"), nc("grad_weight"), py::arg("geometry"), py::arg("parallel_chunks"),
        py::arg("chunk_elements") = 0);
  m.def("activation_backward", &py_activation_backward<T>, nc("grad_out"), nc("y"), nc("grad_in"),
        py::arg("activation"), py::arg("slope"));
  m.def("all_finite", &py_all_finite<T>, nc("x"));
  m.def("summarize_rows", &py_summarize_rows<T>, nc("x"), py::arg("column_sums").noconvert().none(true));
  m.def("binary_transposed_matmul", &py_binary_transposed_matmul<T>, nc("indices"), nc("counts"), py::arg("K"),
        nc("M"), nc("out"));
  m.def("sparse_linear_forward", &py_sparse_linear_forward<T>, nc("x"), nc("w_t"), opt("bias"), nc("y"),
        py::arg("max_density"));
  m.def("sparse_linear_backward", &py_sparse_linear_backward<T>, nc("x"), nc("grad_y"), opt("grad_w_t"),
        opt("grad_b"), py::arg("max_density"));
}

}  // namespace

void bind_elbo(py::module_& m);   // csrc/elbo.cpp
void bind_numba(py::module_& m);  // csrc/numba.cpp

PYBIND11_MODULE(_C, m) {
  m.doc() = "fastgen CPU kernels (private: call fastgen.ops, which validates its input)";
  m.def("set_blas", [](const py::capsule& s, const py::capsule& d) { set_blas(capsule_pointer(s), capsule_pointer(d)); },
        py::arg("sgemm"), py::arg("dgemm"));
  m.def("blas_ready", &blas_ready);
  m.def("blas_jobs_callback_address", &blas_jobs_callback_address);
  m.def("blas_jobs_stats", []() {
    const BlasJobStats s = blas_jobs_stats();
    py::dict d;
    d["calls"] = s.calls;
    d["calls_on_own_threads"] = s.calls_on_own_threads;
    return d;
  });
  m.def("blas_jobs_meet", [](int jobs, bool inside_parallel_region) {
    py::gil_scoped_release release;
    return blas_jobs_meet(jobs, inside_parallel_region);
  }, py::arg("jobs"), py::arg("inside_parallel_region"));
  m.def("philox4x32_10", [](std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key) {
    fastgen::Philox4 c{{ctr[0], ctr[1], ctr[2], ctr[3]}};
    const fastgen::Philox4 r = fastgen::philox4x32_10(c, key[0], key[1]);
    return std::array<uint32_t, 4>{r.v[0], r.v[1], r.v[2], r.v[3]};
  }, py::arg("counter"), py::arg("key"));
  m.def("set_binary_max_density", &set_binary_max_density, py::arg("density"));
  m.def("binary_max_density", &binary_max_density);
  m.def("set_binary_tables", &set_binary_tables, py::arg("enabled"));
  m.def("binary_table_bits", &binary_table_bits, py::arg("rows"), py::arg("K"), py::arg("nnz"));
  m.def("cached_buffer_bytes", &cached_buffer_bytes);
  m.def("buffer_cache_enabled", &buffer_cache_enabled);
  m.def("release_cached_buffers", &release_cached_buffers);
  m.attr("sliced_max_rows") = kSlicedMaxRows;
  m.def("sliced_team_for_region", &sliced_team_for_region, py::arg("full_team"), py::arg("shape"));
  m.def("sliced_team_record", &sliced_team_record, py::arg("team"), py::arg("full_team"), py::arg("wait_fraction"),
        py::arg("ns_per_batch"));
  m.def("sliced_team_stats", []() {
    const SlicedTeamStats s = sliced_team_stats();
    py::dict d;
    d["regions"] = s.regions;
    d["reduced_regions"] = s.reduced_regions;
    d["refusals"] = s.refusals;
    d["reduced_left"] = s.reduced_left;
    d["backoff"] = s.backoff;
    d["last_wait_fraction"] = s.last_wait_fraction;
    d["max_wait_fraction"] = s.max_wait_fraction;
    d["one_thread_ns_per_batch"] = s.one_thread_ns_per_batch;
    return d;
  });
  m.def("sliced_team_reset", &sliced_team_reset);
  m.def("set_sliced_adaptive", &set_sliced_adaptive, py::arg("enabled"));
  m.def("sliced_adaptive", &sliced_adaptive);
  m.def("fill_bits", &py_fill_bits, py::arg("out").noconvert(), py::arg("seed"), py::arg("offset"));
  bind_dtype<float>(m);
  bind_dtype<double>(m);
  bind_elbo(m);
  bind_numba(m);
  m.def("max_threads", []() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  });
}
