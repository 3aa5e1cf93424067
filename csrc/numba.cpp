// C entry points of the stream and formula headers, for code compiled by numba (fastgen.numba
// binds each address to a symbol name that numba's linker resolves). Scalars in, scalar out, no
// checks: the caller's loop owns its indices. Each is one inlined call of a shared header
// function, so numba-side draws are the array kernels' draws.
#include <cstdint>

#include <pybind11/pybind11.h>

#include "fastgen/math.h"
#include "fastgen/stream_at.h"

namespace py = pybind11;

extern "C" {

// [index] -> word, uniform on [0, 1), standard normal
uint32_t fastgen_bits(uint64_t seed, uint64_t offset, uint64_t index) { return fastgen::bits_at(seed, offset, index); }
float fastgen_uniform_float32(uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::uniform_at<float>(seed, offset, index);
}
double fastgen_uniform_float64(uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::uniform_at<double>(seed, offset, index);
}
float fastgen_normal_float32(uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::normal_at<float>(seed, offset, index);
}
double fastgen_normal_float64(uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::normal_at<double>(seed, offset, index);
}

// The stable formulas of math.h
float fastgen_sigmoid_float32(float x) { return fastgen::sigmoid(x); }
double fastgen_sigmoid_float64(double x) { return fastgen::sigmoid(x); }
float fastgen_softplus_float32(float x) { return fastgen::softplus(x); }
double fastgen_softplus_float64(double x) { return fastgen::softplus(x); }
float fastgen_log_sigmoid_float32(float x) { return fastgen::log_sigmoid(x); }
double fastgen_log_sigmoid_float64(double x) { return fastgen::log_sigmoid(x); }
float fastgen_log_add_exp_float32(float a, float b) { return fastgen::log_add_exp(a, b); }
double fastgen_log_add_exp_float64(double a, double b) { return fastgen::log_add_exp(a, b); }

// The samplers of fastgen.ops, one element at a time
float fastgen_bernoulli_float32(float p, uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::bernoulli_at(p, seed, offset, index);
}
double fastgen_bernoulli_float64(double p, uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::bernoulli_at(p, seed, offset, index);
}
float fastgen_bernoulli_logit_float32(float x, uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::bernoulli_logit_at(x, seed, offset, index);
}
double fastgen_bernoulli_logit_float64(double x, uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::bernoulli_logit_at(x, seed, offset, index);
}
float fastgen_gaussian_float32(float mean, float stddev, uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::gaussian_at(mean, stddev, seed, offset, index);
}
double fastgen_gaussian_float64(double mean, double stddev, uint64_t seed, uint64_t offset, uint64_t index) {
  return fastgen::gaussian_at(mean, stddev, seed, offset, index);
}
// logits: [cols], row `row` of a [rows, cols] array
int64_t fastgen_categorical_float32(const float* logits, int64_t cols, float temperature, uint64_t seed,
                                    uint64_t offset, uint64_t row) {
  return fastgen::categorical_at(logits, cols, temperature, seed, offset, row);
}
int64_t fastgen_categorical_float64(const double* logits, int64_t cols, double temperature, uint64_t seed,
                                    uint64_t offset, uint64_t row) {
  return fastgen::categorical_at(logits, cols, temperature, seed, offset, row);
}

}  // extern "C"

namespace {
template <typename Fn> void add(py::dict& d, const char* name, Fn* fn) {
  d[name] = reinterpret_cast<std::uintptr_t>(fn);
}
}  // namespace

// name -> address of every entry point above.
void bind_numba(py::module_& m) {
  m.def("numba_entry_points", []() {
    py::dict d;
    add(d, "fastgen_bits", &fastgen_bits);
    add(d, "fastgen_uniform_float32", &fastgen_uniform_float32);
    add(d, "fastgen_uniform_float64", &fastgen_uniform_float64);
    add(d, "fastgen_normal_float32", &fastgen_normal_float32);
    add(d, "fastgen_normal_float64", &fastgen_normal_float64);
    add(d, "fastgen_sigmoid_float32", &fastgen_sigmoid_float32);
    add(d, "fastgen_sigmoid_float64", &fastgen_sigmoid_float64);
    add(d, "fastgen_softplus_float32", &fastgen_softplus_float32);
    add(d, "fastgen_softplus_float64", &fastgen_softplus_float64);
    add(d, "fastgen_log_sigmoid_float32", &fastgen_log_sigmoid_float32);
    add(d, "fastgen_log_sigmoid_float64", &fastgen_log_sigmoid_float64);
    add(d, "fastgen_log_add_exp_float32", &fastgen_log_add_exp_float32);
    add(d, "fastgen_log_add_exp_float64", &fastgen_log_add_exp_float64);
    add(d, "fastgen_bernoulli_float32", &fastgen_bernoulli_float32);
    add(d, "fastgen_bernoulli_float64", &fastgen_bernoulli_float64);
    add(d, "fastgen_bernoulli_logit_float32", &fastgen_bernoulli_logit_float32);
    add(d, "fastgen_bernoulli_logit_float64", &fastgen_bernoulli_logit_float64);
    add(d, "fastgen_gaussian_float32", &fastgen_gaussian_float32);
    add(d, "fastgen_gaussian_float64", &fastgen_gaussian_float64);
    add(d, "fastgen_categorical_float32", &fastgen_categorical_float32);
    add(d, "fastgen_categorical_float64", &fastgen_categorical_float64);
    return d;
  });
}
