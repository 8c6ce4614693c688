// Elementwise kernels: unary maps, binary ops (tensor-tensor and tensor-scalar), comparisons and
// select. Inputs are read through a Walk (strided, broadcast views); outputs are contiguous.
// Ops are switched on by the names `cuda/op_codes.rs` defines from the Rust op enums (`UNARY_EXP`,
// `BINARY_ADD`, `CMP_LT`, ...); a test checks that each op is handled here.

#define MATH1(NAME, F, D) \
    __device__ __forceinline__ f32 NAME(f32 x) { return F(x); } \
    __device__ __forceinline__ f64 NAME(f64 x) { return D(x); }
MATH1(m_abs, fabsf, fabs)
MATH1(m_exp, expf, exp)
MATH1(m_log, logf, log)
MATH1(m_sqrt, sqrtf, sqrt)
MATH1(m_sin, sinf, sin)
MATH1(m_cos, cosf, cos)
MATH1(m_tanh, tanhf, tanh)
MATH1(m_erf, erff, erf)
MATH1(m_atan, atanf, atan)
MATH1(m_asinh, asinhf, asinh)
MATH1(m_rint, rintf, rint)
MATH1(m_floor, floorf, floor)
MATH1(m_ceil, ceilf, ceil)
__device__ __forceinline__ f32 m_pow(f32 x, f32 y) { return powf(x, y); }
__device__ __forceinline__ f64 m_pow(f64 x, f64 y) { return pow(x, y); }

template <typename T> __device__ __forceinline__ T sigmoid(T x) {
    if (x >= (T)0) return (T)1 / ((T)1 + m_exp(-x));
    T e = m_exp(x);
    return e / ((T)1 + e);
}

template <typename T> __device__ __forceinline__ T unary_float(int op, T x, f64 p0, f64 p1) {
    const T zero = 0, one = 1, half = 0.5;
    switch (op) {
        case UNARY_NEG: return -x;
        case UNARY_ABS: return m_abs(x);
        case UNARY_EXP: return m_exp(x);
        case UNARY_LOG: return m_log(x);
        case UNARY_SQRT: return m_sqrt(x);
        case UNARY_RSQRT: return one / m_sqrt(x);
        case UNARY_RECIP: return one / x;
        case UNARY_SQUARE: return x * x;
        case UNARY_SIN: return m_sin(x);
        case UNARY_COS: return m_cos(x);
        case UNARY_TANH: return m_tanh(x);
        case UNARY_SIGMOID: return sigmoid(x);
        case UNARY_RELU: return x < zero ? zero : x;
        case UNARY_RELU6: return x < zero ? zero : (x > (T)6 ? (T)6 : x);
        case UNARY_ERF: return m_erf(x);
        case UNARY_GELU: return half * x * (one + m_erf(x * (T)0.70710678118654752440));
        case UNARY_GELU_TANH: {
            const T c = (T)0.79788456080286535588;
            return half * x * (one + m_tanh(c * (x + (T)0.044715 * x * x * x)));
        }
        case UNARY_SILU: return x * sigmoid(x);
        case UNARY_SIGN: return x > zero ? one : (x < zero ? -one : x * zero);
        case UNARY_ROUND: return m_rint(x);
        case UNARY_FLOOR: return m_floor(x);
        case UNARY_CEIL: return m_ceil(x);
        case UNARY_CLAMP: {
            T lo = (T)p0, hi = (T)p1;
            return x < lo ? lo : (x > hi ? hi : x);
        }
        case UNARY_POW_SCALAR: return p0 == 2.0 ? x * x : m_pow(x, (T)p0);
        case UNARY_ATAN: return m_atan(x);
        case UNARY_ASINH: return m_asinh(x);
    }
    return x;
}

// Integer ops wrap like Rust's wrapping_* (computed in u64 and truncated).
template <typename T> __device__ __forceinline__ T unary_int(int op, T x, f64 p0, f64 p1) {
    switch (op) {
        case UNARY_NEG: return (T)(0ull - (u64)x);
        case UNARY_ABS: return x < (T)0 ? (T)(0ull - (u64)x) : x;
        case UNARY_SQUARE: return (T)((u64)x * (u64)x);
        case UNARY_RELU: return x < (T)0 ? (T)0 : x;
        case UNARY_SIGN: return x > (T)0 ? (T)1 : (x < (T)0 ? (T)-1 : (T)0);
        case UNARY_CLAMP: {
            f64 v = (f64)x;
            if (v < p0) return from_f64<T>(ceil(p0));
            if (v > p1) return from_f64<T>(floor(p1));
            return x;
        }
    }
    return x;
}

template <typename T, bool F> struct Ops;
template <typename T> struct Ops<T, true> {
    static __device__ __forceinline__ T unary(int op, T x, f64 p0, f64 p1) { return unary_float(op, x, p0, p1); }
    static __device__ __forceinline__ T binary(int op, T a, T b, u64* err, i64 i) {
        switch (op) {
            case BINARY_ADD: return a + b;
            case BINARY_SUB: return a - b;
            case BINARY_MUL: return a * b;
            case BINARY_DIV: return a / b;
            case BINARY_MAXIMUM: return (is_nan(a) || is_nan(b)) ? Num<T>::nan() : (a >= b ? a : b);
            case BINARY_MINIMUM: return (is_nan(a) || is_nan(b)) ? Num<T>::nan() : (a <= b ? a : b);
            case BINARY_POW: return m_pow(a, b);
            // Activation backward ops: a is the output gradient, b the activation's input.
            case BINARY_RELU_BACKWARD: return b > (T)0 ? a : (T)0;
            case BINARY_RELU6_BACKWARD: return (b > (T)0 && b < (T)6) ? a : (T)0;
            case BINARY_GELU_BACKWARD: {
                T cdf = (T)0.5 * ((T)1 + m_erf(b * (T)0.70710678118654752440));
                T pdf = m_exp((T)-0.5 * b * b) * (T)0.39894228040143267794;
                return a * (cdf + b * pdf);
            }
            case BINARY_GELU_TANH_BACKWARD: {
                const T c = (T)0.79788456080286535588, k = (T)0.044715;
                T t = m_tanh(c * b * ((T)1 + k * b * b));
                T du = c * ((T)1 + (T)3 * k * b * b);
                return a * ((T)0.5 * ((T)1 + t) + (T)0.5 * b * ((T)1 - t * t) * du);
            }
            case BINARY_SILU_BACKWARD: {
                T s = sigmoid(b);
                return a * s * ((T)1 + b * ((T)1 - s));
            }
            case BINARY_ATAN_BACKWARD: return a / ((T)1 + b * b);
        }
        return a;
    }
};
template <typename T> struct Ops<T, false> {
    static __device__ __forceinline__ T unary(int op, T x, f64 p0, f64 p1) { return unary_int(op, x, p0, p1); }
    static __device__ __forceinline__ T binary(int op, T a, T b, u64* err, i64 i) {
        switch (op) {
            case BINARY_ADD: return (T)((u64)a + (u64)b);
            case BINARY_SUB: return (T)((u64)a - (u64)b);
            case BINARY_MUL: return (T)((u64)a * (u64)b);
            case BINARY_DIV:
                // Rust's checked_div: division by zero and MIN / -1 are errors.
                if (b == (T)0 || (Num<T>::lo != 0 && a == Num<T>::lo && b == (T)-1)) {
                    report_error(err, i);
                    return (T)0;
                }
                return a / b;
            case BINARY_MAXIMUM: return a >= b ? a : b;
            case BINARY_MINIMUM: return a <= b ? a : b;
        }
        return a;
    }
};

template <typename T> __device__ __forceinline__ u8 compare(int op, T a, T b) {
    switch (op) {
        case CMP_EQ: return a == b;
        case CMP_NE: return a != b;
        case CMP_LT: return a < b;
        case CMP_LE: return a <= b;
        case CMP_GT: return a > b;
        case CMP_GE: return a >= b;
    }
    return 0;
}

#define ELEMENTWISE(T)                                                                                    \
    extern "C" __global__ void unary_##T(const T* __restrict__ x, T* __restrict__ y, i64 n, Walk w, i32 op, \
                                         f64 p0, f64 p1) {                                                \
        FOR_EACH(i, n) { y[i] = Ops<T, Num<T>::is_float>::unary(op, x[walk_at(w, 0, i)], p0, p1); }       \
    }                                                                                                     \
    extern "C" __global__ void binary_##T(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y, \
                                          i64 n, Walk w, i32 op, u64* err) {                              \
        FOR_EACH(i, n) {                                                                                  \
            i64 o[2];                                                                                     \
            walk_at_n<2>(w, i, o);                                                                        \
            y[i] = Ops<T, Num<T>::is_float>::binary(op, a[o[0]], b[o[1]], err, i);                        \
        }                                                                                                 \
    }                                                                                                     \
    extern "C" __global__ void binary_scalar_##T(const T* __restrict__ a, T* __restrict__ y, i64 n, Walk w, \
                                                 i32 op, f64 scalar, i32 scalar_first, u64* err) {        \
        const T s = from_f64<T>(scalar);                                                                  \
        FOR_EACH(i, n) {                                                                                  \
            T x = a[walk_at(w, 0, i)];                                                                    \
            y[i] = scalar_first ? Ops<T, Num<T>::is_float>::binary(op, s, x, err, i)                      \
                                : Ops<T, Num<T>::is_float>::binary(op, x, s, err, i);                     \
        }                                                                                                 \
    }                                                                                                     \
    extern "C" __global__ void compare_##T(const T* __restrict__ a, const T* __restrict__ b, u8* __restrict__ y, \
                                           i64 n, Walk w, i32 op) {                                       \
        FOR_EACH(i, n) {                                                                                  \
            i64 o[2];                                                                                     \
            walk_at_n<2>(w, i, o);                                                                        \
            y[i] = compare(op, a[o[0]], b[o[1]]);                                                         \
        }                                                                                                 \
    }                                                                                                     \
    extern "C" __global__ void compare_scalar_##T(const T* __restrict__ a, u8* __restrict__ y, i64 n, Walk w, \
                                                  i32 op, f64 scalar) {                                   \
        const T s = from_f64<T>(scalar);                                                                  \
        FOR_EACH(i, n) {                                                                                  \
            T x = a[walk_at(w, 0, i)];                                                                    \
            /* Integers compare in f64 so that a fractional scalar behaves mathematically. */            \
            y[i] = Num<T>::is_float ? compare(op, x, s) : compare(op, (f64)x, scalar);                    \
        }                                                                                                 \
    }                                                                                                     \
    extern "C" __global__ void where_##T(const u8* __restrict__ c, const T* __restrict__ a,               \
                                         const T* __restrict__ b, T* __restrict__ y, i64 n, Walk w) {     \
        FOR_EACH(i, n) {                                                                                  \
            i64 o[3];                                                                                     \
            walk_at_n<3>(w, i, o);                                                                        \
            y[i] = c[o[0]] ? a[o[1]] : b[o[2]];                                                           \
        }                                                                                                 \
    }

ELEMENTWISE(f32)
ELEMENTWISE(f64)
ELEMENTWISE(i64)
ELEMENTWISE(i32)
ELEMENTWISE(u32)
ELEMENTWISE(u8)
ELEMENTWISE(i8)
