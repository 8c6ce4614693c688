//! The error type every backend operation returns.

use crate::{DType, Device};
use std::fmt;

/// An error from a backend operation: it names the op and the operands involved.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// Two shapes that must agree (broadcasting, matmul, conv, concat, ...) do not.
    ShapeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's shape.
        lhs: Vec<usize>,
        /// The second operand's shape.
        rhs: Vec<usize>,
    },
    /// Two operands have different dtypes where the op needs one.
    DTypeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's dtype.
        lhs: DType,
        /// The second operand's dtype.
        rhs: DType,
    },
    /// The op does not support this dtype.
    UnsupportedDType {
        /// The operation that failed.
        op: &'static str,
        /// The dtype it was given.
        dtype: DType,
    },
    /// Operands live on different devices.
    DeviceMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's device.
        lhs: Device,
        /// The second operand's device.
        rhs: Device,
    },
    /// An index is outside the dimension it addresses.
    IndexOutOfRange {
        /// The operation that failed.
        op: &'static str,
        /// The offending index.
        index: i64,
        /// The size of the addressed dimension.
        size: usize,
    },
    /// An axis is not a dimension of the operand.
    AxisOutOfRange {
        /// The operation that failed.
        op: &'static str,
        /// The offending axis.
        axis: usize,
        /// The operand's number of dimensions.
        ndim: usize,
    },
    /// Any other invalid argument, with an explanation.
    InvalidArgument {
        /// The operation that failed.
        op: &'static str,
        /// What was wrong.
        msg: String,
    },
    /// The requested device is not available (no driver, no such ordinal, feature off).
    DeviceUnavailable(String),
    /// A failure reported by a device runtime (driver, compiler, library).
    Backend(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument { op, msg: msg.into() }
    }

    /// Shorthand for [`Error::ShapeMismatch`].
    pub fn shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Self {
        Error::ShapeMismatch { op, lhs: lhs.to_vec(), rhs: rhs.to_vec() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shape mismatch between {lhs:?} and {rhs:?}")
            }
            Error::DTypeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: dtype mismatch between {lhs} and {rhs}")
            }
            Error::UnsupportedDType { op, dtype } => write!(f, "{op}: unsupported dtype {dtype}"),
            Error::DeviceMismatch { op, lhs, rhs } => {
                write!(f, "{op}: operands on different devices ({lhs} and {rhs})")
            }
            Error::IndexOutOfRange { op, index, size } => {
                write!(f, "{op}: index {index} is out of range for a dimension of size {size}")
            }
            Error::AxisOutOfRange { op, axis, ndim } => {
                write!(f, "{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
            }
            Error::InvalidArgument { op, msg } => write!(f, "{op}: {msg}"),
            Error::DeviceUnavailable(msg) => write!(f, "device unavailable: {msg}"),
            Error::Backend(msg) => write!(f, "backend error: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// The result type of backend operations.
pub type Result<T> = std::result::Result<T, Error>;
