//! Parsing the `--schedule` text into a learning-rate schedule over optimizer steps.
//!
//! Grammar: `[warmup=N,]KIND` with KIND one of `constant`, `cosine`, `onecycle`,
//! `step:EPOCHS:GAMMA`, `multistep:E1,E2,...:GAMMA`. Epoch counts are converted to steps.
//!
//! Values are checked when the text is parsed, before any training step: a step size and
//! milestones of at least one epoch (milestones increasing), a finite, positive `GAMMA`, and a
//! warm-up shorter than the epochs the schedule is laid out over. [`check`] adds what only makes
//! sense for the whole run: every decay falls within it.

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

fn gamma(spec: &str, s: &str) -> Result<f64> {
    let g: f64 = num(spec, s)?;
    if !(g.is_finite() && g > 0.0) {
        return Err(bad(spec, &format!("the decay factor GAMMA must be a finite number above 0, got {g}")));
    }
    Ok(g)
}

/// The schedule's kind (`onecycle`, `step:...`) and its warm-up in epochs.
fn split_warmup(spec: &str) -> Result<(usize, &str)> {
    match spec.trim().strip_prefix("warmup=") {
        Some(r) => {
            let (n, rest) = r.split_once(',').ok_or_else(|| bad(spec, "warmup=N must be followed by ,KIND"))?;
            Ok((num::<usize>(spec, n)?, rest.trim()))
        }
        None => Ok((0, spec.trim())),
    }
}

/// The epochs at which a `step` or `multistep` schedule decays, within `epochs` epochs.
fn decay_epochs(spec: &str, kind: &str, epochs: usize) -> Result<Vec<usize>> {
    let parts: Vec<&str> = kind.split(':').collect();
    Ok(match parts.as_slice() {
        ["step", e, _] => {
            let e: usize = num(spec, e)?;
            if e == 0 {
                return Err(bad(spec, "the step size must be at least 1 epoch"));
            }
            if e >= epochs {
                vec![e]
            } else {
                (1usize..).map_while(|k| k.checked_mul(e)).take_while(|&m| m < epochs).collect()
            }
        }
        ["multistep", es, _] => {
            let ms = es.split(',').map(|e| num::<usize>(spec, e)).collect::<Result<Vec<_>>>()?;
            if ms.first() == Some(&0) || ms.windows(2).any(|w| w[0] >= w[1]) {
                return Err(bad(spec, "milestones must be increasing epochs of at least 1"));
            }
            ms
        }
        _ => Vec::new(),
    })
}

/// Whether the schedule sets the momentum itself (one-cycle cycles it, and SGD's momentum or
/// Adam's β1 from `--momentum` is then overwritten at every step).
///
/// ```
/// use methods::schedule_spec::cycles_momentum;
/// assert!(cycles_momentum("onecycle") && cycles_momentum("warmup=1,onecycle"));
/// assert!(!cycles_momentum("cosine"));
/// ```
pub fn cycles_momentum(spec: &str) -> bool {
    matches!(split_warmup(spec), Ok((_, "onecycle")))
}

/// Checks `spec` for a run of `epochs` epochs, before any step: what [`parse_schedule`] checks,
/// and that every decay of a `step` or `multistep` schedule falls within the run (a milestone
/// after the last epoch would do nothing).
///
/// ```
/// use methods::schedule_spec::check;
/// assert!(check("multistep:2,3:0.1", 4).is_ok());
/// assert!(check("multistep:2,30:0.1", 4).unwrap_err().to_string().contains("30"));
/// assert!(check("step:0:0.1", 4).is_err() && check("step:1:nan", 4).is_err() && check("step:1:-1", 4).is_err());
/// assert!(check("warmup=4,cosine", 4).unwrap_err().to_string().contains("warm-up"));
/// ```
pub fn check(spec: &str, epochs: usize) -> Result<()> {
    parse_schedule(spec, epochs, 1)?;
    let (_, kind) = split_warmup(spec)?;
    let decays = decay_epochs(spec, kind, epochs)?;
    if let Some(m) = decays.iter().find(|&&m| m >= epochs) {
        return Err(bad(
            spec,
            &format!(
                "it decays at epoch {m}, which a run of {epochs} epochs never reaches (set --epochs or --schedule)"
            ),
        ));
    }
    Ok(())
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
    let steps = |e: usize| e.checked_mul(spe).ok_or_else(|| bad(spec, &format!("{e} epochs are too many steps")));
    let total = steps(epochs)?.max(1);
    let (warmup_epochs, rest) = split_warmup(spec)?;
    if warmup_epochs > 0 && warmup_epochs >= epochs {
        return Err(bad(
            spec,
            &format!(
                "a warm-up of {warmup_epochs} epochs must be shorter than the {epochs} epochs it is laid out over"
            ),
        ));
    }
    let warmup = steps(warmup_epochs)?;
    let main_steps = total.saturating_sub(warmup).max(1);
    let decays = decay_epochs(spec, rest, epochs)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let base: Box<dyn Schedule> = match parts.as_slice() {
        ["constant"] => Box::new(Constant),
        ["cosine"] => Box::new(Cosine::new(main_steps, 0.0)),
        ["onecycle"] => Box::new(OneCycle::new(main_steps)),
        ["step", e, g] => Box::new(StepDecay { step_size: steps(num::<usize>(spec, e)?)?, gamma: gamma(spec, g)? }),
        ["multistep", _, g] => {
            let milestones = decays.iter().map(|&e| steps(e)).collect::<Result<Vec<_>>>()?;
            Box::new(MultiStep { milestones, gamma: gamma(spec, g)? })
        }
        _ => return Err(bad(spec, "unknown schedule")),
    };
    Ok(if warmup > 0 {
        Box::new(Warmup { steps: warmup, start_factor: 1.0 / warmup as f64, then: base })
    } else {
        base
    })
}
