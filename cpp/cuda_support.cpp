// libda3_cuda_support: the few libtorch CUDA facilities the tch crate does not expose
// (CUDA graphs, caching-allocator statistics, device capabilities, cuDNN attention) and the
// transformer-block glue kernels compiled at run time by NVRTC, behind a C ABI.
//
// It is a separate shared library, opened by libda3 at run time after libtorch's CUDA
// backend (src/cuda_support.rs), so that libda3 itself keeps loading on machines without
// CUDA. No C++ exception crosses this boundary: every function returns 0 on success or -1
// with a message written into `err` (always NUL-terminated, truncated to `err_len`).
#include <ATen/cuda/CUDAGraph.h>
#include <ATen/ops/_addmm_activation.h>
#include <ATen/ops/_scaled_dot_product_cudnn_attention.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <dirent.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "glue_kernels_source.h"

namespace {

void write_error(char *err, size_t err_len, const char *what) {
  if (err == nullptr || err_len == 0) return;
  std::strncpy(err, what, err_len - 1);
  err[err_len - 1] = '\0';
}

// A run-time compiled kernel that cannot be had here (no NVRTC, an architecture NVRTC does
// not know, a compile failure): the caller falls back to libtorch's operations.
struct KernelUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Returned for KernelUnavailable, distinct from -1 (a failure of the call itself).
constexpr int kUnavailable = 1;

template <typename F>
int guarded(char *err, size_t err_len, F &&body) {
  try {
    body();
    return 0;
  } catch (const KernelUnavailable &e) {
    write_error(err, err_len, e.what());
    return kUnavailable;
  } catch (const c10::Error &e) {
    write_error(err, err_len, e.what_without_backtrace());
  } catch (const std::exception &e) {
    write_error(err, err_len, e.what());
  } catch (...) {
    write_error(err, err_len, "unknown C++ exception");
  }
  return -1;
}

// A graph with the stream it is captured on and the stream that was current before.
struct Graph {
  at::cuda::CUDAGraph graph;
  c10::DeviceIndex device = 0;
  std::optional<c10::cuda::CUDAStream> previous;
  bool captured = false;
};

void restore_stream(Graph *g) {
  if (g->previous) {
    c10::cuda::setCurrentCUDAStream(*g->previous);
    g->previous.reset();
  }
}

// ---- Kernels compiled at run time (NVRTC) --------------------------------------------------

// The NVRTC entry points used, from the libnvrtc of the CUDA runtime libtorch uses (opened
// here rather than linked, so that this library loads without it). Declared from NVRTC's
// documented C API (nvrtc.h is not among the headers every CUDA wheel ships).
using nvrtcProgram = struct _nvrtcProgram *;
using nvrtcResult = int;
constexpr nvrtcResult NVRTC_SUCCESS = 0;

struct Nvrtc {
  nvrtcResult (*create_program)(nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *);
  nvrtcResult (*compile_program)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*get_program_log_size)(nvrtcProgram, size_t *);
  nvrtcResult (*get_program_log)(nvrtcProgram, char *);
  nvrtcResult (*get_cubin_size)(nvrtcProgram, size_t *);
  nvrtcResult (*get_cubin)(nvrtcProgram, char *);
  nvrtcResult (*destroy_program)(nvrtcProgram *);
  const char *(*get_error_string)(nvrtcResult);
};

// libnvrtc of the CUDA runtime's major version (libtorch's, whatever headers this library was
// built with): the one beside the
// libcudart libtorch loaded (the wheels' nvidia/cu*/lib), else the loader's search path.
// NVRTC opens its builtins library by name at its first compile, so the one beside it is
// loaded first (a library already loaded is found by its name).
void *open_nvrtc() {
  int runtime_version = 0;
  if (cudaRuntimeGetVersion(&runtime_version) != cudaSuccess) throw KernelUnavailable("no CUDA runtime version");
  const std::string major = std::to_string(runtime_version / 1000);
  const std::string name = "libnvrtc.so." + major;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void *>(&cudaGetDeviceCount), &info) != 0 && info.dli_fname != nullptr) {
    const std::string path = info.dli_fname;
    const std::string dir = path.substr(0, path.rfind('/') + 1);
    if (void *handle = dlopen((dir + name).c_str(), RTLD_NOW | RTLD_LOCAL)) {
      if (DIR *listing = opendir(dir.c_str())) {
        const std::string builtins = "libnvrtc-builtins.so." + major + ".";
        while (const dirent *entry = readdir(listing)) {
          if (std::strncmp(entry->d_name, builtins.c_str(), builtins.size()) == 0) {
            dlopen((dir + entry->d_name).c_str(), RTLD_NOW | RTLD_GLOBAL);  // kept for the process's life
          }
        }
        closedir(listing);
      }
      return handle;
    }
  }
  if (void *handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
  throw KernelUnavailable(name + " not found (NVRTC compiles the glue kernels)");
}

const Nvrtc &nvrtc() {
  static const Nvrtc api = [] {
    void *handle = open_nvrtc();
    auto symbol = [&](const char *name) {
      void *address = dlsym(handle, name);
      if (address == nullptr) throw KernelUnavailable(std::string("NVRTC lacks ") + name);
      return address;
    };
    Nvrtc n{};
    n.create_program = reinterpret_cast<decltype(n.create_program)>(symbol("nvrtcCreateProgram"));
    n.compile_program = reinterpret_cast<decltype(n.compile_program)>(symbol("nvrtcCompileProgram"));
    n.get_program_log_size = reinterpret_cast<decltype(n.get_program_log_size)>(symbol("nvrtcGetProgramLogSize"));
    n.get_program_log = reinterpret_cast<decltype(n.get_program_log)>(symbol("nvrtcGetProgramLog"));
    n.get_cubin_size = reinterpret_cast<decltype(n.get_cubin_size)>(symbol("nvrtcGetCUBINSize"));
    n.get_cubin = reinterpret_cast<decltype(n.get_cubin)>(symbol("nvrtcGetCUBIN"));
    n.destroy_program = reinterpret_cast<decltype(n.destroy_program)>(symbol("nvrtcDestroyProgram"));
    n.get_error_string = reinterpret_cast<decltype(n.get_error_string)>(symbol("nvrtcGetErrorString"));
    return n;
  }();
  return api;
}

// `kGlueKernelSource` with `defines` compiled to a cubin for sm_<arch>.
std::vector<char> compile_glue(const std::vector<std::string> &defines, int arch) {
  const Nvrtc &api = nvrtc();
  nvrtcProgram program = nullptr;
  auto check = [&](nvrtcResult result, const char *what) {
    if (result != NVRTC_SUCCESS) throw KernelUnavailable(std::string(what) + ": " + api.get_error_string(result));
  };
  check(api.create_program(&program, kGlueKernelSource, "glue_kernels.cu", 0, nullptr, nullptr), "nvrtcCreateProgram");
  std::unique_ptr<nvrtcProgram, void (*)(nvrtcProgram *)> owner(&program, [](nvrtcProgram *p) { nvrtc().destroy_program(p); });
  std::vector<std::string> options = {"--gpu-architecture=sm_" + std::to_string(arch), "--std=c++17"};
  for (const auto &d : defines) options.push_back("-D" + d);
  std::vector<const char *> argv;
  for (const auto &o : options) argv.push_back(o.c_str());
  const nvrtcResult compiled = api.compile_program(program, static_cast<int>(argv.size()), argv.data());
  if (compiled != NVRTC_SUCCESS) {
    size_t size = 0;
    api.get_program_log_size(program, &size);
    std::string log(size, '\0');
    if (size > 0) api.get_program_log(program, log.data());
    throw KernelUnavailable(std::string("NVRTC could not compile the glue kernels for sm_") + std::to_string(arch) + ": " + log);
  }
  size_t size = 0;
  check(api.get_cubin_size(program, &size), "nvrtcGetCUBINSize");
  std::vector<char> cubin(size);
  check(api.get_cubin(program, cubin.data()), "nvrtcGetCUBIN");
  return cubin;
}

// A kernel of the glue source compiled with `defines` for `device`'s architecture, compiled
// and loaded once per (device, defines, name) for the process's life.
cudaKernel_t glue_kernel(int device, const std::vector<std::string> &defines, const char *name) {
  static std::mutex mutex;
  static std::map<std::tuple<int, std::vector<std::string>, std::string>, cudaKernel_t> kernels;
  std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_tuple(device, defines, std::string(name));
  if (auto found = kernels.find(key); found != kernels.end()) return found->second;
  int major = 0, minor = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major < 8) throw KernelUnavailable("the glue kernels need compute capability 8.0 or later");
  const std::vector<char> cubin = compile_glue(defines, major * 10 + minor);
  auto loaded = [](cudaError_t result, const char *what) {
    if (result == cudaSuccess) return;
    (void)cudaGetLastError();  // not left for libtorch's next launch check to find
    throw KernelUnavailable(std::string(what) + ": " + cudaGetErrorString(result));
  };
  cudaLibrary_t library = nullptr;
  loaded(cudaLibraryLoadData(&library, cubin.data(), nullptr, nullptr, 0, nullptr, nullptr, 0), "loading the glue kernels");
  cudaKernel_t kernel = nullptr;
  loaded(cudaLibraryGetKernel(&kernel, library, name), "finding a glue kernel");
  kernels.emplace(key, kernel);  // the library stays loaded for the process's life
  return kernel;
}

// `warps` warps (one per row or group of rows) in blocks of 8.
void launch(cudaKernel_t kernel, int64_t warps, int device, void **args) {
  constexpr int kWarpsPerBlock = 8;
  const int64_t blocks = (warps + kWarpsPerBlock - 1) / kWarpsPerBlock;
  TORCH_CHECK(blocks <= INT32_MAX, "too many rows for one launch");
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
  C10_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void *>(kernel), dim3(static_cast<unsigned>(blocks)),
                                  dim3(32 * kWarpsPerBlock), args, 0, stream));
}

std::string half_define(const at::Tensor &t) {
  TORCH_CHECK(t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf,
              "the glue kernels take bf16 or fp16, not ", t.scalar_type());
  return t.scalar_type() == at::kBFloat16 ? "HALF_IS_BF16=1" : "HALF_IS_BF16=0";
}

void check_fp32(const at::Tensor &t, const at::Tensor &like, int64_t numel, const char *what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.is_contiguous() && t.device() == like.device() && t.numel() == numel,
              what, ": expected ", numel, " contiguous fp32 values on ", like.device());
}

const at::Tensor *as_tensor(const void *p) { return static_cast<const at::Tensor *>(p); }

}  // namespace

extern "C" {

// Version of this C ABI; libda3 refuses a library with another one.
int da3cs_abi_version(void) { return 6; }  // 6: linear + GELU in the product's epilogue

int da3cs_graph_create(void **out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] { *out = new Graph(); });
}

void da3cs_graph_destroy(void *graph) {
  auto *g = static_cast<Graph *>(graph);
  if (g == nullptr) return;
  try {
    restore_stream(g);
    delete g;
  } catch (...) {
  }
}

// Waits for the device, makes a side stream current on this thread and starts capturing
// into a private memory pool (thread-local capture mode: other threads are not disturbed).
int da3cs_graph_capture_begin(void *graph, int device, char *err, size_t err_len) {
  auto *g = static_cast<Graph *>(graph);
  return guarded(err, err_len, [&] {
    g->device = static_cast<c10::DeviceIndex>(device);
    c10::cuda::set_device(g->device);
    c10::cuda::device_synchronize();
    g->previous = c10::cuda::getCurrentCUDAStream(g->device);
    c10::cuda::setCurrentCUDAStream(c10::cuda::getStreamFromPool(false, g->device));
    try {
      g->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    } catch (...) {
      restore_stream(g);
      throw;
    }
  });
}

// Ends the capture and instantiates the graph; the previous stream is current again even
// when the capture failed (then the graph must not be replayed).
int da3cs_graph_capture_end(void *graph, char *err, size_t err_len) {
  auto *g = static_cast<Graph *>(graph);
  return guarded(err, err_len, [&] {
    try {
      g->graph.capture_end();
    } catch (...) {
      restore_stream(g);
      throw;
    }
    restore_stream(g);
    g->captured = true;
  });
}

// Launches the captured work on the current stream of the calling thread.
int da3cs_graph_replay(void *graph, char *err, size_t err_len) {
  auto *g = static_cast<Graph *>(graph);
  return guarded(err, err_len, [&] {
    TORCH_CHECK(g->captured, "the CUDA graph was not captured successfully");
    c10::cuda::set_device(g->device);
    g->graph.replay();
  });
}

// Caching-allocator bytes of `device`: out[0] allocated now, out[1] peak allocated,
// out[2] reserved now, out[3] peak reserved.
int da3cs_memory_stats(int device, int64_t *out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(device));
    const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    out[0] = stats.allocated_bytes[aggregate].current;
    out[1] = stats.allocated_bytes[aggregate].peak;
    out[2] = stats.reserved_bytes[aggregate].current;
    out[3] = stats.reserved_bytes[aggregate].peak;
  });
}

int da3cs_reset_peak_memory(int device, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(device));
  });
}

// Compute capability of `device` (major * 10 + minor): bf16 arithmetic needs 80 (Ampere).
int da3cs_compute_capability(int device, int *out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    int major = 0, minor = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    *out = major * 10 + minor;
  });
}

// cuDNN's fused attention (no mask, no dropout, default scale) on (B, heads, N, D) bf16/fp16
// tensors, which tch cannot call (its forward returns SymInts). `q`, `k`, `v` are
// `at::Tensor *` (tch's tensor handles); `*out` receives a new `at::Tensor *` the caller owns.
int da3cs_cudnn_attention(const void *q, const void *k, const void *v, void **out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const auto &query = *static_cast<const at::Tensor *>(q);
    const auto &key = *static_cast<const at::Tensor *>(k);
    const auto &value = *static_cast<const at::Tensor *>(v);
    auto result = at::_scaled_dot_product_cudnn_attention(query, key, value, std::nullopt, false);
    *out = new at::Tensor(std::get<0>(result));
  });
}

// gelu_tanh(x @ weight^T + bias) as one matrix product: cuBLASLt's GELU_BIAS epilogue through
// at::_addmm_activation (tch's binding of that operation passes `use_gelu` as `beta` and never
// sets it). `x` (rows, in), `weight` (out, in), `bias` (out) are `at::Tensor *` of one kind;
// `*out` receives a new (rows, out) `at::Tensor *` the caller owns.
int da3cs_linear_gelu(const void *x, const void *weight, const void *bias, void **out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const at::Tensor &rows = *as_tensor(x);
    const at::Tensor &w = *as_tensor(weight);
    TORCH_CHECK(rows.dim() == 2 && w.dim() == 2 && rows.size(1) == w.size(1), "linear_gelu: expected (rows, in) and (out, in)");
    *out = new at::Tensor(at::_addmm_activation(*as_tensor(bias), rows, w.t(), 1, 1, /*use_gelu=*/true));
  });
}

// q, k, v (B, H, N, 64) for attention from the qkv projection `qkv` (B, N, 3 * H * 64, bf16
// or fp16, contiguous), with the QK-norm LayerNorm (`q_weight`..`k_bias`, 64 fp32 each; all
// null: none) and the RoPE tables `cos`, `sin` ((B, 1, N, 64) fp32; null: none) applied to q
// and k in place in `qkv` (see `attention_inputs` in glue_kernels_source.h). `out[0..3]` receive
// new `at::Tensor *` the caller owns: strided views of `qkv`. Returns 1 (message in `err`) when
// the kernel cannot be compiled here.
int da3cs_attention_inputs(const void *qkv, int64_t heads, const void *q_weight, const void *q_bias,
                           const void *k_weight, const void *k_bias, double eps, const void *cos, const void *sin,
                           void **out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const at::Tensor &x = *as_tensor(qkv);
    TORCH_CHECK(x.is_cuda() && x.dim() == 3 && x.is_contiguous(), "qkv: expected a contiguous (B, N, C) CUDA tensor");
    const int64_t batch = x.size(0), tokens = x.size(1);
    TORCH_CHECK(heads > 0 && x.size(2) == 3 * heads * 64, "qkv: expected 3 * ", heads, " heads of 64 channels, got ", x.size(2));
    TORCH_CHECK(batch * tokens <= INT32_MAX, "qkv: too many tokens");
    const bool norm = q_weight != nullptr;
    TORCH_CHECK(norm == (q_bias != nullptr) && norm == (k_weight != nullptr) && norm == (k_bias != nullptr),
                "QK-norm: all four tensors or none");
    TORCH_CHECK((cos == nullptr) == (sin == nullptr), "RoPE: both tables or none");
    if (norm) {
      for (const void *t : {q_weight, q_bias, k_weight, k_bias}) check_fp32(*as_tensor(t), x, 64, "QK-norm parameter");
    }
    if (cos != nullptr) {
      for (const void *t : {cos, sin}) check_fp32(*as_tensor(t), x, batch * tokens * 64, "RoPE table");
    }
    const int device = x.get_device();
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    if (norm || cos != nullptr) {
      cudaKernel_t kernel = glue_kernel(device, {half_define(x)}, "attention_inputs");
      auto ptr = [](const void *t) -> const void * { return t == nullptr ? nullptr : as_tensor(t)->data_ptr(); };
      void *x_ptr = x.data_ptr();
      const void *qw = ptr(q_weight), *qb = ptr(q_bias), *kw = ptr(k_weight), *kb = ptr(k_bias);
      const void *cos_ptr = ptr(cos), *sin_ptr = ptr(sin);
      float epsilon = static_cast<float>(eps);
      int b = static_cast<int>(batch), n = static_cast<int>(tokens), h = static_cast<int>(heads);
      int rows_per_warp = heads % 4 == 0 ? 4 : (heads % 2 == 0 ? 2 : 1);
      void *args[] = {&x_ptr, &qw, &qb, &kw, &kb, &epsilon, &cos_ptr, &sin_ptr, &b, &n, &h, &rows_per_warp};
      launch(kernel, batch * tokens * 2 * heads / rows_per_warp, device, args);
    }
    // (B, H, N, 64) views of the (B, N, 3, H, 64) projection.
    const auto parts = x.view({batch, tokens, 3, heads, 64});
    for (int64_t i = 0; i < 3; ++i) out[i] = new at::Tensor(parts.select(2, i).transpose(1, 2));
  });
}

// LayerNorm (`weight`, `bias`: C fp32; `eps`) of the fp32 rows of `x` (contiguous, C a multiple
// of 128) into a new tensor of `half_like`'s kind (bf16 or fp16) in `*normed`. With `branch`
// (x's shape, the compute kind) and `gamma` (C fp32): the rows normalised are `x + gamma *
// branch`, returned as a new fp32 tensor in `*updated` (else `*updated` is left alone); see
// `layer_norm` in glue_kernels_source.h. Returns 1 (message in `err`) when the kernel cannot be
// compiled here.
int da3cs_layer_norm(const void *x_handle, const void *branch, const void *gamma, const void *weight, const void *bias,
                     double eps, const void *half_like, void **updated, void **normed, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const at::Tensor &x = *as_tensor(x_handle);
    TORCH_CHECK(x.is_cuda() && x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() >= 1,
                "x: expected a contiguous fp32 CUDA tensor");
    const int64_t channels = x.size(-1);
    TORCH_CHECK(channels > 0 && channels % 128 == 0 && channels <= 4096, "x: ", channels, " channels (a multiple of 128 up to 4096 expected)");
    const int64_t rows = x.numel() / channels;
    check_fp32(*as_tensor(weight), x, channels, "LayerNorm weight");
    check_fp32(*as_tensor(bias), x, channels, "LayerNorm bias");
    const at::Tensor &like = *as_tensor(half_like);
    TORCH_CHECK((branch == nullptr) == (gamma == nullptr), "branch and gamma: both or none");
    std::optional<at::Tensor> x_out;
    if (branch != nullptr) {
      const at::Tensor &update = *as_tensor(branch);
      TORCH_CHECK(update.scalar_type() == like.scalar_type() && update.is_contiguous() && update.sizes() == x.sizes() &&
                      update.device() == x.device(),
                  "branch: expected a contiguous tensor of x's shape in the compute kind");
      check_fp32(*as_tensor(gamma), x, channels, "LayerScale gamma");
      x_out = at::empty_like(x);
    }
    const int device = x.get_device();
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    cudaKernel_t kernel = glue_kernel(device, {half_define(like), "ROW=" + std::to_string(channels)}, "layer_norm");
    auto result = at::empty(x.sizes(), x.options().dtype(like.scalar_type()));
    const void *x_ptr = x.data_ptr();
    const void *branch_ptr = branch == nullptr ? nullptr : as_tensor(branch)->data_ptr();
    const void *gamma_ptr = gamma == nullptr ? nullptr : as_tensor(gamma)->data_ptr();
    void *x_out_ptr = x_out ? x_out->data_ptr() : nullptr;
    const void *w_ptr = as_tensor(weight)->data_ptr(), *b_ptr = as_tensor(bias)->data_ptr();
    float epsilon = static_cast<float>(eps);
    void *out_ptr = result.data_ptr();
    long long row_count = rows;
    void *args[] = {&x_ptr, &branch_ptr, &gamma_ptr, &x_out_ptr, &w_ptr, &b_ptr, &epsilon, &out_ptr, &row_count};
    launch(kernel, rows, device, args);
    if (x_out) *updated = new at::Tensor(std::move(*x_out));
    *normed = new at::Tensor(std::move(result));
  });
}

// `interpolate(x, size=(out_height, out_width), mode="bilinear", align_corners=True)` of the
// channels-last (B, C, H, W) map `x` (bf16 or fp16, C a multiple of 8), as libtorch computes
// it, into a new channels-last tensor in `*out`; with `add` ((1, C, out_height, out_width) in
// x's kind, channels-last), plus `add` rounded as libtorch's add after the upsample. See
// `upsample_bilinear` in glue_kernels_source.h. Returns 1 (message in `err`) when the kernel
// cannot be compiled here.
int da3cs_upsample_bilinear(const void *x_handle, int64_t out_height, int64_t out_width, const void *add, void **out,
                            char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const at::Tensor &x = *as_tensor(x_handle);
    TORCH_CHECK(x.is_cuda() && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast),
                "x: expected a channels-last (B, C, H, W) CUDA tensor");
    const int64_t batch = x.size(0), channels = x.size(1), in_height = x.size(2), in_width = x.size(3);
    TORCH_CHECK(channels > 0 && channels % 8 == 0 && reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0,
                "x: ", channels, " channels (a multiple of 8 expected), 16-byte aligned");
    TORCH_CHECK(in_height > 0 && in_width > 0 && out_height > 0 && out_width > 0, "empty maps");
    TORCH_CHECK(batch <= INT32_MAX && channels <= INT32_MAX && in_height <= INT32_MAX && in_width <= INT32_MAX && out_height <= INT32_MAX &&
                    out_width * channels / 8 <= INT32_MAX,
                "too large a map for the kernel");
    if (add != nullptr) {
      const at::Tensor &a = *as_tensor(add);
      TORCH_CHECK(a.scalar_type() == x.scalar_type() && a.device() == x.device() &&
                      a.sizes() == at::IntArrayRef({1, channels, out_height, out_width}) &&
                      a.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                      reinterpret_cast<uintptr_t>(a.data_ptr()) % 16 == 0,
                  "add: expected a channels-last (1, C, out_height, out_width) tensor of x's kind on its device");
    }
    const int device = x.get_device();
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    cudaKernel_t kernel = glue_kernel(device, {half_define(x)}, "upsample_bilinear");
    auto result = at::empty({batch, channels, out_height, out_width},
                            x.options().memory_format(at::MemoryFormat::ChannelsLast));
    // libtorch's area_pixel_compute_scale with align_corners: in fp32, on the host.
    auto scale = [](int64_t in, int64_t out_size) {
      return out_size > 1 ? static_cast<float>(in - 1) / static_cast<float>(out_size - 1) : 0.0f;
    };
    float rh = scale(in_height, out_height), rw = scale(in_width, out_width);
    const void *x_ptr = x.data_ptr();
    const void *add_ptr = add == nullptr ? nullptr : as_tensor(add)->data_ptr();
    void *out_ptr = result.data_ptr();
    int c = static_cast<int>(channels), h1 = static_cast<int>(in_height), w1 = static_cast<int>(in_width);
    int h2 = static_cast<int>(out_height), w2 = static_cast<int>(out_width);
    int views = static_cast<int>(batch);
    void *args[] = {&x_ptr, &add_ptr, &out_ptr, &c, &h1, &w1, &h2, &w2, &rh, &rw, &views};
    // Threads along x cover an output row; blocks along y take rows in turn.
    constexpr int kThreads = 256;
    const int64_t row_threads = out_width * (channels / 8);
    const int64_t rows = batch * out_height;
    if (rows > 0) {
      const dim3 grid(static_cast<unsigned>((row_threads + kThreads - 1) / kThreads),
                      static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
      const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream();
      C10_CUDA_CHECK(cudaLaunchKernel(reinterpret_cast<const void *>(kernel), grid, dim3(kThreads), args, 0, stream));
    }
    *out = new at::Tensor(std::move(result));
  });
}

// In place on `out` (the unbiased output of a convolution: channels-last (B, C, H, W), bf16 or
// fp16, C a multiple of 8): out = relu?((out + bias) + add), each sum rounded as libtorch's
// separate operations. `bias`: C values of out's kind; `add`: null, out's shape or (1, C, H, W)
// for every view, channels-last, out's kind; `relu`: 0 or 1. See `bias_epilogue` in
// glue_kernels_source.h. Returns 1 (message in `err`) when the kernel cannot be compiled here.
int da3cs_bias_epilogue(const void *out_handle, const void *bias, const void *add, int relu, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const at::Tensor &out = *as_tensor(out_handle);
    TORCH_CHECK(out.is_cuda() && out.dim() == 4 && out.is_contiguous(at::MemoryFormat::ChannelsLast),
                "out: expected a channels-last (B, C, H, W) CUDA tensor");
    const int64_t channels = out.size(1), pixels = out.size(2) * out.size(3);
    TORCH_CHECK(channels > 0 && channels % 8 == 0 && reinterpret_cast<uintptr_t>(out.data_ptr()) % 16 == 0,
                "out: ", channels, " channels (a multiple of 8 expected), 16-byte aligned");
    const int64_t vectors = out.numel() / 8;
    TORCH_CHECK(vectors <= INT32_MAX, "too large a map for the kernel");
    const at::Tensor &b = *as_tensor(bias);
    TORCH_CHECK(b.scalar_type() == out.scalar_type() && b.device() == out.device() && b.is_contiguous() &&
                    b.numel() == channels && reinterpret_cast<uintptr_t>(b.data_ptr()) % 16 == 0,
                "bias: expected ", channels, " contiguous values of out's kind on its device");
    int add_pixels = 1;
    if (add != nullptr) {
      const at::Tensor &a = *as_tensor(add);
      TORCH_CHECK(a.scalar_type() == out.scalar_type() && a.device() == out.device() && a.dim() == 4 &&
                      (a.size(0) == out.size(0) || a.size(0) == 1) && a.size(1) == channels &&
                      a.size(2) == out.size(2) && a.size(3) == out.size(3) &&
                      a.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                      reinterpret_cast<uintptr_t>(a.data_ptr()) % 16 == 0,
                  "add: expected a channels-last tensor of out's shape (or one view of it) and kind");
      add_pixels = static_cast<int>(a.size(0) * pixels);
    }
    const int device = out.get_device();
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    cudaKernel_t kernel = glue_kernel(device, {half_define(out)}, "bias_epilogue");
    void *out_ptr = out.data_ptr();
    const void *bias_ptr = b.data_ptr();
    const void *add_ptr = add == nullptr ? nullptr : as_tensor(add)->data_ptr();
    int c = static_cast<int>(channels), apply_relu = relu != 0 ? 1 : 0, count = static_cast<int>(vectors);
    void *args[] = {&out_ptr, &bias_ptr, &add_ptr, &c, &add_pixels, &apply_relu, &count};
    if (count > 0) launch(kernel, (vectors + 31) / 32, device, args);
  });
}

// In place on the fp32 rows `x` ((M, C) contiguous, C a multiple of 4): x += gamma * branch
// (`branch`: x's shape in bf16 or fp16; `gamma`: C fp32), as addcmul_. See `residual_update` in
// glue_kernels_source.h. Returns 1 (message in `err`) when the kernel cannot be compiled here.
int da3cs_residual_update(const void *x_handle, const void *branch, const void *gamma, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    const at::Tensor &x = *as_tensor(x_handle);
    TORCH_CHECK(x.is_cuda() && x.scalar_type() == at::kFloat && x.is_contiguous() && x.dim() >= 1 &&
                    reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0,
                "x: expected a contiguous, 16-byte aligned fp32 CUDA tensor");
    const int64_t channels = x.size(-1);
    TORCH_CHECK(channels > 0 && channels % 4 == 0, "x: ", channels, " channels (a multiple of 4 expected)");
    const int64_t vectors = x.numel() / 4;
    TORCH_CHECK(vectors <= INT32_MAX, "too many rows for the kernel");
    const at::Tensor &update = *as_tensor(branch);
    TORCH_CHECK(update.is_contiguous() && update.sizes() == x.sizes() && update.device() == x.device() &&
                    reinterpret_cast<uintptr_t>(update.data_ptr()) % 8 == 0,
                "branch: expected a contiguous tensor of x's shape");
    check_fp32(*as_tensor(gamma), x, channels, "LayerScale gamma");
    TORCH_CHECK(reinterpret_cast<uintptr_t>(as_tensor(gamma)->data_ptr()) % 16 == 0, "gamma: not 16-byte aligned");
    const int device = x.get_device();
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    cudaKernel_t kernel = glue_kernel(device, {half_define(update)}, "residual_update");
    void *x_ptr = x.data_ptr();
    const void *branch_ptr = update.data_ptr(), *gamma_ptr = as_tensor(gamma)->data_ptr();
    int c = static_cast<int>(channels), count = static_cast<int>(vectors);
    void *args[] = {&x_ptr, &branch_ptr, &gamma_ptr, &c, &count};
    if (count > 0) launch(kernel, (vectors + 31) / 32, device, args);
  });
}

// Compiles every glue-kernel variant libda3 uses (bf16 and fp16; LayerNorm rows of 384, 768,
// 1024 and 1536 channels) for compute capability `arch` (e.g. 90), without loading them:
// checks the kernels' source where no GPU runs them. Returns 1 (message in `err`) when NVRTC
// is missing or a compile fails.
int da3cs_compile_glue_kernels(int arch, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    for (const char *half : {"HALF_IS_BF16=1", "HALF_IS_BF16=0"}) {
      compile_glue({half}, arch);
      for (int row : {384, 768, 1024, 1536}) compile_glue({half, "ROW=" + std::to_string(row)}, arch);
    }
  });
}

int da3cs_synchronize(int device, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    c10::cuda::device_synchronize();
  });
}


// Where caller memory at device address `ptr` lives, for views handed over in device memory:
// out[0] the CUDA device ordinal, out[1] the start and out[2] the size in bytes of the
// allocation holding `ptr`. An address CUDA does not know as device or managed memory (a host
// pointer, a freed or made-up address) is an error, not a crash: nothing is read from it.
int da3cs_device_memory_range(uint64_t ptr, int64_t *out, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    cudaPointerAttributes attributes{};
    cudaError_t status = cudaPointerGetAttributes(&attributes, reinterpret_cast<const void *>(ptr));
    if (status != cudaSuccess) {
      (void)cudaGetLastError();  // not sticky: clear it so that libtorch does not see it later
      throw std::runtime_error(std::string("not a CUDA address: ") + cudaGetErrorString(status));
    }
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
      throw std::runtime_error("not device or managed memory (host memory goes through da3_infer)");
    }
    // The allocation's extent comes from the driver API (the runtime has no call for it):
    // libcuda is already loaded by the runtime, so this only looks the function up.
    using AddressRange = int (*)(unsigned long long *, size_t *, unsigned long long);
    static AddressRange address_range = [] {
      void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
      if (driver == nullptr) driver = dlopen("libcuda.so.1", RTLD_NOW);
      return driver == nullptr ? nullptr : reinterpret_cast<AddressRange>(dlsym(driver, "cuMemGetAddressRange_v2"));
    }();
    if (address_range == nullptr) throw std::runtime_error("cuMemGetAddressRange_v2 not found in libcuda.so.1");
    // The driver call acts on the current context: the device's primary one.
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(attributes.device));
    unsigned long long base = 0;
    size_t size = 0;
    int driver_status = address_range(&base, &size, static_cast<unsigned long long>(ptr));
    if (driver_status != 0) {
      throw std::runtime_error("cuMemGetAddressRange failed with CUresult " + std::to_string(driver_status));
    }
    out[0] = attributes.device;
    out[1] = static_cast<int64_t>(base);
    out[2] = static_cast<int64_t>(size);
  });
}

// Orders what libtorch queues next on `device` (its current stream) after everything queued on
// the caller's `stream` so far: an event recorded there and waited for on the device, no host
// wait. `stream` is a cudaStream_t of that device (NULL: the legacy default stream).
int da3cs_wait_for_stream(void *stream, int device, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    cudaEvent_t event = nullptr;
    C10_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    cudaError_t recorded = cudaEventRecord(event, static_cast<cudaStream_t>(stream));
    cudaError_t waited = recorded == cudaSuccess
                             ? cudaStreamWaitEvent(c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream(), event, 0)
                             : recorded;
    (void)cudaEventDestroy(event);  // released once the wait is done
    C10_CUDA_CHECK(waited);
  });
}

}  // extern "C"
