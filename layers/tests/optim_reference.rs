//! Optimizers and LR schedules against PyTorch (values from
//! `tests/fixtures/make_optim_fixtures.py`): parameters after each of 5 steps with fixed
//! gradients (f64, several groups, a step where one parameter has no gradient), and the learning
//! rate and momentum along each schedule.

mod common;

use autograd::Tensor;
use common::{assert_close, f64_tensor, fixtures, floats};
use layers::optim::{Adam, AdamOptions, Optimizer, ParamGroup, Sgd, SgdOptions};
use layers::schedule::{Cosine, Interval, MultiStep, OneCycle, Schedule, Scheduler, StepDecay, Warmup};
use layers::Param;
use serde_json::Value;

fn build(case: &Value, w: &Param, b: &Param) -> Box<dyn Optimizer> {
    let groups: Vec<ParamGroup> = case["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let params = g["params"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| {
                    let n = n.as_str().unwrap();
                    (n.to_string(), if n == "w" { w.clone() } else { b.clone() })
                })
                .collect();
            let o = &g["options"];
            ParamGroup::new(params).lr(o["lr"].as_f64().unwrap()).weight_decay(o["weight_decay"].as_f64().unwrap())
        })
        .collect();
    // Every option other than lr and weight decay is the same in all groups of a case.
    let o = &case["groups"][0]["options"];
    let f = |k: &str| o[k].as_f64().unwrap();
    match case["kind"].as_str().unwrap() {
        "sgd" => {
            let opts = SgdOptions::new(f("lr"))
                .momentum(f("momentum"))
                .dampening(f("dampening"))
                .nesterov(o["nesterov"].as_bool().unwrap());
            Box::new(Sgd::new(groups, opts).unwrap())
        }
        "adam" => {
            let betas = floats(&o["betas"]);
            let mut opts = AdamOptions::adam(f("lr"))
                .betas(betas[0], betas[1])
                .eps(f("eps"))
                .amsgrad(o["amsgrad"].as_bool().unwrap());
            opts.decoupled = o["decoupled"].as_bool().unwrap();
            Box::new(Adam::new(groups, opts).unwrap())
        }
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn optimizers_match_pytorch() {
    let fx = fixtures();
    let cases = fx["optimizers"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let w = Param::new(f64_tensor(&case["init"]["w"]));
        let b = Param::new(f64_tensor(&case["init"]["b"]));
        let mut opt = build(case, &w, &b);
        for (step, (grads, after)) in
            case["grads"].as_array().unwrap().iter().zip(case["after"].as_array().unwrap()).enumerate()
        {
            for (p, key) in [(&w, "w"), (&b, "b")] {
                let g = (!grads[key].is_null()).then(|| f64_tensor(&grads[key]));
                p.leaf().set_grad(g).unwrap();
            }
            opt.step().unwrap();
            for (p, key) in [(&w, "w"), (&b, "b")] {
                let got = p.leaf().to_vec::<f64>().unwrap();
                assert_close(&got, &floats(&after[key]["data"]), 1e-12, &format!("{name} step {} {key}", step + 1));
            }
        }
    }
}

fn schedule_for(name: &str) -> Box<dyn Schedule> {
    match name {
        "step" => Box::new(StepDecay { step_size: 3, gamma: 0.5 }),
        "multistep" => Box::new(MultiStep { milestones: vec![2, 5, 8], gamma: 0.1 }),
        "cosine_eta_min" => Box::new(Cosine::new(10, 0.001)),
        "cosine" => Box::new(Cosine::new(7, 0.0)),
        "warmup_cosine" => Box::new(Warmup::new(4, 0.1, Cosine::new(8, 0.0))),
        "warmup_multistep" => Box::new(Warmup::new(3, 0.25, MultiStep { milestones: vec![2, 4], gamma: 0.5 })),
        "onecycle_sgd" => Box::new(OneCycle::new(20)),
        "onecycle_adam" => Box::new(OneCycle::new(13)),
        other => panic!("unknown schedule {other}"),
    }
}

#[test]
fn schedules_match_pytorch() {
    let fx = fixtures();
    let cases = fx["schedules"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let base = case["base_lr"].as_f64().unwrap();
        let p = Param::new(Tensor::zeros(&[1]));
        let group = vec![ParamGroup::new(vec![("p".into(), p)])];
        let mut opt: Box<dyn Optimizer> = if name.contains("adam") {
            Box::new(Adam::new(group, AdamOptions::adam(base)).unwrap())
        } else {
            Box::new(Sgd::new(group, SgdOptions::new(base).momentum(0.9)).unwrap())
        };
        let mut sched = Scheduler::new(schedule_for(name), Interval::Step, opt.as_mut()).unwrap();
        let (mut lrs, mut moms) = (Vec::new(), Vec::new());
        for i in 0..case["lrs"].as_array().unwrap().len() {
            if i > 0 {
                sched.step(opt.as_mut()).unwrap();
            }
            lrs.push(opt.lrs()[0]);
            moms.push(opt.momentums()[0].unwrap());
            assert_eq!(sched.lr(0), Some(lrs[i]));
        }
        assert_close(&lrs, &floats(&case["lrs"]), 1e-12, &format!("{name} lr"));
        assert_close(&moms, &floats(&case["momentums"]), 1e-12, &format!("{name} momentum"));
    }
}
