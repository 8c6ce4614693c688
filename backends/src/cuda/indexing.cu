// Gather / index-select (one kernel), scatter-add, and index conversion with range checks.

// out[i] = idx[view i] as i64; an index outside 0..size records position i in `err`.
#define INDEX_CHECK(I)                                                                                   \
    extern "C" __global__ void index_check_##I(const I* __restrict__ idx, i64* __restrict__ out, i64 n, Walk w, \
                                               i64 size, u64* err) {                                     \
        FOR_EACH(i, n) {                                                                                 \
            const i64 v = (i64)idx[walk_at(w, 0, i)];                                                    \
            out[i] = v;                                                                                  \
            if (v < 0 || v >= size) report_error(err, i);                                                \
        }                                                                                                \
    }
INDEX_CHECK(i64)
INDEX_CHECK(i32)
INDEX_CHECK(u32)

// y[i] = x[base(i) + idx[index view i] * axis_stride]: operand 0 walks x re-strided to the output
// shape with stride 0 along the axis, operand 1 walks the (contiguous, checked) indices.
#define GATHER(NAME, T)                                                                                   \
    extern "C" __global__ void NAME(const T* __restrict__ x, const i64* __restrict__ idx, T* __restrict__ y, \
                                    i64 n, Walk w, i64 axis_stride) {                                     \
        FOR_EACH(i, n) {                                                                                  \
            i64 o[2];                                                                                     \
            walk_at_n<2>(w, i, o);                                                                        \
            y[i] = x[o[0] + idx[o[1]] * axis_stride];                                                     \
        }                                                                                                 \
    }
GATHER(gather_1, u8)
GATHER(gather_4, u32)
GATHER(gather_8, u64)

// Atomic adds for every dtype; bytes go through a compare-and-swap on their aligned 32-bit word.
__device__ __forceinline__ void atomic_add(f32* p, f32 v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(f64* p, f64 v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(i32* p, i32 v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(u32* p, u32 v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(i64* p, i64 v) { atomicAdd((u64*)p, (u64)v); }
__device__ __forceinline__ void atomic_add_byte(u8* p, u8 v) {
    u32* word = (u32*)((u64)p & ~(u64)3);
    const u32 shift = ((u64)p & 3) * 8;
    u32 old = *word, assumed;
    do {
        assumed = old;
        const u32 byte = ((assumed >> shift) + v) & 0xff;
        old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (byte << shift));
    } while (assumed != old);
}
__device__ __forceinline__ void atomic_add(u8* p, u8 v) { atomic_add_byte(p, v); }
__device__ __forceinline__ void atomic_add(i8* p, i8 v) { atomic_add_byte((u8*)p, (u8)v); }

// out[base(i) + idx[i] * axis_stride] += src[src view i] over the index shape: operand 0 walks the
// output re-strided (stride 0 along the axis), operand 1 the source view.
#define SCATTER_ADD(T)                                                                                   \
    extern "C" __global__ void scatter_add_##T(T* out, const i64* __restrict__ idx, const T* __restrict__ src, \
                                               i64 n, Walk w, i64 axis_stride) {                         \
        FOR_EACH(i, n) {                                                                                 \
            i64 o[2];                                                                                    \
            walk_at_n<2>(w, i, o);                                                                       \
            atomic_add(out + o[0] + idx[i] * axis_stride, src[o[1]]);                                    \
        }                                                                                                \
    }
SCATTER_ADD(f32)
SCATTER_ADD(f64)
SCATTER_ADD(i64)
SCATTER_ADD(i32)
SCATTER_ADD(u32)
SCATTER_ADD(u8)
SCATTER_ADD(i8)
