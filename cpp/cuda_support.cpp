// libda3_cuda_support: the few libtorch CUDA facilities the tch crate does not expose
// (CUDA graphs, caching-allocator statistics, device capabilities), behind a C ABI.
//
// It is a separate shared library, opened by libda3 at run time after libtorch's CUDA
// backend (src/cuda_support.rs), so that libda3 itself keeps loading on machines without
// CUDA. No C++ exception crosses this boundary: every function returns 0 on success or -1
// with a message written into `err` (always NUL-terminated, truncated to `err_len`).
#include <ATen/cuda/CUDAGraph.h>
#include <ATen/ops/_scaled_dot_product_cudnn_attention.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace {

void write_error(char *err, size_t err_len, const char *what) {
  if (err == nullptr || err_len == 0) return;
  std::strncpy(err, what, err_len - 1);
  err[err_len - 1] = '\0';
}

template <typename F>
int guarded(char *err, size_t err_len, F &&body) {
  try {
    body();
    return 0;
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

}  // namespace

extern "C" {

// Version of this C ABI; libda3 refuses a library with another one.
int da3cs_abi_version(void) { return 2; }

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

int da3cs_synchronize(int device, char *err, size_t err_len) {
  return guarded(err, err_len, [&] {
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
    c10::cuda::device_synchronize();
  });
}

}  // extern "C"
