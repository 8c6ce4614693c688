// Reductions, arg-reductions and softmax. The input view is permuted so the reduced dimensions
// come last: output `o` reduces linear elements `o*block .. (o+1)*block` of that view (operand 0
// of the Walk). One block of RTHREADS threads per output (grid-stride over outputs); the threads
// stride over the output's elements and combine in shared memory.

#define RTHREADS 256

// Tree reduction of one value per thread with `combine`; every thread gets the result.
template <typename A, typename F> __device__ __forceinline__ A block_reduce(A v, A* sh, F combine) {
    const int t = threadIdx.x;
    sh[t] = v;
    __syncthreads();
    for (int s = RTHREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] = combine(sh[t], sh[t + s]);
        __syncthreads();
    }
    A r = sh[0];
    __syncthreads();
    return r;
}

struct AddF64 { __device__ f64 operator()(f64 a, f64 b) const { return a + b; } };
struct AddU64 { __device__ u64 operator()(u64 a, u64 b) const { return a + b; } };

// Sum (0), mean (1) or variance (2, with `correction`) of float elements, accumulated in f64.
template <typename T> __device__ void reduce_float(const T* x, T* y, i64 n_out, i64 block, const Walk& w, int op, i64 correction) {
    __shared__ f64 sh[RTHREADS];
    for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {
        f64 acc = 0;
        for (i64 j = threadIdx.x; j < block; j += RTHREADS) acc += (f64)x[walk_at(w, 0, o * block + j)];
        f64 sum = block_reduce(acc, sh, AddF64());
        f64 mean = sum / (f64)block;
        f64 r = op == 0 ? sum : mean;
        if (op == 2) {
            f64 ss = 0;
            for (i64 j = threadIdx.x; j < block; j += RTHREADS) {
                f64 d = (f64)x[walk_at(w, 0, o * block + j)] - mean;
                ss += d * d;
            }
            ss = block_reduce(ss, sh, AddF64());
            f64 denom = (f64)block - (f64)correction;
            r = denom > 0 ? ss / denom : f64_nan();
        }
        if (threadIdx.x == 0) y[o] = (T)r;
    }
}

// Wrapping integer sum.
template <typename T> __device__ void reduce_int_sum(const T* x, T* y, i64 n_out, i64 block, const Walk& w) {
    __shared__ u64 sh[RTHREADS];
    for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {
        u64 acc = 0;
        for (i64 j = threadIdx.x; j < block; j += RTHREADS) acc += (u64)x[walk_at(w, 0, o * block + j)];
        u64 s = block_reduce(acc, sh, AddU64());
        if (threadIdx.x == 0) y[o] = (T)s;
    }
}

// Max or min; NaN wins (propagates).
template <typename T> struct Extreme {
    bool is_max;
    __device__ T operator()(T a, T b) const {
        if (is_nan(a)) return a;
        if (is_nan(b)) return b;
        return is_max ? (b > a ? b : a) : (b < a ? b : a);
    }
};

template <typename T> __device__ void reduce_extreme(const T* x, T* y, i64 n_out, i64 block, const Walk& w, bool is_max) {
    __shared__ T sh[RTHREADS];
    Extreme<T> f{is_max};
    for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {
        // Start from the output's first element (blocks are never empty here).
        T acc = x[walk_at(w, 0, o * block)];
        for (i64 j = threadIdx.x; j < block; j += RTHREADS) acc = f(acc, x[walk_at(w, 0, o * block + j)]);
        T r = block_reduce(acc, sh, f);
        if (threadIdx.x == 0) y[o] = r;
    }
}

// (value, index) candidates for argmax/argmin: the first NaN wins, then the extreme value, then
// the lowest index.
template <typename T> struct ArgBest {
    T v;
    i64 i;
};
template <typename T> struct ArgCombine {
    bool is_max;
    __device__ ArgBest<T> operator()(ArgBest<T> a, ArgBest<T> b) const {
        if (a.i < 0) return b;
        if (b.i < 0) return a;
        bool an = is_nan(a.v), bn = is_nan(b.v);
        if (an && bn) return a.i < b.i ? a : b;
        if (an) return a;
        if (bn) return b;
        if (is_max ? a.v > b.v : a.v < b.v) return a;
        if (is_max ? b.v > a.v : b.v < a.v) return b;
        return a.i < b.i ? a : b;
    }
};

template <typename T> __device__ void arg_reduce(const T* x, i64* y, i64 n_out, i64 block, const Walk& w, bool is_max) {
    __shared__ ArgBest<T> sh[RTHREADS];
    ArgCombine<T> f{is_max};
    for (i64 o = blockIdx.x; o < n_out; o += gridDim.x) {
        ArgBest<T> acc{x[walk_at(w, 0, o * block)], -1};
        for (i64 j = threadIdx.x; j < block; j += RTHREADS) {
            ArgBest<T> c{x[walk_at(w, 0, o * block + j)], j};
            acc = f(acc, c);
        }
        ArgBest<T> r = block_reduce(acc, sh, f);
        if (threadIdx.x == 0) y[o] = r.i;
    }
}

#define REDUCE_COMMON(T)                                                                                       \
    extern "C" __global__ void reduce_extreme_##T(const T* __restrict__ x, T* __restrict__ y, i64 n_out, i64 block, \
                                                  Walk w, i32 is_max) {                                        \
        reduce_extreme<T>(x, y, n_out, block, w, is_max != 0);                                                 \
    }                                                                                                          \
    extern "C" __global__ void arg_reduce_##T(const T* __restrict__ x, i64* __restrict__ y, i64 n_out, i64 block, \
                                              Walk w, i32 is_max) {                                            \
        arg_reduce<T>(x, y, n_out, block, w, is_max != 0);                                                     \
    }

#define REDUCE_FLOAT(T)                                                                                        \
    REDUCE_COMMON(T)                                                                                           \
    extern "C" __global__ void reduce_float_##T(const T* __restrict__ x, T* __restrict__ y, i64 n_out, i64 block, \
                                                Walk w, i32 op, i64 correction) {                              \
        reduce_float<T>(x, y, n_out, block, w, op, correction);                                                \
    }

#define REDUCE_INT(T)                                                                                          \
    REDUCE_COMMON(T)                                                                                           \
    extern "C" __global__ void reduce_sum_##T(const T* __restrict__ x, T* __restrict__ y, i64 n_out, i64 block, \
                                              Walk w) {                                                        \
        reduce_int_sum<T>(x, y, n_out, block, w);                                                              \
    }

REDUCE_FLOAT(f32)
REDUCE_FLOAT(f64)
REDUCE_INT(i64)
REDUCE_INT(i32)
REDUCE_INT(u32)
REDUCE_INT(u8)
REDUCE_INT(i8)

// Softmax (or log-softmax) of each row: operand 0 of the Walk reads the input with the axis last,
// operand 1 addresses the (contiguous, original-order) output the same way. The maximum is
// subtracted first; NaN propagates; an infinite maximum shifts by 0 (as the CPU backend).
struct MaxNan {
    template <typename T> __device__ T operator()(T a, T b) const {
        if (is_nan(a)) return a;
        if (is_nan(b)) return b;
        return b > a ? b : a;
    }
};
struct AddT {
    template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};
__device__ __forceinline__ bool finite(f32 x) { return isfinite(x); }
__device__ __forceinline__ bool finite(f64 x) { return isfinite(x); }
__device__ __forceinline__ f32 s_exp(f32 x) { return expf(x); }
__device__ __forceinline__ f64 s_exp(f64 x) { return exp(x); }
__device__ __forceinline__ f32 s_log(f32 x) { return logf(x); }
__device__ __forceinline__ f64 s_log(f64 x) { return log(x); }

template <typename T> __device__ void softmax(const T* x, T* y, i64 rows, i64 len, const Walk& w, bool log) {
    __shared__ T sh[RTHREADS];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        T m = -Num<T>::inf();
        for (i64 j = threadIdx.x; j < len; j += RTHREADS) m = MaxNan()(m, x[walk_at(w, 0, r * len + j)]);
        m = block_reduce(m, sh, MaxNan());
        const T shift = finite(m) ? m : (T)0;
        T s = 0;
        for (i64 j = threadIdx.x; j < len; j += RTHREADS) s += s_exp(x[walk_at(w, 0, r * len + j)] - shift);
        s = block_reduce(s, sh, AddT());
        const T lse = s_log(s), inv = (T)1 / s;
        for (i64 j = threadIdx.x; j < len; j += RTHREADS) {
            i64 o[2];
            walk_at_n<2>(w, r * len + j, o);
            T v = x[o[0]] - shift;
            y[o[1]] = log ? v - lse : s_exp(v) * inv;
        }
    }
}

extern "C" __global__ void softmax_f32(const f32* __restrict__ x, f32* __restrict__ y, i64 rows, i64 len, Walk w, i32 log) {
    softmax<f32>(x, y, rows, len, w, log != 0);
}
extern "C" __global__ void softmax_f64(const f64* __restrict__ x, f64* __restrict__ y, i64 rows, i64 len, Walk w, i32 log) {
    softmax<f64>(x, y, rows, len, w, log != 0);
}
