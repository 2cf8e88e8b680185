// RoPE on CPU tensors in one pass, for implementations/torch_cpp.py.
//
// rope(xs, positions, n_axes, axes, inv_freq, scale, interleaved, inverse, stream_stores) -> outs
//   xs:        one or more tensors [tokens..., heads_j, head_dim] (q, or q and k: heads may differ;
//              the leading sizes, batch and seq, are the tokens), contiguous, all of one dtype:
//              float64 / float32 / float16 / bfloat16;
//   positions: int64 [tokens..., n_axes] (any shape of tokens x n_axes values), contiguous, every
//              one >= 0;
//   axes:      int64 [r/2], the axis whose position drives each pair (multi-axis specs), or
//              empty when n_axes is 1;
//   inv_freq:  [r/2], contiguous, in the compute type (float64 for float64 x, float32
//              otherwise); scale: the attention factor;
//   inverse:   rotate by -phi (the transpose: the backward of the forward rotation);
//   stream_stores: -1 non-temporal stores when the outputs take a quarter of the last-level
//              cache or more, 0 never, 1 always (the result is the same bits either way);
//   outs:      a new tensor like each x. With phi_i = position * inv_freq_i (the position
//              rounded to the compute type first, as a cast does: exact up to 2^24 in float32), c = scale cos phi_i
//              and s = scale sin phi_i (+-), pair i of every head, (x[i], x[i + r/2]) ("half")
//              or (x[2i], x[2i + 1]) ("interleaved"), goes to (a c - b s, b c + a s), computed
//              in the compute type and rounded once to x's dtype; channels r.. are copied.
//
// Each thread takes a range of tokens; for each token it computes the r/2 angles and their
// cos/sin once into a small buffer (SLEEF's sincos with a 3.5-ulp bound, the routine behind
// ATen's vectorised float sin and cos that torch.compile's CPU kernels call, where the build
// targets AVX2 or AVX-512; the C library's otherwise), then rotates every head of that token
// in every tensor: q and k share one angle computation and one pass over the tokens. Where a
// thread's tokens span fewer position values than they are (a vision grid, a batch of prompts),
// each value's cos/sin is computed once, into the thread's own table, and the tokens read theirs
// from it. The bytes that reach memory are the xs and the outs, as in a copy, and the sin/cos
// work overlaps the memory stream instead of being a pass of its own.
//
// The rotation runs on ATen's vector type (at::vec::Vectorized<float>, the one inductor's CPU
// code generates), chosen at build time like the SIMD shims of ATen's own kernels: AVX-512 or
// AVX2 (+F16C) where the compiler targets them, scalar otherwise. float16 and bfloat16 are
// widened to float32 and narrowed back (round to nearest even) in vector registers, 2 x 8 or
// 2 x 16 channels at a time: F16C's vcvtph2ps / vcvtps2ph for float16; for bfloat16 AVX-512
// BF16's vcvtne2ps2bf16 where the CPU has it, on AVX2 an interleave with zeros and a packed
// rounding, ATen's sequences otherwise (see Lanes). Large outputs
// are written with non-temporal stores (see last_level_cache_bytes), straight from the vector
// registers where the rows allow it, else through a row in L1 (write_row). Built with
// -ffp-contract=off: every product and sum is rounded, as in PyTorch's eager kernels.

// ATen's vector headers pick their implementation from these macros (inductor passes them on
// its compile line); derive them from what the compiler targets (-march=native).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && \
    defined(__FMA__)
#define CPU_CAPABILITY_AVX512
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define CPU_CAPABILITY_AVX2
#endif

#include <torch/extension.h>

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#include <sleef.h>
#endif

namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kLanes = Vec::size();

// When the outputs take a quarter of the last-level cache or more (x and out, half of it), they
// go to memory with non-temporal stores: written around the cache, without the
// read-for-ownership a normal store costs (a third stream of bytes), and without evicting x and
// what the next layer is about to read. Below that they stay in the cache for their consumer.
// Measured on this project's 2-core EPYC (32 MiB L3), each against a copy of x in the same
// process: bfloat16 [2048, 32, 128] (x and out 32 MiB) 87-91% of the copy streamed, 71-82%
// cached. At half the cache the cached stores lose: x and out of 16 MiB (float32 [512, 32, 128],
// bfloat16 [1024, 32, 128]) took 0.40-0.48 and 0.69-1.08 ms streamed against 0.80-1.31 and
// 1.86-2.57 ms cached (the L3 is shared with the host's other guests, and a 16 MiB copy there
// ran at 0.26-1.0 ms); at 12 MiB (float32 [384, 32, 128]) cached was better, 0.22 against 0.30 ms.
//
// The size is cpu0's largest cache in sysfs, the cache its cores share, as the suite's benchmarks
// read it (rope_suite.reports.machine.last_level_cache_bytes); glibc's sysconf is the fallback. They
// differ: on a Zen 1 EPYC guest sysconf says 64 MiB where sysfs says 8 MiB (one CCX's L3). By the
// 64 MiB, outputs of 2-16 MiB counted as cached there and took rotate_heads' block order, which
// from memory is slower (float32 [256, 32, 128]: 0.78-0.93 ms against 0.55-0.67 ms head by head).
int64_t last_level_cache_bytes() {
  static const int64_t bytes = [] {
    int64_t largest = 0;
    for (int index = 0; index < 8; ++index) {
      const std::string path = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/size";
      std::ifstream file(path);
      int64_t size = 0;
      std::string unit;
      if (!(file >> size)) continue;
      file >> unit;  // "K", "M", "G" or nothing
      const int64_t scale = unit == "K" ? int64_t{1} << 10 : unit == "M" ? int64_t{1} << 20 : unit == "G" ? int64_t{1} << 30 : 1;
      largest = std::max(largest, size * scale);
    }
    if (largest > 0) return largest;
#ifdef _SC_LEVEL3_CACHE_SIZE
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0) return static_cast<int64_t>(l3);
#endif
    return static_cast<int64_t>(32) << 20;
  }();
  return bytes;
}

#if defined(CPU_CAPABILITY_AVX512)
constexpr int64_t kStreamBytes = 64;
inline void stream_chunk(void* to, const void* from) {
  _mm512_stream_si512(static_cast<__m512i*>(to), _mm512_loadu_si512(from));
}
#elif defined(CPU_CAPABILITY_AVX2)
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
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
  _mm_sfence();
#endif
}

// A vector register to memory around the cache (p aligned to the register's width).
#if defined(CPU_CAPABILITY_AVX512)
inline void stream_bits(void* p, __m512i v) { _mm512_stream_si512(static_cast<__m512i*>(p), v); }
inline void stream_floats(float* p, const at::vec::Vectorized<float>& v) { _mm512_stream_ps(p, v); }
#elif defined(CPU_CAPABILITY_AVX2)
inline void stream_bits(void* p, __m256i v) { _mm256_stream_si256(static_cast<__m256i*>(p), v); }
inline void stream_floats(float* p, const at::vec::Vectorized<float>& v) { _mm256_stream_ps(p, v); }
#endif
// The input is prefetched this far ahead of the head being rotated: measured on the 2-core EPYC
// (alternating with a copy of x), float32 [2048, 32, 128] went from 71% to 88% of the copy's
// bandwidth, bfloat16 from 57% to 66%, float32 [8192, 32, 128] from 107% to 140%; 1 to 8 KiB
// ahead all help about as much. Why the hardware prefetchers do not cover it on their own is not
// measured (the VM exposes no performance counters). On data that stay in the cache too: the
// prefetch loop takes about 10% of the kernel's samples in L2 (perf, float32 [128, 32, 128], one
// thread), but without it float32 prefill-512 (8 MiB in, in L3) fell from 54-57% of its copy to
// 29-36% in the two full runs at be68552.
constexpr int64_t kPrefetchBytes = 2048;

// c[i] = cos(phi[i]), s[i] = sin(phi[i]) for i < n (the C library's; SLEEF's for float below).
template <typename acc_t>
void unscaled_cos_sin(const acc_t* phi, int64_t n, acc_t* c, acc_t* s) {
  for (int64_t i = 0; i < n; ++i) {
    c[i] = std::cos(phi[i]);
    s[i] = std::sin(phi[i]);
  }
}

#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
#if defined(CPU_CAPABILITY_AVX512)
inline Sleef___m512_2 vsincos(__m512 v) { return Sleef_sincosf16_u35(v); }
#else
inline Sleef___m256_2 vsincos(__m256 v) { return Sleef_sincosf8_u35(v); }
#endif

template <>
void unscaled_cos_sin<float>(const float* phi, int64_t n, float* c, float* s) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const auto both = vsincos(Vec::loadu(phi + i));
    Vec(both.x).store(s + i);
    Vec(both.y).store(c + i);
  }
  if (i < n) {  // the last partial vector through a zero-padded one: the same routine per lane
    const auto both = vsincos(Vec::loadu(phi + i, n - i));
    Vec(both.x).store(s + i, n - i);
    Vec(both.y).store(c + i, n - i);
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

// --- 2 * kLanes channels of x as two float vectors, and back (rounded once) ---------------------
// Lanes<scalar_t>::load widens p[0, 2 kLanes) into (lo, hi) and store narrows them back, in
// ATen's vector conversions (round to nearest even). Where ``shuffled``, lo and hi hold the
// channels in another order than p's and store undoes it: the rotation is channel by channel,
// so it only needs cos and sin laid out the same way (load_order).
template <typename scalar_t>
struct Lanes {
  static constexpr bool shuffled = false;
  static void load(const scalar_t* p, Vec& lo, Vec& hi) { at::vec::load_to_float<scalar_t>(p, lo, hi); }
  static void store(scalar_t* p, const Vec& lo, const Vec& hi) {
    at::vec::convert_from_float<scalar_t>(lo, hi).store(p);
  }
  static void stream(scalar_t* p, const Vec& lo, const Vec& hi) {  // p aligned to a register
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
    stream_bits(p, at::vec::convert_from_float<scalar_t>(lo, hi));
#else
    store(p, lo, hi);
#endif
  }
};

template <>
struct Lanes<float> {
  static constexpr bool shuffled = false;
  static void load(const float* p, Vec& lo, Vec& hi) {
    lo = Vec::loadu(p);
    hi = Vec::loadu(p + kLanes);
  }
  static void store(float* p, const Vec& lo, const Vec& hi) {
    lo.store(p);
    hi.store(p + kLanes);
  }
  static void stream(float* p, const Vec& lo, const Vec& hi) {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
    stream_floats(p, lo);
    stream_floats(p + kLanes, hi);
#else
    store(p, lo, hi);
#endif
  }
};

#if defined(CPU_CAPABILITY_AVX512) && defined(__AVX512BF16__)
// bfloat16 on AVX-512 BF16 (Zen 4, Cooper Lake, Sapphire Rapids): narrowing is one vcvtne2ps2bf16
// for 32 channels (round to nearest even), where ATen's sequence takes about fifteen integer
// operations and a permute; widening stays ATen's (a zero-extension and a shift: a bfloat16 is
// the top half of a float32). The instruction treats subnormal float32 inputs as zero, so a block holding one
// (one vfpclassps per vector tells) goes through ATen's integer rounding instead: the bits are
// c10::BFloat16's either way. A NaN comes out as a quiet NaN with its sign and payload kept (c10's
// is 0x7fc0; which NaN is not part of the kernel's contract). Measured on the 2-core EPYC drawn as
// a Zen 4 (two full torch-cpp runs each, against ATen's sequence): bfloat16's work in the cache
// went from 0.083-0.101 to 0.054-0.073 ns an element, prefill-2048 forward from 1.15-1.20 to
// 0.69-1.04 ms, its forward+backward from 2.19-2.25 to 1.67-1.87 ms, decode-b64 from 29-35 to 20 us.
template <>
struct Lanes<c10::BFloat16> {
  static constexpr bool shuffled = false;
  static void load(const c10::BFloat16* p, Vec& lo, Vec& hi) { at::vec::load_to_float<c10::BFloat16>(p, lo, hi); }
  static __m512i narrow(const Vec& lo, const Vec& hi) {
    constexpr int kSubnormal = 0x20;  // vfpclassps category: denormal
    if (_mm512_fpclass_ps_mask(lo, kSubnormal) | _mm512_fpclass_ps_mask(hi, kSubnormal)) [[unlikely]] {
      return at::vec::convert_from_float<c10::BFloat16>(lo, hi);
    }
    return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo));  // lo's 16 channels first
  }
  static void store(c10::BFloat16* p, const Vec& lo, const Vec& hi) {
    _mm512_storeu_si512(p, narrow(lo, hi));
  }
  static void stream(c10::BFloat16* p, const Vec& lo, const Vec& hi) { stream_bits(p, narrow(lo, hi)); }
};
#endif

#if defined(CPU_CAPABILITY_AVX2)
// bfloat16 on AVX2: a bfloat16 is the top half of a float32, so widening is an interleave with
// zeros: unpacklo/unpackhi put channels (0-3, 8-11) in lo and (4-7, 12-15) in hi, one
// instruction each (ATen's in-order widening takes an extract, a zero-extension and a shift per
// half). Narrowing rounds each lane to nearest even in integer arithmetic (NaN -> the quiet NaN
// 0x7fc0, as c10::BFloat16 does) and packus puts the two halves back in order, with no
// cross-lane permute.
template <>
struct Lanes<c10::BFloat16> {
  static constexpr bool shuffled = true;
  static void load(const c10::BFloat16* p, Vec& lo, Vec& hi) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i zero = _mm256_setzero_si256();
    lo = _mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, v));
    hi = _mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, v));
  }
  static __m256i round(const Vec& v) {  // the bfloat16 bits of each lane, in its low 16 bits
    const __m256i bits = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i number = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_ORD_Q));
    return _mm256_blendv_epi8(_mm256_set1_epi32(0x7fc0), rounded, number);
  }
  static void store(c10::BFloat16* p, const Vec& lo, const Vec& hi) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_packus_epi32(round(lo), round(hi)));
  }
  static void stream(c10::BFloat16* p, const Vec& lo, const Vec& hi) {
    stream_bits(p, _mm256_packus_epi32(round(lo), round(hi)));
  }
};
#endif

// Reorder v[0, len) block by block into the order Lanes<scalar_t>::load leaves channels in (a
// no-op unless shuffled); the last len % (2 kLanes) values, which the scalar loop takes, stay.
template <typename scalar_t, typename acc_t>
inline void load_order(acc_t* v, int64_t len) {
  if constexpr (std::is_same_v<acc_t, float> && Lanes<scalar_t>::shuffled) {
    constexpr int64_t quad = kLanes / 2;  // AVX2 bfloat16: swap channels 4-7 and 8-11 of every 16
    for (int64_t b = 0; b + 2 * kLanes <= len; b += 2 * kLanes) {
      std::swap_ranges(v + b + quad, v + b + 2 * quad, v + b + 2 * quad);
    }
  }
}

// (v[1], v[0], v[3], v[2], ...): each interleaved pair's two channels swapped.
inline Vec swap_pairs(const Vec& v) {
#if defined(CPU_CAPABILITY_AVX512)
  return _mm512_permute_ps(v, 0xB1);
#elif defined(CPU_CAPABILITY_AVX2)
  return _mm256_permute_ps(v, 0xB1);
#else
  alignas(64) float a[kLanes];
  v.store(a);
  for (int64_t j = 0; j < kLanes; j += 2) std::swap(a[j], a[j + 1]);
  return Vec::loadu(a);
#endif
}

// One vector block's cos and sin (2 kLanes values each, in Lanes' load order), in registers.
struct BlockAngles {
  Vec c0, c1, s0, s1;
  BlockAngles(const float* c, const float* s)
      : c0(Vec::loadu(c)), c1(Vec::loadu(c + kLanes)), s0(Vec::loadu(s)), s1(Vec::loadu(s + kLanes)) {}
};

// 2 kLanes channels to p, streamed around the cache when nt (p aligned to a register).
template <typename scalar_t, bool nt>
inline void put(scalar_t* p, const Vec& lo, const Vec& hi) {
  if constexpr (nt) {
    Lanes<scalar_t>::stream(p, lo, hi);
  } else {
    Lanes<scalar_t>::store(p, lo, hi);
  }
}

// The vector step of every rotation, so the head-by-head and the block-by-block loops compute
// the same products and sums: "half", 2 kLanes pairs (a, b) = (in[k], in[n + k]) -> o[k], o[n + k];
// "interleaved", 2 kLanes channels (kLanes pairs) -> in * c2 + swap_pairs(in) * s2 (see
// rotate_interleaved).
template <typename scalar_t, bool nt>
inline void half_block(const scalar_t* in, int64_t n, const BlockAngles& k, scalar_t* o) {
  Vec a0, a1, b0, b1;
  Lanes<scalar_t>::load(in, a0, a1);
  Lanes<scalar_t>::load(in + n, b0, b1);
  put<scalar_t, nt>(o, a0 * k.c0 - b0 * k.s0, a1 * k.c1 - b1 * k.s1);
  put<scalar_t, nt>(o + n, b0 * k.c0 + a0 * k.s0, b1 * k.c1 + a1 * k.s1);
}

template <typename scalar_t, bool nt>
inline void interleaved_block(const scalar_t* in, const BlockAngles& k, scalar_t* o) {
  Vec v0, v1;
  Lanes<scalar_t>::load(in, v0, v1);
  put<scalar_t, nt>(o, v0 * k.c0 + swap_pairs(v0) * k.s0, v1 * k.c1 + swap_pairs(v1) * k.s1);
}

// Pairs [0, count) of one head: "half": (a, b) = (in[i], in[n + i]) -> o[i], o[n + i]; c, s
// hold count values.
template <typename scalar_t, typename acc_t, bool nt = false>
void rotate_half(const scalar_t* in, const acc_t* c, const acc_t* s, int64_t count, int64_t n, scalar_t* o) {
  int64_t i = 0;
  if constexpr (std::is_same_v<acc_t, float>) {
    for (; i + 2 * kLanes <= count; i += 2 * kLanes) {
      half_block<scalar_t, nt>(in + i, n, BlockAngles(c + i, s + i), o + i);
    }
  }
  for (; i < count; ++i) {
    const acc_t a = static_cast<acc_t>(in[i]), b = static_cast<acc_t>(in[n + i]);
    o[i] = static_cast<scalar_t>(a * c[i] - b * s[i]);
    o[n + i] = static_cast<scalar_t>(b * c[i] + a * s[i]);
  }
}

// Pairs [0, n) of one head, "interleaved": (a, b) = (in[2i], in[2i + 1]). c2, s2 hold 2n values: c2[2i] = c2[2i + 1] =
// c[i], s2[2i] = -s[i], s2[2i + 1] = s[i], so o = in * c2 + swap_pairs(in) * s2 channel by
// channel: (a c + b (-s), b c + a s), the same products and sums as above.
template <typename scalar_t, typename acc_t, bool nt = false>
void rotate_interleaved(const scalar_t* in, const acc_t* c2, const acc_t* s2, int64_t n, scalar_t* o) {
  int64_t j = 0;
  if constexpr (std::is_same_v<acc_t, float>) {
    for (; j + 2 * kLanes <= 2 * n; j += 2 * kLanes) {
      interleaved_block<scalar_t, nt>(in + j, BlockAngles(c2 + j, s2 + j), o + j);
    }
  }
  for (; j < 2 * n; j += 2) {
    const acc_t a = static_cast<acc_t>(in[j]), b = static_cast<acc_t>(in[j + 1]);
    o[j] = static_cast<scalar_t>(a * c2[j] - b * s2[j + 1]);
    o[j + 1] = static_cast<scalar_t>(b * c2[j] + a * s2[j + 1]);
  }
}

// One tensor to rotate: x [tokens, heads, head_dim] and its output.
template <typename scalar_t>
struct Operand {
  const scalar_t* x;
  scalar_t* out;
  int64_t heads;
};

// Pairs [begin, end) take their angle from positions[axis] (one run covers every pair of a
// single-axis spec; a multi-axis spec has one per block of pairs on one axis).
struct Run {
  int64_t begin, end, axis;
};

std::vector<Run> runs_of(const int64_t* axes, int64_t n) {
  std::vector<Run> runs;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t axis = axes == nullptr ? 0 : axes[i];
    if (runs.empty() || runs.back().axis != axis) runs.push_back({i, i, axis});
    runs.back().end = i + 1;
  }
  return runs;
}

// One token's (or one position value's) angles as the rotation reads them, 2w values with w = n
// ("half": c[n], then s[n]) or w = 2n ("interleaved": c2[2n], then s2[2n], see rotate_interleaved),
// each run's stretch in Lanes' load order from the run's first channel: from c = a cos phi and
// s = +-a sin phi.
template <typename scalar_t, typename acc_t>
void lay_out(const acc_t* c, const acc_t* s, int64_t n, bool interleaved, const std::vector<Run>& runs, acc_t* row) {
  const int64_t w = interleaved ? 2 * n : n;
  if (interleaved) {
    for (int64_t i = 0; i < n; ++i) {
      row[2 * i] = row[2 * i + 1] = c[i];
      row[w + 2 * i] = -s[i];
      row[w + 2 * i + 1] = s[i];
    }
  } else {
    std::memcpy(row, c, n * sizeof(acc_t));
    std::memcpy(row + w, s, n * sizeof(acc_t));
  }
  const int64_t per_pair = interleaved ? 2 : 1;
  for (const Run& r : runs) {
    load_order<scalar_t, acc_t>(row + per_pair * r.begin, per_pair * (r.end - r.begin));
    load_order<scalar_t, acc_t>(row + w + per_pair * r.begin, per_pair * (r.end - r.begin));
  }
}

// Rows of the table, for position values [begin, end), row v - begin for value v: its angles
// laid out, as if every pair took v (a token reads each run's stretch from the row of its own
// position on that axis): the same routine on the same float, so the same bits, as computing
// them for the token.
template <typename scalar_t, typename acc_t>
void angle_table(const acc_t* inv_freq, acc_t scale, bool inverse, int64_t n, bool interleaved,
                 const std::vector<Run>& runs, int64_t begin, int64_t end, acc_t* table) {
  const int64_t row = 2 * (interleaved ? 2 * n : n);
  std::vector<acc_t> buffer(3 * n);
  acc_t *phi = buffer.data(), *c = phi + n, *s = c + n;
  for (int64_t v = begin; v < end; ++v) {
    const acc_t position = static_cast<acc_t>(v);
    for (int64_t i = 0; i < n; ++i) phi[i] = position * inv_freq[i];
    cos_sin<acc_t>(phi, scale, inverse, n, c, s);
    lay_out<scalar_t, acc_t>(c, s, n, interleaved, runs, table + row * (v - begin));
  }
}

// One head over every run: o = in rotated (pairs only; the tail is the caller's), with
// non-temporal stores when nt (every vector store aligned, no scalar remainder: see direct).
template <typename scalar_t, typename acc_t, bool nt>
void rotate_head(const scalar_t* in, const std::vector<const acc_t*>& angles, const std::vector<Run>& runs, int64_t n,
                 int64_t w, bool interleaved, scalar_t* o) {
  for (size_t r = 0; r < runs.size(); ++r) {
    const Run& run = runs[r];
    if (interleaved) {
      const int64_t at = 2 * run.begin;
      rotate_interleaved<scalar_t, acc_t, nt>(in + at, angles[r] + at, angles[r] + w + at, run.end - run.begin, o + at);
    } else {
      rotate_half<scalar_t, acc_t, nt>(in + run.begin, angles[r] + run.begin, angles[r] + w + run.begin,
                                       run.end - run.begin, n, o + run.begin);
    }
  }
}

// Every head of one token at once, where the outputs stay in the cache (not streamed) and one
// run covers all n pairs in whole vector blocks (one position axis, the rotated channels a
// multiple of 2 kLanes): block by block, the block's cos/sin are loaded into registers once and
// applied to every head, by the same half_block / interleaved_block as the head-by-head loop, so
// the same bits. Measured on the 2-core EPYC (Zen 1, 8 MiB L3), alternating with the head-by-head
// loop (rotate_head, which reloads cos/sin and pays its setup for every head) in one process:
// float32 [64, 32, 128] 63 -> 50 us (a copy: 30 us), bfloat16 85.6 -> 73.2 us. Not for streamed
// outputs: there the block order writes each output line in pieces, heads apart, and the
// non-temporal stores lose their full lines (float32 [2048, 32, 128] 3.09 -> 3.63 ms).
template <typename scalar_t>
void rotate_heads(const scalar_t* in, const float* c, const float* s, int64_t heads, int64_t head_dim, int64_t n,
                  bool interleaved, scalar_t* o) {
  const int64_t width = interleaved ? 2 * n : n;  // channels that c and s cover
  for (int64_t i = 0; i < width; i += 2 * kLanes) {
    const BlockAngles k(c + i, s + i);
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t at = h * head_dim + i;
      if (interleaved) {
        interleaved_block<scalar_t, false>(in + at, k, o + at);
      } else {
        half_block<scalar_t, false>(in + at, n, k, o + at);
      }
    }
  }
}

// Tokens [begin, end). Where they span fewer position values than they are (a vision grid, a
// batch of prompts), the angle_table of the values they span is built first, by this thread
// for itself, and read instead of computing per token. Not one table shared by the threads:
// every call rewrites it, so each thread then reads rows from the other core's cache. On the
// 2-core Zen 4 EPYC a shared table (built by both threads, read by both) cost SAM 2's cut of
// 256 tokens 31-36 us a call in most processes and 90-97 us in about one in ten, both threads
// busy throughout (one thread: 27-29 us in every one; without the table, 32 us).
template <typename scalar_t, typename acc_t>
void rope_tokens(const std::vector<Operand<scalar_t>>& operands, const int64_t* positions, int64_t n_axes,
                 const std::vector<Run>& runs, const acc_t* inv_freq,
                 acc_t scale, bool inverse, int64_t begin, int64_t end, int64_t head_dim, int64_t n, bool interleaved,
                 bool stream) {
  const int64_t w = interleaved ? 2 * n : n;
  std::vector<acc_t> table;
  int64_t first = 0;  // the position value of the table's row 0
  if (end > begin) {
    const auto [lowest, highest] = std::minmax_element(positions + begin * n_axes, positions + end * n_axes);
    if (*highest - *lowest + 1 < end - begin) {
      first = *lowest;
      table.resize(2 * w * (*highest + 1 - first));
      angle_table<scalar_t, acc_t>(inv_freq, scale, inverse, n, interleaved, runs, first, *highest + 1, table.data());
    }
  }
  std::vector<acc_t> buffer(3 * n + 2 * w);  // phi, c, s, then the token's laid-out row
  acc_t *phi = buffer.data(), *c = phi + n, *s = c + n, *own = s + n;
  // One head's output, in L1, then streamed out: 64-byte aligned, so its lines are this thread's alone.
  std::vector<char> row_bytes(stream ? head_dim * sizeof(scalar_t) + 128 : 0);
  scalar_t* row = reinterpret_cast<scalar_t*>((reinterpret_cast<std::uintptr_t>(row_bytes.data()) + 63) & ~std::uintptr_t{63});
  std::vector<const acc_t*> angles(runs.size());  // each run's row: the token's own or the table's
  // Streaming straight from the vector registers where every store of the vector loop is
  // aligned and the loop covers every pair; through the row buffer otherwise.
  bool vector_runs = std::is_same_v<acc_t, float>;
  for (const Run& r : runs) {
    const int64_t b = interleaved ? 2 * r.begin : r.begin, e = interleaved ? 2 * r.end : r.end;
    vector_runs = vector_runs && b % (2 * kLanes) == 0 && (e - b) % (2 * kLanes) == 0;
  }
  // Outputs kept in the cache and one run over every pair in whole vector blocks: every head of
  // a token in one rotate_heads.
  const bool by_blocks = !stream && vector_runs && runs.size() == 1;
  const int64_t item = sizeof(scalar_t);
  const bool aligned_rows = kStreamBytes > 0 && (head_dim * item) % kStreamBytes == 0 &&
                            (interleaved || (n * item) % kStreamBytes == 0) && (2 * kLanes * item) % kStreamBytes == 0;
  std::vector<bool> direct;
  for (const auto& op : operands) {
    direct.push_back(stream && vector_runs && aligned_rows &&
                     reinterpret_cast<std::uintptr_t>(op.out) % std::max<int64_t>(kStreamBytes, 1) == 0);
  }
  for (int64_t t = begin; t < end; ++t) {
    const int64_t* p = positions + t * n_axes;
    if (!table.empty()) {
      for (size_t r = 0; r < runs.size(); ++r) angles[r] = table.data() + 2 * w * (p[runs[r].axis] - first);
    } else {
      for (const Run& r : runs) {
        const acc_t position = static_cast<acc_t>(p[r.axis]);
        for (int64_t i = r.begin; i < r.end; ++i) phi[i] = position * inv_freq[i];
      }
      cos_sin<acc_t>(phi, scale, inverse, n, c, s);
      lay_out<scalar_t, acc_t>(c, s, n, interleaved, runs, own);
      std::fill(angles.begin(), angles.end(), own);
    }
    for (size_t j = 0; j < operands.size(); ++j) {
      const auto& op = operands[j];
      if constexpr (std::is_same_v<acc_t, float>) {
        if (by_blocks) {
          const scalar_t* in = op.x + t * op.heads * head_dim;
          scalar_t* to = op.out + t * op.heads * head_dim;
          rotate_heads<scalar_t>(in, angles[0], angles[0] + w, op.heads, head_dim, n, interleaved, to);
          for (int64_t h = 0; head_dim > 2 * n && h < op.heads; ++h) {  // the pass-through tail, bit for bit
            std::memcpy(to + h * head_dim + 2 * n, in + h * head_dim + 2 * n, (head_dim - 2 * n) * sizeof(scalar_t));
          }
          continue;
        }
      }
      for (int64_t h = 0; h < op.heads; ++h) {
        const scalar_t* in = op.x + (t * op.heads + h) * head_dim;
        scalar_t* to = op.out + (t * op.heads + h) * head_dim;
        for (int64_t k = 0; k < head_dim * item; k += 64) {  // this head's lines, 2 KiB ahead (see kPrefetchBytes)
          __builtin_prefetch(reinterpret_cast<const char*>(in) + kPrefetchBytes + k);
        }
        if (direct[j]) {
          rotate_head<scalar_t, acc_t, true>(in, angles, runs, n, w, interleaved, to);
        } else {
          rotate_head<scalar_t, acc_t, false>(in, angles, runs, n, w, interleaved, stream ? row : to);
        }
        if (head_dim > 2 * n) {  // the pass-through tail, bit for bit
          std::memcpy((stream && !direct[j] ? row : to) + 2 * n, in + 2 * n, (head_dim - 2 * n) * sizeof(scalar_t));
        }
        if (stream && !direct[j]) write_row(to, row, head_dim * sizeof(scalar_t));
      }
    }
  }
  if (stream) stream_fence();
}

}  // namespace

// Tokens of x [..., heads, head_dim]: the product of its leading sizes.
int64_t tokens_of(const torch::Tensor& x) {
  int64_t tokens = 1;
  for (int64_t d = 0; d + 2 < x.dim(); ++d) tokens *= x.size(d);
  return tokens;
}

std::vector<torch::Tensor> rope(const std::vector<torch::Tensor>& xs, const torch::Tensor& positions, int64_t n_axes,
                                const torch::Tensor& axes, const torch::Tensor& inv_freq, double scale, bool interleaved,
                                bool inverse, int64_t stream_stores) {
  TORCH_CHECK(!xs.empty(), "xs must hold at least one tensor");
  const torch::Tensor& first = xs.front();
  TORCH_CHECK(first.dim() >= 3, "xs[0] must be a contiguous CPU tensor [tokens..., heads, head_dim], got ",
              first.sizes());
  const int64_t tokens = tokens_of(first), head_dim = first.size(-1);
  for (size_t j = 0; j < xs.size(); ++j) {
    const auto& x = xs[j];
    TORCH_CHECK(x.device().is_cpu() && x.dim() >= 3 && x.is_contiguous(), "xs[", j,
                "] must be a contiguous CPU tensor [tokens..., heads, head_dim], got ", x.sizes(), " on ", x.device());
    TORCH_CHECK(tokens_of(x) == tokens && x.size(-1) == head_dim && x.scalar_type() == first.scalar_type(), "xs[", j,
                "] must match xs[0] in tokens, head_dim and dtype (", tokens, ", ", head_dim, ", ", first.scalar_type(),
                "), got ", x.sizes(), " of ", x.scalar_type());
  }
  TORCH_CHECK(inv_freq.dim() == 1 && inv_freq.is_contiguous() && 2 * inv_freq.size(0) <= head_dim,
              "inv_freq must be contiguous [r/2 <= ", head_dim / 2, "], got ", inv_freq.sizes());
  const int64_t n = inv_freq.size(0);
  TORCH_CHECK(n_axes >= 1 && positions.numel() == tokens * n_axes && positions.is_contiguous() &&
                  positions.scalar_type() == at::kLong,
              "positions must be contiguous int64 [tokens=", tokens, ", n_axes=", n_axes, "] (any shape of that many), "
              "got ", positions.sizes(), " of ", positions.scalar_type());
  const int64_t* pp = positions.const_data_ptr<int64_t>();
  const int64_t* ap = nullptr;
  if (n_axes > 1) {
    TORCH_CHECK(axes.dim() == 1 && axes.size(0) == n && axes.is_contiguous() && axes.scalar_type() == at::kLong,
                "axes must be contiguous int64 [r/2=", n, "] for positions of ", n_axes, " axes, got ", axes.sizes(),
                " of ", axes.scalar_type());
    ap = axes.const_data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      TORCH_CHECK(ap[i] >= 0 && ap[i] < n_axes, "axes[", i, "]=", ap[i], " is invalid: positions have ", n_axes,
                  " axes");
    }
  }
  if (tokens > 0) {
    const int64_t lowest = *std::min_element(pp, pp + tokens * n_axes);
    TORCH_CHECK_VALUE(lowest >= 0, "positions min=", lowest, " is invalid: positions must be >= 0");
  }
  TORCH_CHECK(stream_stores >= -1 && stream_stores <= 1, "stream_stores must be -1 (auto), 0 or 1, got ",
              stream_stores);
  std::vector<torch::Tensor> outs;
  int64_t bytes = 0, row_elements = 0;  // bytes: of the outputs
  for (const auto& x : xs) {
    outs.push_back(torch::empty_like(x));
    bytes += static_cast<int64_t>(x.nbytes());
    row_elements += x.size(-2) * x.size(-1);
  }
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, row_elements));
  const bool stream = stream_stores == -1 ? 4 * bytes >= last_level_cache_bytes() : stream_stores == 1;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, first.scalar_type(), "rope_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    TORCH_CHECK(inv_freq.scalar_type() == c10::CppTypeToScalarType<acc_t>::value, "inv_freq must be ",
                c10::CppTypeToScalarType<acc_t>::value, " for ", first.scalar_type(), " x, got ",
                inv_freq.scalar_type());
    std::vector<Operand<scalar_t>> operands;
    for (size_t j = 0; j < xs.size(); ++j) {
      operands.push_back({xs[j].const_data_ptr<scalar_t>(), outs[j].mutable_data_ptr<scalar_t>(), xs[j].size(-2)});
    }
    const acc_t* fp = inv_freq.const_data_ptr<acc_t>();
    const acc_t a = static_cast<acc_t>(scale);
    const std::vector<Run> runs = runs_of(ap, n);
    at::parallel_for(0, tokens, grain, [&](int64_t begin, int64_t end) {
      rope_tokens<scalar_t, acc_t>(operands, pp, n_axes, runs, fp, a, inverse, begin, end, head_dim, n,
                                   interleaved, stream);
    });
  });
  return outs;
}

// rope() under autograd, in C++: the gradient of each output is the other rotation of its
// incoming gradient (R(phi)^T = R(-phi)), the same kernel over the gradients that exist, itself
// through this Function, so differentiable again. The xs come last: backward returns one
// gradient per argument, the xs' after seven undefined ones. A Python autograd.Function costs
// about 45 us a call in its forward and as much in its backward on the 2-core EPYC (a
// forward+backward of one token took 0.21 ms); here the autograd engine calls the kernel directly.
struct RopeFunction : public torch::autograd::Function<RopeFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& positions,
                                                int64_t n_axes, const torch::Tensor& axes,
                                                const torch::Tensor& inv_freq, double scale, bool interleaved,
                                                bool inverse, at::TensorList xs) {
    ctx->save_for_backward({positions, axes, inv_freq});
    ctx->set_materialize_grads(false);  // an output that reaches no loss: no gradient, no pass over zeros
    ctx->saved_data["n_axes"] = n_axes;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["interleaved"] = interleaved;
    ctx->saved_data["inverse"] = inverse;
    std::vector<torch::Tensor> contiguous;
    for (const auto& x : xs) contiguous.push_back(x.contiguous());
    return rope(contiguous, positions, n_axes, axes, inv_freq, scale, interleaved, inverse, -1);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    std::vector<torch::Tensor> given;
    for (const auto& g : grads) {
      if (g.defined()) given.push_back(g);
    }
    torch::autograd::variable_list out(7 + grads.size());  // positions .. inverse: no gradient
    if (!given.empty()) {
      const auto rotated = RopeFunction::apply(saved[0], ctx->saved_data["n_axes"].toInt(), saved[1], saved[2],
                                               ctx->saved_data["scale"].toDouble(),
                                               ctx->saved_data["interleaved"].toBool(),
                                               !ctx->saved_data["inverse"].toBool(), at::TensorList(given));
      size_t k = 0;
      for (size_t j = 0; j < grads.size(); ++j) {
        if (grads[j].defined()) out[7 + j] = rotated[k++];
      }
    }
    return out;
  }
};

std::vector<torch::Tensor> rope_differentiable(const std::vector<torch::Tensor>& xs, const torch::Tensor& positions,
                                               int64_t n_axes, const torch::Tensor& axes,
                                               const torch::Tensor& inv_freq, double scale, bool interleaved,
                                               bool inverse) {
  return RopeFunction::apply(positions, n_axes, axes, inv_freq, scale, interleaved, inverse, at::TensorList(xs));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("rope", &rope,
        "RoPE of each x [tokens..., heads, head_dim] of xs at int64 positions [tokens..., n_axes], one angle "
        "computation per token for all of them",
        py::arg("xs"), py::arg("positions"), py::arg("n_axes"), py::arg("axes"), py::arg("inv_freq"), py::arg("scale"),
        py::arg("interleaved"), py::arg("inverse"), py::arg("stream_stores") = -1);
  m.def("last_level_cache_bytes", &last_level_cache_bytes,
        "the cache size that decides streaming stores and the block order (rope's stream_stores=-1)");
  m.def("rope_differentiable", &rope_differentiable,
        "rope() under autograd: differentiable in each x (the gradient is the inverse rotation, by the same "
        "kernel), any number of times",
        py::arg("xs"), py::arg("positions"), py::arg("n_axes"), py::arg("axes"), py::arg("inv_freq"), py::arg("scale"),
        py::arg("interleaved"), py::arg("inverse"));
}
