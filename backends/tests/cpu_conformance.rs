//! The backend conformance suite run against the CPU backend.

use backends::conformance as c;
use backends::CpuBackend;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                c::$name(&CpuBackend);
            }
        )*
    };
}

conformance!(
    check_unary_float,
    check_unary_int,
    check_binary,
    check_binary_errors,
    check_compare_where,
    check_copy_cast,
    check_concat_pad,
    check_reduce,
    check_arg_reduce,
    check_softmax,
    check_matmul,
    check_conv2d,
    check_conv2d_thread_counts,
    check_conv2d_large,
    check_conv2d_i8,
    check_conv2d_errors,
    check_max_pool2d,
    check_avg_pool2d,
    check_adaptive_avg_pool2d,
    check_pool2d_errors,
    check_gather,
    check_scatter_add,
    check_index_select,
    check_sort,
    check_topk,
    check_random_streams,
    check_random_matches_reference,
    check_random_distributions,
    check_rfft2,
    check_irfft2,
    check_int8_matmul,
    check_ternary_conv1x1,
);
