// Common definitions prepended to every kernel source (NVRTC has no standard headers here).

typedef long long i64;
typedef unsigned long long u64;
typedef int i32;
typedef unsigned int u32;
typedef unsigned char u8;
typedef signed char i8;
typedef float f32;
typedef double f64;

#define MAX_DIMS 10
#define MAX_OPS 3

// A walk over up to three views that share one (coalesced) shape, passed to kernels by value:
// element `i` (row-major over `shape`) of operand `k` lives at `offset[k] + sum_d idx_d * strides[k][d]`.
struct Walk {
    i64 ndim;
    i64 shape[MAX_DIMS];
    i64 strides[MAX_OPS][MAX_DIMS];
    i64 offset[MAX_OPS];
    i64 contiguous;  // 1 when every operand is contiguous: offset[k] + i
};

// Storage position of element `i` of operand `k`.
__device__ __forceinline__ i64 walk_at(const Walk& w, int k, i64 i) {
    if (w.contiguous) return w.offset[k] + i;
    i64 off = w.offset[k];
    for (int d = (int)w.ndim - 1; d >= 0; --d) {
        i64 s = w.shape[d];
        i64 q = i / s;
        off += (i - q * s) * w.strides[k][d];
        i = q;
    }
    return off;
}

// Storage positions of element `i` of the first `K` operands.
template <int K>
__device__ __forceinline__ void walk_at_n(const Walk& w, i64 i, i64* out) {
    for (int k = 0; k < K; ++k) out[k] = w.offset[k];
    if (w.contiguous) {
        for (int k = 0; k < K; ++k) out[k] += i;
        return;
    }
    for (int d = (int)w.ndim - 1; d >= 0; --d) {
        i64 s = w.shape[d];
        i64 q = i / s;
        i64 r = i - q * s;
        for (int k = 0; k < K; ++k) out[k] += r * w.strides[k][d];
        i = q;
    }
}

// Grid-stride loop over `n` elements.
#define FOR_EACH(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

__device__ __forceinline__ f32 f32_nan() { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ f64 f64_nan() { return __longlong_as_double(0x7ff8000000000000LL); }
__device__ __forceinline__ f32 f32_inf() { return __int_as_float(0x7f800000); }
__device__ __forceinline__ f64 f64_inf() { return __longlong_as_double(0x7ff0000000000000LL); }

template <typename T> struct Num;
template <> struct Num<f32> { static __device__ __forceinline__ f32 nan() { return f32_nan(); } static __device__ __forceinline__ f32 inf() { return f32_inf(); } static const bool is_float = true; };
template <> struct Num<f64> { static __device__ __forceinline__ f64 nan() { return f64_nan(); } static __device__ __forceinline__ f64 inf() { return f64_inf(); } static const bool is_float = true; };
template <> struct Num<i64> { static const bool is_float = false; static const i64 lo = (-9223372036854775807LL - 1); static const i64 hi = 9223372036854775807LL; };
template <> struct Num<i32> { static const bool is_float = false; static const i32 lo = (-2147483647 - 1); static const i32 hi = 2147483647; };
template <> struct Num<u32> { static const bool is_float = false; static const u32 lo = 0; static const u32 hi = 4294967295u; };
template <> struct Num<u8> { static const bool is_float = false; static const u8 lo = 0; static const u8 hi = 255; };
template <> struct Num<i8> { static const bool is_float = false; static const i8 lo = -128; static const i8 hi = 127; };

template <typename T> __device__ __forceinline__ bool is_nan(T x) { return x != x; }

// Rust's `f64 as T`: NaN -> 0, saturating at the bounds, truncating toward zero.
template <typename T> __device__ __forceinline__ T from_f64(f64 v);
template <> __device__ __forceinline__ f32 from_f64<f32>(f64 v) { return (f32)v; }
template <> __device__ __forceinline__ f64 from_f64<f64>(f64 v) { return v; }
template <> __device__ __forceinline__ i64 from_f64<i64>(f64 v) {
    if (v != v) return 0;
    if (v <= -9223372036854775808.0) return Num<i64>::lo;
    if (v >= 9223372036854775808.0) return Num<i64>::hi;
    return (i64)v;
}
#define SAT_FROM_F64(T)                                                  \
    template <> __device__ __forceinline__ T from_f64<T>(f64 v) {        \
        if (v != v) return 0;                                            \
        if (v <= (f64)Num<T>::lo) return Num<T>::lo;                     \
        if (v >= (f64)Num<T>::hi) return Num<T>::hi;                     \
        return (T)v;                                                     \
    }
SAT_FROM_F64(i32)
SAT_FROM_F64(u32)
SAT_FROM_F64(u8)
SAT_FROM_F64(i8)

template <typename T> __device__ __forceinline__ f64 to_f64(T x) { return (f64)x; }

// Records a failing element position in `err[0]` (initialized to all ones); the lowest wins, so
// the host can report the first bad element in row-major order.
__device__ __forceinline__ void report_error(u64* err, i64 pos) {
    if (err != 0) atomicMin(err, (u64)pos);
}
