//! `f32_avx512!`: an f32 entry point to a generic `#[inline(always)]` kernel that runs a copy of
//! it compiled with AVX-512 (and FMA) enabled when the CPU has them, the default build otherwise.
//! The crate is built for baseline x86-64, so generic loops vectorize 4 lanes wide; inlined into
//! the AVX-512 copy, the same loops run 16 lanes at a time.

/// `$vis fn $name(args) -> ret` for f32 arguments, calling `$generic::<f32>(args)` through a
/// copy built with `avx512f,avx512vl,avx2,fma` when the CPU has AVX-512F. `$generic` must be
/// `#[inline(always)]` (so that it is compiled into the copy), and should loop with plain `for`
/// loops: a `for_each`, `fold` or `collect` adaptor over its rows may stay an out-of-line call
/// compiled for baseline x86-64, which then runs the whole body 4 lanes wide.
/// `backends/benches/check_avx512_copies.sh` lists, for every copy in a release binary, its
/// AVX-512 instructions and the calls it makes.
macro_rules! f32_avx512 {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $ret:ty)? => $generic:ident) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($a: $t),*) $(-> $ret)? {
            /// # Safety
            /// The CPU must have AVX-512F.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            unsafe fn built($($a: $t),*) $(-> $ret)? {
                $generic::<f32>($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::cpu::isa::use_avx512() {
                // SAFETY: the CPU has AVX-512F (checked above).
                return unsafe { built($($a),*) };
            }
            $generic::<f32>($($a),*)
        }
    };
}
