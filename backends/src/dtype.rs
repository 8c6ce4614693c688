//! Runtime element types and the Rust types that back them.

use std::fmt;

/// The element type of a tensor, chosen at run time.
///
/// `F32` is the training type; `F64` exists so gradients can be checked by finite differences
/// through the same code path. Integer types hold indices (`I64`, `U32`), masks and images (`U8`),
/// quantized values (`I8`) and their accumulators (`I32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
    /// 64-bit signed integer (indices).
    I64,
    /// 32-bit signed integer (int8 GEMM accumulators).
    I32,
    /// 32-bit unsigned integer (indices).
    U32,
    /// 8-bit unsigned integer (masks, comparison results, images).
    U8,
    /// 8-bit signed integer (quantized values).
    I8,
}

impl DType {
    /// Every dtype, in declaration order.
    pub const ALL: [DType; 7] = [DType::F32, DType::F64, DType::I64, DType::I32, DType::U32, DType::U8, DType::I8];

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::U8 | DType::I8 => 1,
        }
    }

    /// Whether this is a floating-point type.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Whether this is an integer type usable as an index (`I64`, `I32`, `U32`).
    pub fn is_index(self) -> bool {
        matches!(self, DType::I64 | DType::I32 | DType::U32)
    }

    /// The lowercase name used in messages and file formats (`"f32"`, `"i64"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::U32 => "u32",
            DType::U8 => "u8",
            DType::I8 => "i8",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be the element of a tensor.
pub trait Element: Copy + Send + Sync + Default + PartialOrd + fmt::Debug + 'static + num_traits::NumCast {
    /// The dtype this type corresponds to.
    const DTYPE: DType;
    /// Converts to f64 (exact for every type except i64 beyond 2^53).
    fn to_f64(self) -> f64;
    /// Converts from f64 with Rust's `as` semantics (saturating, truncating toward zero).
    fn from_f64(v: f64) -> Self;
    /// Wraps a host vector as CPU storage.
    fn into_cpu(v: Vec<Self>) -> crate::CpuStorage;
    /// The host slice of CPU storage of this element type, or `None` for another dtype.
    fn cpu_slice(s: &crate::CpuStorage) -> Option<&[Self]>;
}

macro_rules! element {
    ($t:ty, $d:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn into_cpu(v: Vec<Self>) -> crate::CpuStorage {
                crate::CpuStorage::$d(v)
            }
            #[inline(always)]
            fn cpu_slice(s: &crate::CpuStorage) -> Option<&[Self]> {
                match s {
                    crate::CpuStorage::$d(v) => Some(v),
                    _ => None,
                }
            }
        }
    };
}
element!(f32, F32);
element!(f64, F64);
element!(i64, I64);
element!(i32, I32);
element!(u32, U32);
element!(u8, U8);
element!(i8, I8);

/// A floating-point element type (f32 or f64): the types kernels with transcendental math accept.
pub trait FloatElement: Element + num_traits::Float + std::iter::Sum + std::ops::AddAssign {
    /// Exact conversion from f32 constants.
    fn from_f32(v: f32) -> Self;
}

impl FloatElement for f32 {
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl FloatElement for f64 {
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v as f64
    }
}
