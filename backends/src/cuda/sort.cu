// Sort and top-k along one axis by a bitonic network over rows padded to a power of two. The
// order is the CPU backend's total order: values in the requested direction with NaN above every
// number (all NaNs equal, -0 == 0), then the lower original index; padding (index >= len) sorts
// after everything. A total order makes the result independent of the network.

template <typename T> __device__ __forceinline__ int cmp_nan_last(T a, T b) {
    const bool an = is_nan(a), bn = is_nan(b);
    if (an || bn) return an == bn ? 0 : (an ? 1 : -1);
    return a < b ? -1 : (a > b ? 1 : 0);
}

// Whether (va, ia) comes before (vb, ib).
template <typename T> __device__ __forceinline__ bool before(T va, i64 ia, T vb, i64 ib, i64 len, bool desc) {
    const bool pa = ia >= len, pb = ib >= len;
    if (pa || pb) return pa && pb ? ia < ib : pb;
    int c = cmp_nan_last(va, vb);
    if (desc) c = -c;
    return c != 0 ? c < 0 : ia < ib;
}

#define SORT(T)                                                                                               \
    /* keys/idx [rows, p2]: row r, slot j holds element j of the row (j < len) or padding. */                \
    extern "C" __global__ void sort_init_##T(const T* __restrict__ x, T* __restrict__ keys, i64* __restrict__ idx, \
                                             i64 rows, i64 len, i64 p2, Walk w) {                           \
        FOR_EACH(i, rows * p2) {                                                                             \
            const i64 r = i / p2, j = i % p2;                                                                \
            keys[i] = j < len ? x[walk_at(w, 0, r * len + j)] : (T)0;                                        \
            idx[i] = j;                                                                                      \
        }                                                                                                    \
    }                                                                                                        \
    /* One compare-exchange stage (k, j) of the bitonic network on every row. */                              \
    extern "C" __global__ void sort_step_##T(T* keys, i64* idx, i64 rows, i64 p2, i64 k, i64 j, i64 len, i32 desc) { \
        FOR_EACH(i, rows * p2) {                                                                             \
            const i64 t = i % p2, partner = t ^ j;                                                           \
            if (partner <= t) continue;                                                                      \
            const i64 a = i, b = i - t + partner;                                                            \
            const bool up = (t & k) == 0;                                                                    \
            const bool swap = up ? before(keys[b], idx[b], keys[a], idx[a], len, desc != 0)                 \
                                 : before(keys[a], idx[a], keys[b], idx[b], len, desc != 0);                \
            if (swap) {                                                                                      \
                const T kv = keys[a]; keys[a] = keys[b]; keys[b] = kv;                                       \
                const i64 iv = idx[a]; idx[a] = idx[b]; idx[b] = iv;                                         \
            }                                                                                                \
        }                                                                                                    \
    }                                                                                                        \
    /* The first k of each sorted row into the outputs, addressed through operand 0 of the Walk. */          \
    extern "C" __global__ void sort_take_##T(const T* __restrict__ keys, const i64* __restrict__ idx,        \
                                             T* __restrict__ vals, i64* __restrict__ out_idx, i64 rows, i64 p2, \
                                             i64 k, Walk w) {                                                \
        FOR_EACH(i, rows * k) {                                                                              \
            const i64 r = i / k, j = i % k, pos = walk_at(w, 0, i);                                          \
            vals[pos] = keys[r * p2 + j];                                                                    \
            out_idx[pos] = idx[r * p2 + j];                                                                  \
        }                                                                                                    \
    }

SORT(f32)
SORT(f64)
SORT(i64)
SORT(i32)
SORT(u32)
SORT(u8)
SORT(i8)
