use crate::moee::{extract_experts, matching_top_k, top_variance, Capture};

/// Tokens of two clusters over 4 hidden neurons: cluster 0 varies in neurons 0 and 1 (variance
/// 4 and 1), cluster 1 in neuron 3 only; neuron 2 is constant 1 in both.
fn capture() -> (Capture, Vec<i64>) {
    let mut cap = Capture { path: "blocks.0.mlp".into(), dim: 2, hidden: 4, ..Default::default() };
    let mut labels = Vec::new();
    for s in [-1.0f32, 1.0] {
        cap.x.extend([1.0, 0.0 + s * 0.1]);
        cap.y.extend([5.0 + 2.0 * s, 3.0 + s, 1.0, 0.0]);
        labels.push(0);
    }
    for s in [-1.0f32, 1.0] {
        cap.x.extend([0.0, 2.0 + s * 0.1]);
        cap.y.extend([0.0, 0.0, 1.0, 4.0 + 3.0 * s]);
        labels.push(1);
    }
    // A noise token, ignored.
    cap.x.extend([9.0, 9.0]);
    cap.y.extend([100.0, -100.0, 50.0, 7.0]);
    labels.push(-1);
    (cap, labels)
}

#[test]
fn experts_keep_the_top_variance_neurons() {
    let (cap, labels) = capture();
    let ex = extract_experts(&cap, &labels, 0.75, None).unwrap();
    // Cluster 0: variances [4, 1, 0, 0]; 4 >= 0.75 * 5 keeps neuron 0 alone.
    assert_eq!(ex.experts, [vec![0], vec![3]]);
    assert_eq!(ex.sizes, [2, 2]);
    assert_eq!(ex.keys, [1.0, 0.0, 0.0, 2.0]);
    assert_eq!(ex.union(), [0, 3]);
    // p = 1 keeps every neuron of nonzero variance.
    let all = extract_experts(&cap, &labels, 1.0, None).unwrap();
    assert_eq!(all.experts, [vec![0, 1], vec![3]]);
    assert!(extract_experts(&cap, &labels[..4], 0.9, None).is_err());
    assert!(extract_experts(&cap, &labels, 0.0, None).is_err());
}

#[test]
fn bias_folding_adds_the_dropped_neurons_mean_output() {
    let (cap, labels) = capture();
    // fc2 weight [d = 2, D = 4].
    let w2 = [1.0f32, 10.0, 100.0, 1000.0, 2.0, 20.0, 200.0, 2000.0];
    let ex = extract_experts(&cap, &labels, 0.75, Some(&w2)).unwrap();
    // Cluster 0 drops neurons 1, 2, 3 with means 3, 1, 0: 3*10 + 1*100 = 130 (x2 on row 2).
    // Cluster 1 drops neurons 0, 1, 2 with means 0, 0, 1: 100 (x2).
    assert_eq!(ex.bias.unwrap(), [130.0, 260.0, 100.0, 200.0]);
}

#[test]
fn variance_prefix_and_moefication_matching() {
    // 3 of 7 reaches 40 % but not 50 %.
    assert_eq!(top_variance(&[3.0, 3.0, 1.0], 0.4), [0]);
    assert_eq!(top_variance(&[3.0, 3.0, 1.0], 0.5), [0, 1]);
    assert_eq!(matching_top_k(96.0, 384, 16), 4);
    assert_eq!(matching_top_k(1000.0, 384, 16), 16);
}
