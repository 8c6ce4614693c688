//! The sparse execution form: the same predictions as the masked model, the stored weights'
//! MACs only, and the inference form of a trained run.

use layers::mac::count_macs;
use layers::{Mode, Module};

use super::super::allocation::{masks_from_scores, Allocation};
use super::super::engine::{apply_masks, masked_layers};
use super::super::exec::convert_masked;
use super::super::score::magnitude_scores;
use super::super::SNIP;
use super::{f64s, masked_conv_net, sample};

fn pruned(seed: u64, density: f64) -> Box<dyn Module> {
    let m = masked_conv_net(seed);
    let geoms: Vec<_> = masked_layers(m.as_ref()).iter().map(|(_, l)| l.geometry()).collect();
    let masks = masks_from_scores(Allocation::Global, &magnitude_scores(m.as_ref()).unwrap(), &geoms, density).unwrap();
    apply_masks(m.as_ref(), &masks, None).unwrap();
    m
}

#[test]
fn the_sparse_form_predicts_as_the_masked_model_and_counts_only_stored_weights() {
    for (always, density) in [(true, 0.3), (false, 0.3), (true, 1.0)] {
        let masked = pruned(41, density);
        let mut form = pruned(41, density);
        let x = sample(5, 2).0;
        let want = f64s(&masked.forward(&x, Mode::Eval).unwrap());
        let nnz: Vec<usize> = masked_layers(form.as_ref()).iter().map(|(_, l)| l.active().unwrap()).collect();
        let paths = convert_masked(form.as_mut(), &mut |_, _, _, _| Ok(always)).unwrap();
        assert_eq!(paths, ["0", "3", "6"]);
        let got = f64s(&form.forward(&x, Mode::Eval).unwrap());
        let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5 * scale), "{got:?} vs {want:?}");
        let macs = count_macs(form.as_ref(), &sample(1, 0).0).unwrap();
        let dense = count_macs(masked.as_ref(), &sample(1, 0).0).unwrap();
        if always {
            // conv1 keeps 6x6 outputs per channel, conv2 3x3, the linear one row.
            assert_eq!(macs.total_macs as usize, nnz[0] * 36 + nnz[1] * 9 + nnz[2]);
            assert_eq!(macs.rows[0].kind, "sparse_conv2d");
            assert_eq!(macs.rows[2].kind, "sparse_linear");
        } else {
            assert_eq!(macs.total_macs, dense.total_macs);
        }
    }
}

#[test]
fn a_trained_run_is_evaluated_in_its_sparse_form() {
    let dir = std::env::temp_dir().join(format!("lamina-sparse-exec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cfg = crate::config::TrainConfig::from_defaults(&SNIP);
    cfg.model = "mlp".into();
    cfg.epochs = 1;
    cfg.batch_size = 20;
    cfg.train_limit = Some(600);
    cfg.test_limit = Some(200);
    cfg.hparams.insert("sparse_exec".into(), "always".into());
    let s = crate::trainer::train_with(&SNIP, &cfg, &dir, false, &Default::default()).unwrap();
    let inf = s.inference.expect("an inference form");
    assert!((inf.test.acc - s.trained.test.acc).abs() <= 1.0 / 200.0, "{} vs {}", inf.test.acc, s.trained.test.acc);
    // 10 % of the 266,200 weights, plus nothing for the biases.
    assert_eq!(inf.macs, 26_620);
    assert_eq!(s.trained.macs, 266_200);
    assert!(s.extra.iter().any(|(k, v)| k == "sparse execution" && v.starts_with("3 of 3")), "{:?}", s.extra);
    assert!(dir.join("inference.safetensors").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

mod linear {
    use std::sync::Arc;

    use autograd::backends::ops::SparsePattern;
    use autograd::strategies::f64_tensor;
    use autograd::{gradcheck, GradcheckOptions, Tensor};
    use proptest::prelude::*;

    use super::super::super::exec::sparse_linear;

    /// Leading dims of `x`, `in`, `out`, the pattern of a `[out, in]` weight (something stored).
    fn case() -> impl Strategy<Value = (Vec<usize>, Arc<SparsePattern>)> {
        (proptest::collection::vec(1usize..4, 1..3), 1usize..8, 1usize..6, proptest::collection::vec(any::<bool>(), 48))
            .prop_map(|(lead, fin, fout, keep)| {
                let mask: Vec<f32> = (0..fin * fout).map(|i| f32::from(keep[i % 48])).collect();
                let mut x = lead;
                x.push(fin);
                (x, Arc::new(SparsePattern::from_mask([fout, fin, 1, 1], &mask).unwrap()))
            })
            .prop_filter("something is stored", |(_, p)| p.nnz() > 0)
    }

    fn problem() -> impl Strategy<Value = (Arc<SparsePattern>, Tensor, Tensor, Tensor)> {
        case().prop_flat_map(|(x, pat)| {
            let (fout, nnz) = (pat.shape[0], pat.nnz());
            (Just(pat), f64_tensor(x, -1.0, 1.0), f64_tensor(vec![nnz], -1.0, 1.0), f64_tensor(vec![fout], -1.0, 1.0))
        })
    }

    /// `x·Wᵀ + b` by loops over the densified weight.
    fn naive(pat: &SparsePattern, x: &Tensor, v: &Tensor, b: &Tensor) -> Vec<f64> {
        let [fout, fin, _, _] = pat.shape;
        let mut w = vec![0.0; fout * fin];
        for (i, val) in pat.flat_indices().into_iter().zip(v.to_f64_vec().unwrap()) {
            w[i] = val;
        }
        let (x, b) = (x.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
        let mut y = Vec::new();
        for row in x.chunks(fin) {
            for o in 0..fout {
                y.push(b[o] + (0..fin).map(|i| w[o * fin + i] * row[i]).sum::<f64>());
            }
        }
        y
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn sparse_linear_matches_the_dense_product_and_passes_gradcheck((pat, x, v, b) in problem()) {
            let y = sparse_linear(&x, &v, &pat, Some(&b)).unwrap();
            let mut want_shape = x.shape().to_vec();
            *want_shape.last_mut().unwrap() = pat.shape[0];
            prop_assert_eq!(y.shape(), &want_shape[..]);
            let (got, want) = (y.to_f64_vec().unwrap(), naive(&pat, &x, &v, &b));
            prop_assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{:?} vs {:?}", got, want);
            gradcheck(|t| sparse_linear(&t[0], &t[1], &pat, Some(&t[2])), &[x, v, b], &GradcheckOptions::default())
                .unwrap();
        }
    }

    #[test]
    fn a_kernel_pattern_or_a_wrong_width_is_an_error() {
        let pat = Arc::new(SparsePattern::from_mask([2, 3, 1, 1], &[1.0; 6]).unwrap());
        let e = sparse_linear(&Tensor::zeros(&[4, 5]), &Tensor::zeros(&[6]), &pat, None).unwrap_err();
        assert!(e.to_string().contains("sparse_linear"), "{e}");
        let conv = Arc::new(SparsePattern::from_mask([1, 1, 3, 3], &[1.0; 9]).unwrap());
        assert!(sparse_linear(&Tensor::zeros(&[4, 1]), &Tensor::zeros(&[9]), &conv, None).is_err());
    }
}
