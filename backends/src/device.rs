//! Where a tensor's storage lives.

use std::fmt;

/// A compute device: the host CPU or a CUDA GPU by ordinal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The host CPU (the default).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda` (ordinal 0) or `cuda:N`.
    ///
    /// ```
    /// use backends::Device;
    /// assert_eq!(Device::parse("cuda:1").unwrap(), Device::Cuda(1));
    /// assert!(Device::parse("tpu").is_err());
    /// ```
    pub fn parse(s: &str) -> crate::Result<Device> {
        let s = s.trim();
        if s == "cpu" {
            return Ok(Device::Cpu);
        }
        if s == "cuda" {
            return Ok(Device::Cuda(0));
        }
        if let Some(n) = s.strip_prefix("cuda:") {
            if let Ok(n) = n.parse() {
                return Ok(Device::Cuda(n));
            }
        }
        Err(crate::Error::invalid("Device::parse", format!("`{s}` is not a device; expected cpu, cuda or cuda:N")))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Whether a CUDA GPU can be used: the crate was built with the `cuda` feature and the driver,
/// probed at run time, reports at least one GPU. Never panics (false without a driver).
pub fn cuda_is_available() -> bool {
    #[cfg(feature = "cuda")]
    {
        crate::cuda::cuda_is_available()
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}
