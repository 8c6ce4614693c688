//! Host storage (`CpuStorage`) and the device-dispatching `Storage`.

use crate::{DType, Device, Element};

/// A flat host buffer of one dtype: the CPU backend's storage and the host side of every copy.
#[derive(Clone, Debug, PartialEq)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f64 elements.
    F64(Vec<f64>),
    /// i64 elements.
    I64(Vec<i64>),
    /// i32 elements.
    I32(Vec<i32>),
    /// u32 elements.
    U32(Vec<u32>),
    /// u8 elements.
    U8(Vec<u8>),
    /// i8 elements.
    I8(Vec<i8>),
}

/// Runs `$body` with `$v` bound to the inner `Vec` of a [`CpuStorage`], whatever its dtype.
#[macro_export]
#[doc(hidden)]
macro_rules! map_cpu {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            $crate::CpuStorage::F32($v) => $body,
            $crate::CpuStorage::F64($v) => $body,
            $crate::CpuStorage::I64($v) => $body,
            $crate::CpuStorage::I32($v) => $body,
            $crate::CpuStorage::U32($v) => $body,
            $crate::CpuStorage::U8($v) => $body,
            $crate::CpuStorage::I8($v) => $body,
        }
    };
}

impl CpuStorage {
    /// Wraps a vector.
    pub fn from_vec<T: Element>(v: Vec<T>) -> Self {
        T::into_cpu(v)
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::I32(_) => DType::I32,
            CpuStorage::U32(_) => DType::U32,
            CpuStorage::U8(_) => DType::U8,
            CpuStorage::I8(_) => DType::I8,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        map_cpu!(self, v => v.len())
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as a slice of `T`, or `None` when the dtype differs.
    pub fn as_slice<T: Element>(&self) -> Option<&[T]> {
        T::cpu_slice(self)
    }

    /// Every element converted to f64 (for tests and printing).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        map_cpu!(self, v => v.iter().map(|x| x.to_f64()).collect())
    }

    /// A zero-filled buffer.
    pub fn zeros(dtype: DType, n: usize) -> Self {
        match dtype {
            DType::F32 => CpuStorage::F32(vec![0.0; n]),
            DType::F64 => CpuStorage::F64(vec![0.0; n]),
            DType::I64 => CpuStorage::I64(vec![0; n]),
            DType::I32 => CpuStorage::I32(vec![0; n]),
            DType::U32 => CpuStorage::U32(vec![0; n]),
            DType::U8 => CpuStorage::U8(vec![0; n]),
            DType::I8 => CpuStorage::I8(vec![0; n]),
        }
    }

    /// A buffer filled with `value` converted to `dtype` (`as` semantics).
    pub fn full(dtype: DType, n: usize, value: f64) -> Self {
        fn f<T: Element>(n: usize, v: f64) -> CpuStorage {
            T::into_cpu(vec![T::from_f64(v); n])
        }
        match dtype {
            DType::F32 => f::<f32>(n, value),
            DType::F64 => f::<f64>(n, value),
            DType::I64 => f::<i64>(n, value),
            DType::I32 => f::<i32>(n, value),
            DType::U32 => f::<u32>(n, value),
            DType::U8 => f::<u8>(n, value),
            DType::I8 => f::<i8>(n, value),
        }
    }

    /// Size in bytes of the elements.
    pub fn size_in_bytes(&self) -> usize {
        self.len() * self.dtype().size_in_bytes()
    }
}

/// Storage on some device: the value a tensor holds, dispatching each primitive to its backend.
#[derive(Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// GPU memory.
    #[cfg(feature = "cuda")]
    Cuda(crate::cuda::CudaStorage),
}

impl Storage {
    /// The device the storage lives on.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.device(),
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.dtype(),
        }
    }

    /// Number of elements in the buffer.
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => s.len(),
        }
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
