//! The op codes the elementwise kernels switch on, written from the op enums' lists
//! (`ops/elementwise.rs`): `#define UNARY_NEG 0`, `#define BINARY_ADD 0`, `#define CMP_EQ 0`, …
//! (a prefix, the op's upper-cased name, its [`code`](crate::ops::UnaryOp::code)). The header is
//! compiled in front of every kernel source, and `elementwise.cu` names its `case` labels by these
//! names, so no number is kept by hand on either side; a test checks that every op has its cases.

use crate::ops::{BinaryOp, CmpOp, UnaryOp};

/// Each enum's macro prefix with its ops' names in code order.
const FAMILIES: [(&str, &[&str]); 3] = [("UNARY", UnaryOp::NAMES), ("BINARY", BinaryOp::NAMES), ("CMP", CmpOp::NAMES)];

/// The macro name of an op: `UNARY_GELU_TANH` for `("UNARY", "gelu_tanh")`.
fn macro_name(prefix: &str, op: &str) -> String {
    format!("{prefix}_{}", op.to_ascii_uppercase())
}

/// The `#define` of every op code.
pub(crate) fn header() -> String {
    let mut out = String::from("// Op codes, generated from the Rust op enums (cuda/op_codes.rs).\n");
    for (prefix, names) in FAMILIES {
        for (code, name) in names.iter().enumerate() {
            out.push_str(&format!("#define {} {code}\n", macro_name(prefix, name)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// How many `case NAME:` labels of each name `elementwise.cu` holds; panics on a label that
    /// is not a generated name (a number kept by hand, say).
    fn case_labels() -> HashMap<String, usize> {
        let known: Vec<String> =
            FAMILIES.iter().flat_map(|(p, names)| names.iter().map(|n| macro_name(p, n))).collect();
        let mut counts = HashMap::new();
        for part in super::super::elementwise::SRC.src.split("case ").skip(1) {
            let label = part.split(':').next().unwrap().trim();
            assert!(known.iter().any(|k| k == label), "elementwise.cu: `case {label}:` is not a generated op name");
            *counts.entry(label.to_string()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn names_are_c_identifiers_and_distinct() {
        let h = header();
        let mut defined: Vec<&str> =
            h.lines().filter_map(|l| l.strip_prefix("#define ")?.split_whitespace().next()).collect();
        assert!(defined.iter().all(|n| n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')));
        let n = defined.len();
        defined.sort();
        defined.dedup();
        assert_eq!(defined.len(), n, "two ops share a macro name");
        assert!(h.contains("#define UNARY_NEG 0\n") && h.contains("#define BINARY_SILU_BACKWARD 11\n"));
    }

    /// Every op has its float case, and its integer case exactly where integers support it
    /// (`unary_float` / `unary_int`, the float and integer `Ops::binary`, `compare`).
    #[test]
    fn elementwise_cu_has_a_case_for_every_op() {
        let counts = case_labels();
        let count = |prefix: &str, name: &str| counts.get(&macro_name(prefix, name)).copied().unwrap_or(0);
        for &(op, _, _) in UnaryOp::CHECKED {
            let want = 1 + op.supports_integers() as usize;
            assert_eq!(count("UNARY", op.name()), want, "cases of unary {} in elementwise.cu", op.name());
        }
        for op in BinaryOp::ALL {
            let want = 1 + !op.float_only() as usize;
            assert_eq!(count("BINARY", op.name()), want, "cases of binary {} in elementwise.cu", op.name());
        }
        for op in CmpOp::ALL {
            assert_eq!(count("CMP", op.name()), 1, "cases of comparison {} in elementwise.cu", op.name());
        }
    }
}
