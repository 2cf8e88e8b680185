// RoPE on CPU tensors in one pass, for implementations/torch_cpp.py.
//
// rope(x, positions, inv_freq, scale, interleaved, inverse) -> out
//   x:         [tokens, heads, head_dim], contiguous, float64 / float32 / float16 / bfloat16;
//   positions: [tokens, 1] (one position for every pair) or [tokens, r/2] (one per pair, for
//              multi-axis specs), contiguous, in x's compute type (float64 for float64 x,
//              float32 otherwise);
//   inv_freq:  [r/2], contiguous, in the compute type; scale: the attention factor;
//   inverse:   rotate by -phi (the transpose: the backward of the forward rotation);
//   stream_stores: -1 non-temporal stores when x and out exceed the last-level cache, 0 never,
//              1 always (the result is the same bits either way);
//   out:       a new tensor like x. With phi_i = position * inv_freq_i, c = scale cos phi_i and
//              s = scale sin phi_i (+-), pair i of every head, (x[i], x[i + r/2]) ("half") or
//              (x[2i], x[2i + 1]) ("interleaved"), goes to (a c - b s, b c + a s), computed in
//              the compute type and rounded once to x's dtype; channels r.. are copied.
//
// Each thread takes a range of tokens; for each token it computes the r/2 angles and their
// cos/sin into a small buffer (SLEEF's sincos with a 3.5-ulp bound, the routine behind
// ATen's vectorised float sin and cos that torch.compile's CPU kernels call, where the build
// targets AVX2 or AVX-512; the C library's otherwise), then rotates every head of
// that token. The bytes that reach memory are x and out, as in a copy, and the sin/cos work
// overlaps the memory stream instead of being a pass of its own. Where x and out exceed the
// last-level cache, out is written with non-temporal stores (see write_row). Built with
// -ffp-contract=off: every product and sum is rounded, as in PyTorch's eager kernels.
#include <torch/extension.h>

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#include <sleef.h>
#endif

namespace {

// When x and out together are larger than the last-level cache, out goes to memory with
// non-temporal stores: written around the cache, without the read-for-ownership a normal
// store costs (a third stream of bytes), and without evicting what the next layer is about
// to read. When they fit, out stays in the cache for its consumer.
int64_t last_level_cache_bytes() {
  static const int64_t bytes = [] {
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0) return static_cast<int64_t>(l3);
#endif
    return static_cast<int64_t>(32) << 20;
  }();
  return bytes;
}

#if defined(__AVX512F__)
constexpr int64_t kStreamBytes = 64;
inline void stream_chunk(void* to, const void* from) {
  _mm512_stream_si512(static_cast<__m512i*>(to), _mm512_loadu_si512(from));
}
#elif defined(__AVX2__)
constexpr int64_t kStreamBytes = 32;
inline void stream_chunk(void* to, const void* from) {
  _mm256_stream_si256(static_cast<__m256i*>(to), _mm256_loadu_si256(static_cast<const __m256i*>(from)));
}
#else
constexpr int64_t kStreamBytes = 0;  // no streaming stores: copy
inline void stream_chunk(void*, const void*) {}
#endif

// Copy ``bytes`` from ``from`` (a row in this thread's cache) to ``to`` in memory, streaming
// where ``to`` and ``bytes`` allow it.
inline void write_row(void* to, const void* from, int64_t bytes) {
  if (kStreamBytes == 0 || reinterpret_cast<std::uintptr_t>(to) % kStreamBytes != 0 || bytes % kStreamBytes != 0) {
    std::memcpy(to, from, bytes);
    return;
  }
  for (int64_t k = 0; k < bytes; k += kStreamBytes) {
    stream_chunk(static_cast<char*>(to) + k, static_cast<const char*>(from) + k);
  }
}

inline void stream_fence() {
#if defined(__AVX512F__) || defined(__AVX2__)
  _mm_sfence();
#endif
}

// c[i] = cos(phi[i]), s[i] = sin(phi[i]) for i < n (the C library's; SLEEF's for float below).
template <typename acc_t>
void unscaled_cos_sin(const acc_t* phi, int64_t n, acc_t* c, acc_t* s) {
  for (int64_t i = 0; i < n; ++i) {
    c[i] = std::cos(phi[i]);
    s[i] = std::sin(phi[i]);
  }
}

#if defined(__AVX512F__) || defined(__AVX2__)
#if defined(__AVX512F__)
constexpr int64_t kLanes = 16;
using vfloat = __m512;
inline vfloat load(const float* p) { return _mm512_loadu_ps(p); }
inline void store(float* p, vfloat v) { _mm512_storeu_ps(p, v); }
inline Sleef___m512_2 vsincos(vfloat v) { return Sleef_sincosf16_u35(v); }
#else
constexpr int64_t kLanes = 8;
using vfloat = __m256;
inline vfloat load(const float* p) { return _mm256_loadu_ps(p); }
inline void store(float* p, vfloat v) { _mm256_storeu_ps(p, v); }
inline Sleef___m256_2 vsincos(vfloat v) { return Sleef_sincosf8_u35(v); }
#endif

template <>
void unscaled_cos_sin<float>(const float* phi, int64_t n, float* c, float* s) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const auto both = vsincos(load(phi + i));
    store(s + i, both.x);
    store(c + i, both.y);
  }
  if (i < n) {  // the last partial vector through a zero-padded one: the same routine per lane
    alignas(64) float p[kLanes] = {}, cv[kLanes], sv[kLanes];
    for (int64_t j = i; j < n; ++j) p[j - i] = phi[j];
    const auto both = vsincos(load(p));
    store(sv, both.x);
    store(cv, both.y);
    for (int64_t j = i; j < n; ++j) c[j] = cv[j - i], s[j] = sv[j - i];
  }
}
#endif

// c[i] = scale * cos(phi[i]), s[i] = +-scale * sin(phi[i]) for i < n.
template <typename acc_t>
void cos_sin(const acc_t* phi, acc_t scale, bool inverse, int64_t n, acc_t* c, acc_t* s) {
  unscaled_cos_sin<acc_t>(phi, n, c, s);
  for (int64_t i = 0; i < n; ++i) {
    c[i] = scale * c[i];
    s[i] = inverse ? -(scale * s[i]) : scale * s[i];
  }
}

template <typename scalar_t, typename acc_t>
void rope_tokens(const scalar_t* x, const acc_t* positions, int64_t position_stride, const acc_t* inv_freq,
                 acc_t scale, bool inverse, scalar_t* out, int64_t begin, int64_t end, int64_t heads,
                 int64_t head_dim, int64_t n, bool interleaved, bool stream) {
  std::vector<acc_t> buffer(3 * n);
  acc_t* phi = buffer.data();
  acc_t* c = phi + n;
  acc_t* s = c + n;
  std::vector<scalar_t> row(stream ? head_dim : 0);  // one head's output, in L1, then streamed out
  for (int64_t t = begin; t < end; ++t) {
    const acc_t* p = positions + t * (position_stride == 0 ? 1 : n);
    for (int64_t i = 0; i < n; ++i) phi[i] = p[i * position_stride] * inv_freq[i];
    cos_sin<acc_t>(phi, scale, inverse, n, c, s);
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t* in = x + (t * heads + h) * head_dim;
      scalar_t* o = stream ? row.data() : out + (t * heads + h) * head_dim;
      if (interleaved) {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const acc_t a = static_cast<acc_t>(in[2 * i]), b = static_cast<acc_t>(in[2 * i + 1]);
          o[2 * i] = static_cast<scalar_t>(a * c[i] - b * s[i]);
          o[2 * i + 1] = static_cast<scalar_t>(b * c[i] + a * s[i]);
        }
      } else {
#pragma omp simd
        for (int64_t i = 0; i < n; ++i) {
          const acc_t a = static_cast<acc_t>(in[i]), b = static_cast<acc_t>(in[n + i]);
          o[i] = static_cast<scalar_t>(a * c[i] - b * s[i]);
          o[n + i] = static_cast<scalar_t>(b * c[i] + a * s[i]);
        }
      }
      for (int64_t j = 2 * n; j < head_dim; ++j) o[j] = in[j];  // the pass-through tail, bit for bit
      if (stream) write_row(out + (t * heads + h) * head_dim, o, head_dim * sizeof(scalar_t));
    }
  }
  if (stream) stream_fence();
}

}  // namespace

torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& positions, const torch::Tensor& inv_freq,
                   double scale, bool interleaved, bool inverse, int64_t stream_stores) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3 && x.is_contiguous(),
              "x must be a contiguous CPU tensor [tokens, heads, head_dim], got ", x.sizes(), " on ", x.device());
  TORCH_CHECK(inv_freq.dim() == 1 && inv_freq.is_contiguous() && 2 * inv_freq.size(0) <= x.size(2),
              "inv_freq must be contiguous [r/2 <= ", x.size(2) / 2, "], got ", inv_freq.sizes());
  const int64_t n = inv_freq.size(0);
  TORCH_CHECK(positions.dim() == 2 && positions.size(0) == x.size(0) &&
                  (positions.size(1) == 1 || positions.size(1) == n) && positions.is_contiguous() &&
                  positions.scalar_type() == inv_freq.scalar_type(),
              "positions must be contiguous [tokens=", x.size(0), ", 1 or ", n, "] of ", inv_freq.scalar_type(),
              ", got ", positions.sizes(), " of ", positions.scalar_type());
  auto out = torch::empty_like(x);
  const int64_t tokens = x.size(0), heads = x.size(1), head_dim = x.size(2);
  const int64_t position_stride = positions.size(1) == 1 ? 0 : 1;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, heads * head_dim));
  TORCH_CHECK(stream_stores >= -1 && stream_stores <= 1, "stream_stores must be -1 (auto), 0 or 1, got ",
              stream_stores);
  const bool stream = stream_stores == -1
                          ? static_cast<int64_t>(x.nbytes() + out.nbytes()) > last_level_cache_bytes()
                          : stream_stores == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rope_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    TORCH_CHECK(inv_freq.scalar_type() == c10::CppTypeToScalarType<acc_t>::value, "positions and inv_freq must be ",
                c10::CppTypeToScalarType<acc_t>::value, " for ", x.scalar_type(), " x, got ",
                inv_freq.scalar_type());
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    const acc_t* pp = positions.const_data_ptr<acc_t>();
    const acc_t* fp = inv_freq.const_data_ptr<acc_t>();
    scalar_t* op = out.mutable_data_ptr<scalar_t>();
    const acc_t a = static_cast<acc_t>(scale);
    at::parallel_for(0, tokens, grain, [&](int64_t begin, int64_t end) {
      rope_tokens<scalar_t, acc_t>(xp, pp, position_stride, fp, a, inverse, op, begin, end, heads, head_dim, n,
                                   interleaved, stream);
    });
  });
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rope", &rope, "RoPE of x [tokens, heads, head_dim] at positions [tokens, 1 or r/2]", py::arg("x"),
        py::arg("positions"), py::arg("inv_freq"), py::arg("scale"), py::arg("interleaved"), py::arg("inverse"),
        py::arg("stream_stores") = -1);
}
