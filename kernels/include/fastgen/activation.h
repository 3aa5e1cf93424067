// The activations fused into fastgen's output passes (transposed convolution), and their
// derivatives written in terms of the output y = act(x), so the backward needs only y.
#pragma once
#include "math.h"

namespace fastgen {

enum class Activation : int { kNone = 0, kRelu = 1, kLeakyRelu = 2, kTanh = 3, kSigmoid = 4 };

// tanh(x) = 2 sigmoid(2x) - 1, through the stable sigmoid.
template <typename T> FG_HD T fg_tanh(T x) { return T(2) * sigmoid(T(2) * x) - T(1); }

template <typename T> FG_HD T activate(Activation a, T x, T slope) {
  switch (a) {
    case Activation::kRelu: return x > T(0) || x != x ? x : T(0);  // NaN stays NaN, as torch.relu
    case Activation::kLeakyRelu: return x > T(0) ? x : slope * x;
    case Activation::kTanh: return fg_tanh(x);
    case Activation::kSigmoid: return sigmoid(x);
    default: return x;
  }
}

// d act / dx at the input that gave output y.
template <typename T> FG_HD T activation_derivative_from_output(Activation a, T y, T slope) {
  switch (a) {
    case Activation::kRelu: return y > T(0) ? T(1) : T(0);
    case Activation::kLeakyRelu: return y > T(0) ? T(1) : slope;
    case Activation::kTanh: return T(1) - y * y;
    case Activation::kSigmoid: return y * (T(1) - y);
    default: return T(1);
  }
}

}  // namespace fastgen
