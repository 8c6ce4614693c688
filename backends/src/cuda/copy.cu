// Data movement: strided copies (by element size, whatever the dtype), dtype casts, fills.

// dst[view 1] = src[view 0], elementwise over the walk's shape.
#define COPY(NAME, T)                                                                          \
    extern "C" __global__ void NAME(const T* __restrict__ src, T* __restrict__ dst, i64 n, Walk w) { \
        FOR_EACH(i, n) {                                                                       \
            i64 o[2];                                                                          \
            walk_at_n<2>(w, i, o);                                                             \
            dst[o[1]] = src[o[0]];                                                             \
        }                                                                                      \
    }
COPY(copy_1, u8)
COPY(copy_4, u32)
COPY(copy_8, u64)

// dst[i] = value for i < n.
#define FILL(NAME, T)                                                        \
    extern "C" __global__ void NAME(T* __restrict__ dst, i64 n, T value) {  \
        FOR_EACH(i, n) { dst[i] = value; }                                   \
    }
FILL(fill_1, u8)
FILL(fill_4, u32)
FILL(fill_8, u64)

// Conversions with Rust's `as` semantics as the CPU backend applies them: to a float type by
// rounding; to an integer type by saturating (NaN -> 0) through f64, which is exact whenever the
// result is in range.
template <typename A, typename B> struct Cast {
    static __device__ __forceinline__ B run(A x) { return from_f64<B>(to_f64(x)); }
};
template <typename A> struct Cast<A, f32> {
    static __device__ __forceinline__ f32 run(A x) { return (f32)x; }
};
template <typename A> struct Cast<A, f64> {
    static __device__ __forceinline__ f64 run(A x) { return (f64)x; }
};

#define CAST(A, B)                                                                                  \
    extern "C" __global__ void cast_##A##_##B(const A* __restrict__ src, B* __restrict__ dst, i64 n, Walk w) { \
        FOR_EACH(i, n) {                                                                            \
            i64 o[2];                                                                               \
            walk_at_n<2>(w, i, o);                                                                  \
            dst[o[1]] = Cast<A, B>::run(src[o[0]]);                                                 \
        }                                                                                           \
    }
#define CAST_FROM(A) CAST(A, f32) CAST(A, f64) CAST(A, i64) CAST(A, i32) CAST(A, u32) CAST(A, u8) CAST(A, i8)
CAST_FROM(f32)
CAST_FROM(f64)
CAST_FROM(i64)
CAST_FROM(i32)
CAST_FROM(u32)
CAST_FROM(u8)
CAST_FROM(i8)
