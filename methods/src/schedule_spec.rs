//! Parsing the `--schedule` text into a learning-rate schedule over optimizer steps.
//!
//! Grammar: `[warmup=N,]KIND` with KIND one of `constant`, `cosine`, `onecycle`,
//! `step:EPOCHS:GAMMA`, `multistep:E1,E2,...:GAMMA`. Epoch counts are converted to steps.

use autograd::{Error, Result};
use layers::schedule::{Constant, Cosine, MultiStep, OneCycle, Schedule, StepDecay, Warmup};

fn bad(spec: &str, why: &str) -> Error {
    Error::invalid(
        "--schedule",
        format!(
            "{spec:?}: {why}; expected [warmup=N,]constant|cosine|onecycle|step:EPOCHS:GAMMA|multistep:E1,E2:GAMMA"
        ),
    )
}

fn num<T: std::str::FromStr>(spec: &str, s: &str) -> Result<T> {
    s.trim().parse().map_err(|_| bad(spec, &format!("{s:?} is not a number")))
}

/// The schedule described by `spec` for a run of `epochs` epochs of `steps_per_epoch` steps.
///
/// ```
/// use methods::schedule_spec::parse_schedule;
/// let s = parse_schedule("multistep:2,3:0.1", 4, 10).unwrap();
/// assert_eq!(s.lr(1.0, 19), 1.0);
/// assert!((s.lr(1.0, 20) - 0.1).abs() < 1e-12);
/// assert!(parse_schedule("sometimes", 4, 10).is_err());
/// ```
pub fn parse_schedule(spec: &str, epochs: usize, steps_per_epoch: usize) -> Result<Box<dyn Schedule>> {
    let spe = steps_per_epoch.max(1);
    let total = (epochs * spe).max(1);
    let (warmup, rest) = match spec.trim().strip_prefix("warmup=") {
        Some(r) => {
            let (n, rest) = r.split_once(',').ok_or_else(|| bad(spec, "warmup=N must be followed by ,KIND"))?;
            (num::<usize>(spec, n)? * spe, rest)
        }
        None => (0, spec.trim()),
    };
    let main_steps = total.saturating_sub(warmup).max(1);
    let parts: Vec<&str> = rest.split(':').collect();
    let base: Box<dyn Schedule> = match parts.as_slice() {
        ["constant"] => Box::new(Constant),
        ["cosine"] => Box::new(Cosine::new(main_steps, 0.0)),
        ["onecycle"] => Box::new(OneCycle::new(main_steps)),
        ["step", e, g] => Box::new(StepDecay { step_size: num::<usize>(spec, e)? * spe, gamma: num(spec, g)? }),
        ["multistep", es, g] => {
            let milestones =
                es.split(',').map(|e| num::<usize>(spec, e).map(|e| e * spe)).collect::<Result<Vec<_>>>()?;
            Box::new(MultiStep { milestones, gamma: num(spec, g)? })
        }
        _ => return Err(bad(spec, "unknown schedule")),
    };
    Ok(if warmup > 0 {
        Box::new(Warmup { steps: warmup, start_factor: 1.0 / warmup as f64, then: base })
    } else {
        base
    })
}
