// CUDA source of the glue kernels of the transformer blocks and the dense head (issue 12),
// compiled at run time by NVRTC for the GPU found (cuda_support.cpp, `da3cs_attention_inputs`,
// `da3cs_layer_norm`, `da3cs_residual_update`, `da3cs_upsample_bilinear`,
// `da3cs_bias_epilogue`), so that building libda3 needs no CUDA compiler.
//
// The arithmetic is the accelerated runner's fused-glue arithmetic in libtorch operations
// (src/model/dinov2/layers/{attention,block,rope}.rs) in fewer passes: fp32 throughout, one
// rounding to the compute kind at the end; only the order of the LayerNorm sums differs. The
// head's resampling and bias epilogues repeat libtorch's arithmetic exactly.
//
// Macros set per compiled variant:
//   HALF_IS_BF16  1: the compute kind is bf16, 0: fp16
//   ROW           channels per LayerNorm row (a multiple of 128); `layer_norm` exists with it
// No header is included: conversions are single PTX instructions (bf16 needs sm_80).
#pragma once

static const char *kGlueKernelSource = R"CUDA(
typedef unsigned short half_bits;
typedef unsigned long long u64;

__device__ __forceinline__ float half_to_float(half_bits h) {
#if HALF_IS_BF16
  return __uint_as_float(((unsigned)h) << 16);
#else
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
#endif
}

// Round to nearest even, as libtorch's casts.
__device__ __forceinline__ half_bits float_to_half(float f) {
  half_bits h;
#if HALF_IS_BF16
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
#else
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
#endif
  return h;
}

// Value `i` (0..7) of the eight 16-bit values packed in a 16-byte vector, as float.
__device__ __forceinline__ float lane_value(const uint4 &v, int i) {
  const unsigned *words = &v.x;
  return half_to_float((half_bits)(words[i / 2] >> (16 * (i % 2))));
}

// A 16-byte vector of eight 16-bit values, value `i` from `value(i)` (a half_bits).
template <typename F>
__device__ __forceinline__ uint4 pack8(F value) {
  unsigned words[4];
#pragma unroll
  for (int w = 0; w < 4; ++w) words[w] = (unsigned)value(2 * w) | ((unsigned)value(2 * w + 1) << 16);
  return make_uint4(words[0], words[1], words[2], words[3]);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// q and k for attention, in place in the qkv projection (attention then reads q, k and v as
// strided views of it: no copy of v, and cuDNN writes its output in the projection's token-major
// order, so that no transpose follows either). A warp takes `rows_per_warp` (1, 2 or 4,
// dividing `heads`) consecutive (token, q|k, head) rows of 64 channels, two per lane, and issues
// all their loads before using them (one 4-byte load per lane and row: a single row per warp
// leaves too few bytes in flight to approach the memory bandwidth); each warp rewrites only the
// rows it read:
//   qkv      (B, N, 3, H, 64) in the compute kind, contiguous (the projection's output)
//   q_w..k_b QK-norm LayerNorm weights and biases (64 fp32 each), or all null (no QK-norm)
//   cos, sin (B, N, 64) fp32 RoPE tables (RopeTables: the sign of rotate_half folded into
//            sin), or null (no RoPE); channel c rotates with the channel of the other quarter
//            of its half: c ^ 16
// q and k: LayerNorm (fp32, two-pass statistics), then x * cos + x[c ^ 16] * sin (fp32),
// rounded once; v is left as it is.
extern "C" __global__ void attention_inputs(half_bits *__restrict__ qkv, const float *__restrict__ q_w,
                                            const float *__restrict__ q_b, const float *__restrict__ k_w,
                                            const float *__restrict__ k_b, float eps,
                                            const float *__restrict__ cos_table, const float *__restrict__ sin_table,
                                            int batch, int tokens, int heads, int rows_per_warp) {
  constexpr int MAX_ROWS = 4;
  const u64 group = (u64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  const u64 groups = (u64)batch * tokens * 2 * heads / rows_per_warp;
  if (group >= groups) return;  // whole warps: the group is uniform within a warp
  const u64 first = group * rows_per_warp;  // over (token, q|k, head): one group shares token and part
  const int first_head = (int)(first % heads);
  const int part = (int)((first / heads) % 2);
  const u64 token_index = first / ((u64)heads * 2);  // b * tokens + n
  const u64 first_row = (token_index * 3 + part) * heads + first_head;  // the row in qkv

  unsigned pairs[MAX_ROWS];
#pragma unroll
  for (int r = 0; r < MAX_ROWS; ++r) {
    if (r < rows_per_warp) pairs[r] = reinterpret_cast<const unsigned *>(qkv + (first_row + r) * 64)[lane];
  }
  const bool rotate = cos_table != nullptr;
  float2 c = make_float2(1.0f, 1.0f), s = make_float2(0.0f, 0.0f);
  if (rotate) {
    c = reinterpret_cast<const float2 *>(cos_table + token_index * 64)[lane];
    s = reinterpret_cast<const float2 *>(sin_table + token_index * 64)[lane];
  }
  const bool norm = q_w != nullptr;
  float2 w = make_float2(1.0f, 1.0f), bias = make_float2(0.0f, 0.0f);
  if (norm) {
    w = reinterpret_cast<const float2 *>(part == 0 ? q_w : k_w)[lane];
    bias = reinterpret_cast<const float2 *>(part == 0 ? q_b : k_b)[lane];
  }
#pragma unroll
  for (int r = 0; r < MAX_ROWS; ++r) {
    if (r >= rows_per_warp) break;
    float x0 = half_to_float((half_bits)(pairs[r] & 0xffffu));
    float x1 = half_to_float((half_bits)(pairs[r] >> 16));
    if (norm) {
      const float mean = warp_sum(x0 + x1) * (1.0f / 64.0f);
      const float d0 = x0 - mean, d1 = x1 - mean;
      const float rstd = rsqrtf(warp_sum(d0 * d0 + d1 * d1) * (1.0f / 64.0f) + eps);
      x0 = d0 * rstd * w.x + bias.x;
      x1 = d1 * rstd * w.y + bias.y;
    }
    if (rotate) {
      // Channels 2*lane and 2*lane+1 rotate with those 16 channels (8 lanes) away, within
      // the same half of the head.
      const int partner = lane ^ 8;
      const float p0 = __shfl_sync(0xffffffffu, x0, partner);
      const float p1 = __shfl_sync(0xffffffffu, x1, partner);
      x0 = x0 * c.x + p0 * s.x;
      x1 = x1 * c.y + p1 * s.y;
    }
    reinterpret_cast<unsigned *>(qkv + (first_row + r) * 64)[lane] =
        (unsigned)float_to_half(x0) | ((unsigned)float_to_half(x1) << 16);
  }
}

// Bilinear resampling with align_corners=True of channels-last maps, the arithmetic of
// libtorch's upsample_bilinear2d_nhwc_out_frame (fp32 weights from `rh`, `rw`, the same
// expression, one rounding), eight channels (16 bytes) per thread where libtorch's kernel takes
// one channel per thread and three integer divisions per channel. Blocks along y take output
// rows (n, oh) in turn, so that the row's weights are uniform and only one 32-bit division by
// the channel groups remains per thread:
//   x       (B, H1, W1, C) in the compute kind, C a multiple of 8, 16-byte aligned
//   add     (H2, W2, C) in the compute kind, or null: added to each view's rounded result and
//           rounded again, as libtorch's add after the upsample (the head's UV embedding)
//   out     (B, H2, W2, C) in the compute kind
//   rh, rw  (H1 - 1) / (H2 - 1) and (W1 - 1) / (W2 - 1) in fp32 (0 for an output size of 1)
// W2 * C / 8 < 2^31 (threads along x cover one output row).
extern "C" __global__ void upsample_bilinear(const half_bits *__restrict__ x, const half_bits *__restrict__ add,
                                             half_bits *__restrict__ out, int channels, int h1, int w1, int h2,
                                             int w2, float rh, float rw, int batch) {
  const int groups = channels / 8;
  const int column = blockIdx.x * blockDim.x + threadIdx.x;  // ow * groups + group
  if (column >= w2 * groups) return;
  const int ow = column / groups;
  const int group = column - ow * groups;
  const float w1r = rw * ow;
  const int iw = (int)w1r;
  const int iwp = (iw < w1 - 1) ? 1 : 0;
  const float w1lambda = w1r - iw;
  const float w0lambda = 1.0f - w1lambda;
  const uint4 *in = reinterpret_cast<const uint4 *>(x);
  const long long rows = (long long)batch * h2;
  for (long long row = blockIdx.y; row < rows; row += gridDim.y) {
    const int oh = (int)(row % h2);
    const long long n = row / h2;
    const float h1r = rh * oh;
    const int ih = (int)h1r;
    const int ihp = (ih < h1 - 1) ? 1 : 0;
    const float h1lambda = h1r - ih;
    const float h0lambda = 1.0f - h1lambda;

    const long long top = (n * h1 + ih) * w1, bottom = (n * h1 + ih + ihp) * w1;
    const uint4 p00 = in[(top + iw) * groups + group], p01 = in[(top + iw + iwp) * groups + group];
    const uint4 p10 = in[(bottom + iw) * groups + group], p11 = in[(bottom + iw + iwp) * groups + group];
    uint4 e = make_uint4(0, 0, 0, 0);
    if (add != nullptr) e = reinterpret_cast<const uint4 *>(add)[(long long)oh * w2 * groups + column];

    const uint4 result = pack8([&](int i) {
      const float val = h0lambda * (w0lambda * lane_value(p00, i) + w1lambda * lane_value(p01, i)) +
                        h1lambda * (w0lambda * lane_value(p10, i) + w1lambda * lane_value(p11, i));
      half_bits h = float_to_half(val);
      if (add != nullptr) h = float_to_half(half_to_float(h) + lane_value(e, i));
      return h;
    });
    reinterpret_cast<uint4 *>(out)[row * w2 * groups + column] = result;
  }
}

// What follows a convolution's bias in the dense head, in place and in one pass, rounded as
// libtorch's separate operations: out = relu?((out + bias) + add), each sum rounded to the
// compute kind (libtorch adds the bias of a cuDNN convolution in a pass of its own, a
// broadcasting kernel that does not vectorise). Eight channels (16 bytes) per thread:
//   out     (B, H, W, C) in the compute kind (the unbiased convolution), C a multiple of 8
//   bias    (C) in the compute kind
//   add     (B, H, W, C), or (1, H, W, C) for every view (add_pixels = H * W), or null
//   relu    1: max(0, .) last (NaN stays NaN, as libtorch's)
// vectors = B * H * W * C / 8 < 2^31.
extern "C" __global__ void bias_epilogue(half_bits *__restrict__ out, const half_bits *__restrict__ bias,
                                         const half_bits *__restrict__ add, int channels, int add_pixels, int relu,
                                         int vectors) {
  const int index = blockIdx.x * blockDim.x + threadIdx.x;
  if (index >= vectors) return;
  const int groups = channels / 8;
  const int pixel = index / groups;
  const int group = index - pixel * groups;
  uint4 *slot = reinterpret_cast<uint4 *>(out) + index;
  const uint4 v = *slot;
  const uint4 b = reinterpret_cast<const uint4 *>(bias)[group];
  uint4 r = make_uint4(0, 0, 0, 0);
  if (add != nullptr) r = reinterpret_cast<const uint4 *>(add)[(pixel % add_pixels) * groups + group];
  *slot = pack8([&](int i) {
    half_bits h = float_to_half(lane_value(v, i) + lane_value(b, i));
    if (add != nullptr) h = float_to_half(half_to_float(h) + lane_value(r, i));
    if (relu && half_to_float(h) < 0.0f) h = 0;
    return h;
  });
}

// The LayerScale residual update in place, x += gamma * branch (fp32, fused as addcmul's):
//   x       (M, C) fp32, C a multiple of 4, 16-byte aligned
//   branch  (M, C) in the compute kind
//   gamma   (C) fp32
// vectors = M * C / 4 < 2^31.
extern "C" __global__ void residual_update(float *__restrict__ x, const half_bits *__restrict__ branch,
                                           const float *__restrict__ gamma, int channels, int vectors) {
  const int index = blockIdx.x * blockDim.x + threadIdx.x;
  if (index >= vectors) return;
  const int column = index % (channels / 4);
  float4 *slot = reinterpret_cast<float4 *>(x) + index;
  float4 v = *slot;
  const uint2 u = reinterpret_cast<const uint2 *>(branch)[index];
  const float4 s = reinterpret_cast<const float4 *>(gamma)[column];
  v.x = fmaf(half_to_float((half_bits)(u.x & 0xffffu)), s.x, v.x);
  v.y = fmaf(half_to_float((half_bits)(u.x >> 16)), s.y, v.y);
  v.z = fmaf(half_to_float((half_bits)(u.y & 0xffffu)), s.z, v.z);
  v.w = fmaf(half_to_float((half_bits)(u.y >> 16)), s.w, v.w);
  *slot = v;
}

#ifdef ROW
// LayerNorm of fp32 rows of ROW channels into the compute kind, one warp per row, optionally
// after the LayerScale residual update (`residual + gamma * branch`, fp32, as addcmul):
//   x        (M, ROW) fp32
//   branch   (M, ROW) in the compute kind, or null (no update: x is normalised as it is)
//   gamma    (ROW) fp32 LayerScale gain (with branch)
//   x_out    (M, ROW) fp32: the updated residual (with branch; may not alias x)
//   w, bias  (ROW) fp32 LayerNorm weight and bias
//   out      (M, ROW) in the compute kind
extern "C" __global__ void layer_norm(const float *__restrict__ x, const half_bits *__restrict__ branch,
                                      const float *__restrict__ gamma, float *__restrict__ x_out,
                                      const float *__restrict__ w, const float *__restrict__ bias, float eps,
                                      half_bits *__restrict__ out, long long rows) {
  constexpr int VECTORS = ROW / 128;  // float4 per lane
  const u64 row = (u64)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= (u64)rows) return;
  const float4 *in = reinterpret_cast<const float4 *>(x + row * ROW);
  float4 v[VECTORS];
#pragma unroll
  for (int i = 0; i < VECTORS; ++i) v[i] = in[lane + 32 * i];
  if (branch != nullptr) {
    const uint2 *update = reinterpret_cast<const uint2 *>(branch + row * ROW);
    const float4 *g = reinterpret_cast<const float4 *>(gamma);
    float4 *updated = reinterpret_cast<float4 *>(x_out + row * ROW);
#pragma unroll
    for (int i = 0; i < VECTORS; ++i) {
      const uint2 u = update[lane + 32 * i];
      const float4 s = g[lane + 32 * i];
      v[i].x = fmaf(half_to_float((half_bits)(u.x & 0xffffu)), s.x, v[i].x);
      v[i].y = fmaf(half_to_float((half_bits)(u.x >> 16)), s.y, v[i].y);
      v[i].z = fmaf(half_to_float((half_bits)(u.y & 0xffffu)), s.z, v[i].z);
      v[i].w = fmaf(half_to_float((half_bits)(u.y >> 16)), s.w, v[i].w);
      updated[lane + 32 * i] = v[i];
    }
  }
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < VECTORS; ++i) sum += (v[i].x + v[i].y) + (v[i].z + v[i].w);
  const float mean = warp_sum(sum) * (1.0f / ROW);
  float squares = 0.0f;
#pragma unroll
  for (int i = 0; i < VECTORS; ++i) {
    const float a = v[i].x - mean, b = v[i].y - mean, c = v[i].z - mean, d = v[i].w - mean;
    squares += (a * a + b * b) + (c * c + d * d);
  }
  const float rstd = rsqrtf(warp_sum(squares) * (1.0f / ROW) + eps);
  const float4 *wv = reinterpret_cast<const float4 *>(w);
  const float4 *bv = reinterpret_cast<const float4 *>(bias);
  uint2 *o = reinterpret_cast<uint2 *>(out + row * ROW);
#pragma unroll
  for (int i = 0; i < VECTORS; ++i) {
    const float4 s = wv[lane + 32 * i], t = bv[lane + 32 * i];
    const half_bits h0 = float_to_half((v[i].x - mean) * rstd * s.x + t.x);
    const half_bits h1 = float_to_half((v[i].y - mean) * rstd * s.y + t.y);
    const half_bits h2 = float_to_half((v[i].z - mean) * rstd * s.z + t.z);
    const half_bits h3 = float_to_half((v[i].w - mean) * rstd * s.w + t.w);
    o[lane + 32 * i] = make_uint2((unsigned)h0 | ((unsigned)h1 << 16), (unsigned)h2 | ((unsigned)h3 << 16));
  }
}
#endif
)CUDA";
