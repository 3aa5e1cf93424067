// The ELBO's reconstruction terms as fused per-sample reductions, and their backward passes.
// Formulas: kernels/include/fastgen/elbo.h. One pass over the decoder output replaces the
// sigmoid / log / multiply / sum chain (forward) and the sigmoid / subtract / scale chain
// (backward) that eager frameworks run as separate kernels.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <vector>

#include "fastgen.h"
#include "fastgen/elbo.h"
#include "philox_cpu.h"
#include "release_gil.h"

namespace fastgen {
namespace cpu {

template <typename T> void bernoulli_log_likelihood(const BernoulliLikelihoodParams<T>& p, T* out) {
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = p.x + r * cols;
    const T* l = p.logits + r * cols;
    // double accumulation for float rows: a 784-term sum in float loses ~3 digits otherwise
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) sum += double(bernoulli_log_prob(x[c], l[c]));
    out[r] = T(sum);
  }
}

template <typename T>
void bernoulli_log_likelihood_with_grad(const BernoulliLikelihoodParams<T>& p, T* out, T* grad_logits) {
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = p.x + r * cols;
    const T* l = p.logits + r * cols;
    T* dl = grad_logits + r * cols;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < cols; ++c) {
      sum += double(bernoulli_log_prob(x[c], l[c]));
      dl[c] = bernoulli_log_prob_grad_logit(x[c], l[c]);
    }
    out[r] = T(sum);
  }
}

template <typename T>
void bernoulli_log_likelihood_backward(const BernoulliLikelihoodParams<T>& p, const T* g, T* grad_logits,
                                       T* grad_x) {
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = p.x + r * cols;
    const T* l = p.logits + r * cols;
    const T gr = g[r];
    T* dl = grad_logits + r * cols;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) dl[c] = gr * bernoulli_log_prob_grad_logit(x[c], l[c]);
    if (grad_x != nullptr) {
      T* dx = grad_x + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) dx[c] = gr * l[c];
    }
  }
}

namespace {
template <typename T> const T* logvar_row(const GaussianLikelihoodParams<T>& p, int64_t r) {
  return p.logvar_mode == 2 ? p.logvar + r * p.cols : p.logvar;
}
}  // namespace

template <typename T> void gaussian_log_likelihood(const GaussianLikelihoodParams<T>& p, T* out) {
  const int64_t cols = p.cols;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = p.x + r * cols;
    const T* m = p.mean + r * cols;
    double sum = 0.0;
    if (p.logvar_mode == 0) {
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < cols; ++c) sum += double(gaussian_log_prob(x[c], m[c], T(0), T(1)));
    } else {
      const T* v = logvar_row(p, r);
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < cols; ++c) sum += double(gaussian_log_prob(x[c], m[c], v[c], fg_exp(-v[c])));
    }
    out[r] = T(sum);
  }
}

template <typename T>
void gaussian_log_likelihood_backward(const GaussianLikelihoodParams<T>& p, const T* g, T* grad_mean,
                                      T* grad_logvar, T* grad_x) {
  const int64_t cols = p.cols;
  // A per-feature log-variance's gradient sums over rows: those rows run serially in this pass
  // (their sum must not depend on the thread count), the element-wise part in parallel.
  const bool shared_logvar = p.logvar_mode == 1;
#pragma omp parallel for schedule(static) if (p.rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < p.rows; ++r) {
    const T* x = p.x + r * cols;
    const T* m = p.mean + r * cols;
    const T* v = p.logvar_mode == 0 ? nullptr : logvar_row(p, r);
    const T gr = g[r];
    T* dm = grad_mean + r * cols;
    T* dv = (grad_logvar != nullptr && p.logvar_mode == 2) ? grad_logvar + r * cols : nullptr;
    T* dx = grad_x != nullptr ? grad_x + r * cols : nullptr;
#pragma omp simd
    for (int64_t c = 0; c < cols; ++c) {
      const T precision = v != nullptr ? fg_exp(-v[c]) : T(1);
      const T d = gr * gaussian_log_prob_grad_mean(x[c], m[c], precision);
      dm[c] = d;
      if (dx != nullptr) dx[c] = -d;
      if (dv != nullptr) dv[c] = gr * gaussian_log_prob_grad_logvar(x[c], m[c], precision);
    }
  }
  if (shared_logvar && grad_logvar != nullptr) {
    std::vector<double> acc(cols, 0.0);
    for (int64_t r = 0; r < p.rows; ++r) {
      const T* x = p.x + r * cols;
      const T* m = p.mean + r * cols;
      const T gr = g[r];
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c)
        acc[c] += double(gr * gaussian_log_prob_grad_logvar(x[c], m[c], fg_exp(-p.logvar[c])));
    }
    for (int64_t c = 0; c < cols; ++c) grad_logvar[c] = T(acc[c]);
  }
}

#define FASTGEN_ELBO(T)                                                                                      \
  template void bernoulli_log_likelihood<T>(const BernoulliLikelihoodParams<T>&, T*);                         \
  template void bernoulli_log_likelihood_with_grad<T>(const BernoulliLikelihoodParams<T>&, T*, T*);           \
  template void bernoulli_log_likelihood_backward<T>(const BernoulliLikelihoodParams<T>&, const T*, T*, T*); \
  template void gaussian_log_likelihood<T>(const GaussianLikelihoodParams<T>&, T*);                           \
  template void gaussian_log_likelihood_backward<T>(const GaussianLikelihoodParams<T>&, const T*, T*, T*, T*);
FASTGEN_ELBO(float)
FASTGEN_ELBO(double)
#undef FASTGEN_ELBO

}  // namespace cpu
}  // namespace fastgen

// ---- Python bindings: shapes and dtypes are checked by fastgen/ops/elbo.py; the asserts here
// guard the pointers only.
namespace py = pybind11;
namespace {
using fastgen::cpu::run_released;
template <typename T> using Array = py::array_t<T, py::array::c_style>;
template <typename T> using OptArray = std::optional<Array<T>>;

void require(bool ok, const char* what) {
  if (!ok) throw std::invalid_argument(what);
}

template <typename T>
fastgen::cpu::BernoulliLikelihoodParams<T> bernoulli_params(const Array<T>& x, const Array<T>& logits) {
  require(x.ndim() == 2 && logits.ndim() == 2 && x.shape(0) == logits.shape(0) && x.shape(1) == logits.shape(1),
          "x and logits must be 2-D of one shape");
  return {x.data(), logits.data(), x.shape(0), x.shape(1)};
}

template <typename T>
fastgen::cpu::GaussianLikelihoodParams<T> gaussian_params(const Array<T>& x, const Array<T>& mean,
                                                         const OptArray<T>& logvar) {
  require(x.ndim() == 2 && mean.ndim() == 2 && x.shape(0) == mean.shape(0) && x.shape(1) == mean.shape(1),
          "x and mean must be 2-D of one shape");
  int mode = 0;
  if (logvar) {
    if (logvar->ndim() == 2) {
      require(logvar->shape(0) == x.shape(0) && logvar->shape(1) == x.shape(1), "logvar must be [rows, cols]");
      mode = 2;
    } else {
      require(logvar->ndim() == 1 && logvar->shape(0) == x.shape(1), "logvar must be [cols]");
      mode = 1;
    }
  }
  return {x.data(), mean.data(), logvar ? logvar->data() : nullptr, mode, x.shape(0), x.shape(1)};
}

template <typename T> void py_bernoulli(const Array<T>& x, const Array<T>& logits, Array<T>& out) {
  auto p = bernoulli_params(x, logits);
  require(out.ndim() == 1 && out.shape(0) == p.rows, "out must be [rows]");
  T* o = out.mutable_data();
  run_released([&] {
    fastgen::cpu::bernoulli_log_likelihood(p, o);
  });
}

template <typename T>
void py_bernoulli_with_grad(const Array<T>& x, const Array<T>& logits, Array<T>& out, Array<T>& grad_logits) {
  auto p = bernoulli_params(x, logits);
  require(out.ndim() == 1 && out.shape(0) == p.rows, "out must be [rows]");
  require(grad_logits.size() == p.rows * p.cols, "grad_logits must be [rows, cols]");
  T* o = out.mutable_data();
  T* dl = grad_logits.mutable_data();
  run_released([&] {
    fastgen::cpu::bernoulli_log_likelihood_with_grad(p, o, dl);
  });
}

template <typename T>
void py_bernoulli_backward(const Array<T>& x, const Array<T>& logits, const Array<T>& g, Array<T>& grad_logits,
                           OptArray<T>& grad_x) {
  auto p = bernoulli_params(x, logits);
  require(g.ndim() == 1 && g.shape(0) == p.rows, "grad must be [rows]");
  require(grad_logits.size() == p.rows * p.cols, "grad_logits must be [rows, cols]");
  require(!grad_x || grad_x->size() == p.rows * p.cols, "grad_x must be [rows, cols]");
  T* dl = grad_logits.mutable_data();
  T* dx = grad_x ? grad_x->mutable_data() : nullptr;
  run_released([&] {
    fastgen::cpu::bernoulli_log_likelihood_backward(p, g.data(), dl, dx);
  });
}

template <typename T>
void py_gaussian(const Array<T>& x, const Array<T>& mean, const OptArray<T>& logvar, Array<T>& out) {
  auto p = gaussian_params(x, mean, logvar);
  require(out.ndim() == 1 && out.shape(0) == p.rows, "out must be [rows]");
  T* o = out.mutable_data();
  run_released([&] {
    fastgen::cpu::gaussian_log_likelihood(p, o);
  });
}

template <typename T>
void py_gaussian_backward(const Array<T>& x, const Array<T>& mean, const OptArray<T>& logvar, const Array<T>& g,
                          Array<T>& grad_mean, OptArray<T>& grad_logvar, OptArray<T>& grad_x) {
  auto p = gaussian_params(x, mean, logvar);
  require(g.ndim() == 1 && g.shape(0) == p.rows, "grad must be [rows]");
  require(grad_mean.size() == p.rows * p.cols, "grad_mean must be [rows, cols]");
  require(!grad_logvar || (logvar && grad_logvar->size() == logvar->size()), "grad_logvar must be logvar's shape");
  require(!grad_x || grad_x->size() == p.rows * p.cols, "grad_x must be [rows, cols]");
  T* dm = grad_mean.mutable_data();
  T* dv = grad_logvar ? grad_logvar->mutable_data() : nullptr;
  T* dx = grad_x ? grad_x->mutable_data() : nullptr;
  run_released([&] {
    fastgen::cpu::gaussian_log_likelihood_backward(p, g.data(), dm, dv, dx);
  });
}

template <typename T> void bind(py::module_& m) {
  const auto nc = [](const char* name) { return py::arg(name).noconvert(); };
  const auto opt = [](const char* name) { return py::arg(name).noconvert().none(true); };
  m.def("bernoulli_log_likelihood", &py_bernoulli<T>, nc("x"), nc("logits"), nc("out"));
  m.def("bernoulli_log_likelihood_with_grad", &py_bernoulli_with_grad<T>, nc("x"), nc("logits"), nc("out"),
        nc("grad_logits"));
  m.def("bernoulli_log_likelihood_backward", &py_bernoulli_backward<T>, nc("x"), nc("logits"), nc("grad"),
        nc("grad_logits"), opt("grad_x"));
  m.def("gaussian_log_likelihood", &py_gaussian<T>, nc("x"), nc("mean"), opt("logvar"), nc("out"));
  m.def("gaussian_log_likelihood_backward", &py_gaussian_backward<T>, nc("x"), nc("mean"), opt("logvar"),
        nc("grad"), nc("grad_mean"), opt("grad_logvar"), opt("grad_x"));
}
}  // namespace

void bind_elbo(py::module_& m) {
  bind<float>(m);
  bind<double>(m);
}
