//! timm's MobileNetV2 parameter names (`mobilenetv2_100` and its width variants: timm's
//! `EfficientNet` class) and this project's torchvision-style ones, both ways.
//!
//! | timm                                  | torchvision style (here)            |
//! |---------------------------------------|-------------------------------------|
//! | `conv_stem`, `bn1`                    | `features.0.0`, `features.0.1`      |
//! | `blocks.0.B.{conv_dw,bn1,conv_pw,bn2}` (depthwise-separable) | `features.i.conv.{0.0,0.1,1,2}` |
//! | `blocks.S.B.{conv_pw,bn1,conv_dw,bn2,conv_pwl,bn3}` (S ≥ 1) | `features.i.conv.{0.0,0.1,1.0,1.1,2,3}` |
//! | `conv_head`, `bn2`                    | `features.L.0`, `features.L.1`      |
//! | `classifier`                          | `classifier.1`                      |
//!
//! where block `B` of stage `S` is `features.i` with `i = 1 + (blocks in stages before S) + B`
//! and `L` is one past the last block (18 for the paper's 1, 2, 3, 4, 3, 3, 1 blocks per stage).

/// Module suffixes of the depthwise-separable first stage: (timm, here).
const SEPARABLE: [(&str, &str); 4] =
    [("conv_dw", "conv.0.0"), ("bn1", "conv.0.1"), ("conv_pw", "conv.1"), ("bn2", "conv.2")];

/// Module suffixes of an inverted-residual block: (timm, here).
const INVERTED: [(&str, &str); 6] = [
    ("conv_pw", "conv.0.0"),
    ("bn1", "conv.0.1"),
    ("conv_dw", "conv.1.0"),
    ("bn2", "conv.1.1"),
    ("conv_pwl", "conv.2"),
    ("bn3", "conv.3"),
];

/// Blocks per stage of `mobilenetv2_100` (the paper's Table 2).
#[cfg(test)]
pub(crate) const PAPER_STAGES: [usize; 7] = [1, 2, 3, 4, 3, 3, 1];

fn table(stage: usize) -> &'static [(&'static str, &'static str)] {
    if stage == 0 {
        &SEPARABLE
    } else {
        &INVERTED
    }
}

/// Whether `names` look like a timm MobileNetV2's.
pub(crate) fn looks_like_timm_mobilenetv2<'a>(mut names: impl Iterator<Item = &'a str> + Clone) -> bool {
    names.clone().any(|n| n == "conv_stem.weight")
        && names.clone().any(|n| n == "conv_head.weight")
        && names.any(|n| n.starts_with("blocks.0.0.conv_dw."))
}

/// Blocks per stage read from timm names (`blocks.S.B....`); `None` if the stages are not
/// numbered 0, 1, 2, ... or a name is malformed.
pub(crate) fn stage_blocks<'a>(names: impl Iterator<Item = &'a str>) -> Option<Vec<usize>> {
    let mut counts: Vec<usize> = Vec::new();
    for n in names {
        let Some(rest) = n.strip_prefix("blocks.") else { continue };
        let mut parts = rest.split('.');
        let s: usize = parts.next()?.parse().ok()?;
        let b: usize = parts.next()?.parse().ok()?;
        if counts.len() <= s {
            counts.resize(s + 1, 0);
        }
        counts[s] = counts[s].max(b + 1);
    }
    (!counts.is_empty() && counts.iter().all(|&c| c > 0)).then_some(counts)
}

/// `name` split into its module path and its leaf (`weight`, `running_mean`, ...).
fn split_leaf(name: &str) -> Option<(&str, &str)> {
    name.rsplit_once('.')
}

/// The name here of timm's MobileNetV2 tensor `name`, given the blocks per stage.
pub(crate) fn from_timm(name: &str, stages: &[usize]) -> Option<String> {
    let (module, leaf) = split_leaf(name)?;
    let last = 1 + stages.iter().sum::<usize>();
    let here = match module {
        "conv_stem" => "features.0.0".to_string(),
        "bn1" => "features.0.1".to_string(),
        "conv_head" => format!("features.{last}.0"),
        "bn2" => format!("features.{last}.1"),
        "classifier" => "classifier.1".to_string(),
        _ => {
            let mut parts = module.strip_prefix("blocks.")?.splitn(3, '.');
            let s: usize = parts.next()?.parse().ok()?;
            let b: usize = parts.next()?.parse().ok()?;
            let sub = parts.next()?;
            if s >= stages.len() || b >= stages[s] {
                return None;
            }
            let (_, ours) = table(s).iter().find(|(timm, _)| *timm == sub)?;
            format!("features.{}.{ours}", 1 + stages[..s].iter().sum::<usize>() + b)
        }
    };
    Some(format!("{here}.{leaf}"))
}

/// timm's name for the tensor called `name` here (the inverse of [`from_timm`]).
#[cfg(test)]
pub(crate) fn to_timm(name: &str, stages: &[usize]) -> Option<String> {
    let (module, leaf) = split_leaf(name)?;
    let last = 1 + stages.iter().sum::<usize>();
    let timm = match module {
        "features.0.0" => "conv_stem".to_string(),
        "features.0.1" => "bn1".to_string(),
        "classifier.1" => "classifier".to_string(),
        _ => {
            let (index, sub) = module.strip_prefix("features.")?.split_once('.').unwrap_or((module, ""));
            let i: usize = index.parse().ok()?;
            match (i == last, sub) {
                (true, "0") => "conv_head".to_string(),
                (true, "1") => "bn2".to_string(),
                (true, _) => return None,
                (false, _) => {
                    let (mut s, mut b) = (0, i.checked_sub(1)?);
                    while s < stages.len() && b >= stages[s] {
                        b -= stages[s];
                        s += 1;
                    }
                    if s >= stages.len() {
                        return None;
                    }
                    let (timm, _) = table(s).iter().find(|(_, ours)| *ours == sub)?;
                    format!("blocks.{s}.{b}.{timm}")
                }
            }
        }
    };
    Some(format!("{timm}.{leaf}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{models, ModuleExt};

    #[test]
    fn known_names_map_both_ways() {
        let pairs = [
            ("conv_stem.weight", "features.0.0.weight"),
            ("bn1.running_mean", "features.0.1.running_mean"),
            ("blocks.0.0.conv_dw.weight", "features.1.conv.0.0.weight"),
            ("blocks.0.0.bn1.bias", "features.1.conv.0.1.bias"),
            ("blocks.0.0.conv_pw.weight", "features.1.conv.1.weight"),
            ("blocks.0.0.bn2.num_batches_tracked", "features.1.conv.2.num_batches_tracked"),
            ("blocks.1.0.conv_pw.weight", "features.2.conv.0.0.weight"),
            ("blocks.1.1.conv_dw.weight", "features.3.conv.1.0.weight"),
            ("blocks.3.3.conv_pwl.weight", "features.10.conv.2.weight"),
            ("blocks.5.2.bn2.running_var", "features.16.conv.1.1.running_var"),
            ("blocks.6.0.bn3.weight", "features.17.conv.3.weight"),
            ("conv_head.weight", "features.18.0.weight"),
            ("bn2.bias", "features.18.1.bias"),
            ("classifier.weight", "classifier.1.weight"),
        ];
        for (timm, ours) in pairs {
            assert_eq!(from_timm(timm, &PAPER_STAGES).as_deref(), Some(ours), "{timm}");
            assert_eq!(to_timm(ours, &PAPER_STAGES).as_deref(), Some(timm), "{ours}");
        }
        assert_eq!(from_timm("blocks.7.0.conv_pw.weight", &PAPER_STAGES), None);
        assert_eq!(from_timm("blocks.1.2.conv_pw.weight", &PAPER_STAGES), None);
        assert_eq!(from_timm("blocks.1.0.se.weight", &PAPER_STAGES), None);
        assert_eq!(to_timm("features.19.0.weight", &PAPER_STAGES), None);
    }

    #[test]
    fn every_name_of_the_model_round_trips() {
        let net = models::build("mobilenetv2", 1000, 3, 0).unwrap();
        let ours: Vec<String> = net.state_dict().into_iter().map(|(n, _)| n).collect();
        let timm: Vec<String> = ours.iter().map(|n| to_timm(n, &PAPER_STAGES).unwrap()).collect();
        assert!(looks_like_timm_mobilenetv2(timm.iter().map(String::as_str)));
        assert_eq!(stage_blocks(timm.iter().map(String::as_str)).unwrap(), PAPER_STAGES);
        let back: Vec<String> = timm.iter().map(|n| from_timm(n, &PAPER_STAGES).unwrap()).collect();
        assert_eq!(back, ours);
        // 52 convolutions (stem, 2 + 16 x 3 in the blocks, head; a weight each), 52 BatchNorms
        // (5 tensors each) and the classifier (2): timm's and torchvision's 314 entries.
        assert_eq!(timm.len(), 52 + 52 * 5 + 2);
        assert!(!looks_like_timm_mobilenetv2(ours.iter().map(String::as_str)));
    }
}
