//! The machinery every optimizer shares: parameter groups with their own hyperparameters, the
//! per-parameter state, the step loop (skipping frozen parameters and those without a gradient)
//! and state save/load. An optimizer is an [`UpdateRule`] plugged into [`GroupedOptimizer`].

use std::collections::{BTreeMap, HashSet};

use autograd::{no_grad, Error, Result, Tensor};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use super::{GroupInfo, Optimizer, OptimizerState};
use crate::Param;

/// Parameters that share hyperparameters; `None` fields take the optimizer's defaults.
#[derive(Clone, Debug)]
pub struct ParamGroup {
    /// The parameters with their dotted names (names key the saved state).
    pub params: Vec<(String, Param)>,
    /// This group's learning rate, if not the default.
    pub lr: Option<f64>,
    /// This group's weight decay, if not the default.
    pub weight_decay: Option<f64>,
}

impl ParamGroup {
    /// A group with the default hyperparameters (`ParamGroup::new(model.named_parameters())`).
    pub fn new(params: Vec<(String, Param)>) -> ParamGroup {
        ParamGroup { params, lr: None, weight_decay: None }
    }

    /// With its own learning rate.
    pub fn lr(mut self, lr: f64) -> ParamGroup {
        self.lr = Some(lr);
        self
    }

    /// With its own weight decay.
    pub fn weight_decay(mut self, wd: f64) -> ParamGroup {
        self.weight_decay = Some(wd);
        self
    }
}

/// Two groups: every parameter of two or more dimensions (conv and linear weights) with weight
/// decay `weight_decay`, then every 1-D parameter (biases, BatchNorm/LayerNorm/GroupNorm weights
/// and biases) without decay — the usual "no decay on BN and biases" recipe. Both groups are
/// always present (possibly empty), so group 0 decays and group 1 does not.
///
/// ```
/// use layers::optim::split_weight_decay;
/// use layers::{BatchNorm2d, Conv2d, Conv2dOptions, ModuleExt, Sequential};
/// let net = Sequential::new().push(Conv2d::new(1, 2, 3, Conv2dOptions::default()).unwrap()).push(BatchNorm2d::new(2));
/// let groups = split_weight_decay(net.named_parameters(), 5e-4);
/// let names = |i: usize| groups[i].params.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
/// assert_eq!(names(0), ["0.weight"]);
/// assert_eq!(names(1), ["0.bias", "1.weight", "1.bias"]);
/// assert_eq!((groups[0].weight_decay, groups[1].weight_decay), (Some(5e-4), Some(0.0)));
/// ```
pub fn split_weight_decay(params: Vec<(String, Param)>, weight_decay: f64) -> Vec<ParamGroup> {
    let (decay, no_decay): (Vec<_>, Vec<_>) = params.into_iter().partition(|(_, p)| p.leaf().ndim() > 1);
    vec![ParamGroup::new(decay).weight_decay(weight_decay), ParamGroup::new(no_decay).weight_decay(0.0)]
}

/// The hyperparameters of one group of an optimizer (`SgdOptions`, `AdamOptions`).
pub trait Hyperparameters: Copy + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f64);
    /// The weight decay.
    fn weight_decay(&self) -> f64;
    /// Sets the weight decay.
    fn set_weight_decay(&mut self, wd: f64);
    /// The momentum the one-cycle schedule cycles (`None` if there is none).
    fn momentum(&self) -> Option<f64>;
    /// Sets that momentum; `false` if this optimizer has none.
    fn set_momentum(&mut self, momentum: f64) -> bool;
    /// Checks the values (an error names `op` and the bad value).
    fn validate(&self, op: &'static str) -> Result<()>;
}

/// The state an optimizer keeps for one parameter: how many updates it received and named
/// buffers (`momentum_buffer`, `exp_avg`, ...).
#[derive(Clone, Debug, Default)]
pub struct ParamState {
    /// Number of updates applied so far (Adam's bias correction uses it).
    pub step: u64,
    /// Named state tensors, in the parameter's dtype and device.
    pub buffers: BTreeMap<String, Tensor>,
}

/// The update formula of an optimizer, applied to one parameter at a time.
pub trait UpdateRule: Send + 'static {
    /// The per-group hyperparameters.
    type Options: Hyperparameters;
    /// The optimizer's name (saved in checkpoints and checked on load).
    const NAME: &'static str;
    /// The parameter's new value given its current value and gradient (both detached, same
    /// dtype and device). `state.step` has already been incremented for this update.
    fn update(opts: &Self::Options, param: &Tensor, grad: &Tensor, state: &mut ParamState) -> Result<Tensor>;
}

struct Group<O> {
    params: Vec<(String, Param)>,
    opts: O,
}

/// An optimizer made of parameter groups and an [`UpdateRule`] (see the [module docs](super)).
pub struct GroupedOptimizer<R: UpdateRule> {
    groups: Vec<Group<R::Options>>,
    state: BTreeMap<String, ParamState>,
    _rule: std::marker::PhantomData<R>,
}

impl<R: UpdateRule> GroupedOptimizer<R> {
    /// An optimizer over `groups`; group fields left `None` take `defaults`. Every parameter must
    /// appear once, under a unique name.
    pub fn new(groups: Vec<ParamGroup>, defaults: R::Options) -> Result<Self> {
        let mut names = HashSet::new();
        let mut seen: Vec<Param> = Vec::new();
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let mut opts = defaults;
            if let Some(lr) = g.lr {
                opts.set_lr(lr);
            }
            if let Some(wd) = g.weight_decay {
                opts.set_weight_decay(wd);
            }
            opts.validate(R::NAME)?;
            for (name, p) in &g.params {
                if !names.insert(name.clone()) || seen.iter().any(|q| q.ptr_eq(p)) {
                    return Err(Error::invalid(R::NAME, format!("parameter {name:?} appears twice in the groups")));
                }
                seen.push(p.clone());
            }
            out.push(Group { params: g.params, opts });
        }
        Ok(GroupedOptimizer { groups: out, state: BTreeMap::new(), _rule: std::marker::PhantomData })
    }

    /// The hyperparameters of group `group`.
    pub fn options(&self, group: usize) -> Result<&R::Options> {
        self.check_group(group)?;
        Ok(&self.groups[group].opts)
    }

    /// Mutable hyperparameters of group `group` (validated at the next step).
    pub fn options_mut(&mut self, group: usize) -> Result<&mut R::Options> {
        self.check_group(group)?;
        Ok(&mut self.groups[group].opts)
    }

    fn check_group(&self, group: usize) -> Result<()> {
        if group < self.groups.len() {
            Ok(())
        } else {
            Err(Error::invalid(R::NAME, format!("no parameter group {group} (there are {})", self.groups.len())))
        }
    }

    fn group_names(&self) -> Vec<Vec<String>> {
        self.groups.iter().map(|g| g.params.iter().map(|(n, _)| n.clone()).collect()).collect()
    }

    fn param_named(&self, name: &str) -> Option<&Param> {
        self.groups.iter().flat_map(|g| &g.params).find(|(n, _)| n == name).map(|(_, p)| p)
    }

    /// The parameter called `name`, or an error of `op` naming it.
    fn known_param(&self, op: &str, name: &str) -> Result<&Param> {
        self.param_named(name)
            .ok_or_else(|| Error::invalid(R::NAME, format!("{op}: the optimizer holds no parameter named {name:?}")))
    }
}

impl<R: UpdateRule> std::fmt::Debug for GroupedOptimizer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let groups: Vec<_> = self
            .groups
            .iter()
            .map(|g| (g.params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), g.opts))
            .collect();
        write!(f, "{}({groups:?})", R::NAME)
    }
}

impl<R: UpdateRule> Optimizer for GroupedOptimizer<R> {
    fn step(&mut self) -> Result<()> {
        no_grad(|| {
            for g in &self.groups {
                g.opts.validate(R::NAME)?;
                for (name, p) in &g.params {
                    let Some(grad) = p.grad().filter(|_| p.is_trainable()) else { continue };
                    let leaf = p.leaf();
                    let st = self.state.entry(name.clone()).or_default();
                    st.step += 1;
                    let new = R::update(&g.opts, &leaf.detach(), &grad.detach(), st)
                        .map_err(|e| Error::invalid(R::NAME, format!("updating {name:?}: {e}")))?;
                    leaf.set_data(&new)?;
                }
            }
            Ok(())
        })
    }

    fn zero_grad(&self) {
        self.groups.iter().flat_map(|g| &g.params).for_each(|(_, p)| p.zero_grad());
    }

    fn lrs(&self) -> Vec<f64> {
        self.groups.iter().map(|g| g.opts.lr()).collect()
    }

    fn set_lr(&mut self, group: usize, lr: f64) -> Result<()> {
        self.check_group(group)?;
        self.groups[group].opts.set_lr(lr);
        Ok(())
    }

    fn momentums(&self) -> Vec<Option<f64>> {
        self.groups.iter().map(|g| g.opts.momentum()).collect()
    }

    fn set_momentum(&mut self, group: usize, momentum: f64) -> Result<()> {
        self.check_group(group)?;
        if self.groups[group].opts.set_momentum(momentum) {
            Ok(())
        } else {
            Err(Error::invalid(R::NAME, "this optimizer has no momentum to set"))
        }
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let mut tensors = Vec::new();
        let mut steps = serde_json::Map::new();
        for (name, st) in &self.state {
            steps.insert(name.clone(), json!(st.step));
            tensors.extend(st.buffers.iter().map(|(k, t)| (format!("state.{name}.{k}"), t.clone())));
        }
        let groups: Vec<serde_json::Value> = self
            .groups
            .iter()
            .zip(self.group_names())
            .map(|(g, names)| -> Result<serde_json::Value> {
                let opts = serde_json::to_value(g.opts).map_err(|e| Error::invalid(R::NAME, e.to_string()))?;
                Ok(json!({ "params": names, "options": opts }))
            })
            .collect::<Result<_>>()?;
        Ok(OptimizerState { tensors, meta: json!({ "type": R::NAME, "groups": groups, "steps": steps }) })
    }

    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()> {
        let op = "load_state_dict";
        let bad = |what: String| Error::invalid(op, format!("{} state: {what}", R::NAME));
        let meta = &state.meta;
        if meta["type"] != R::NAME {
            return Err(bad(format!("saved by a {} optimizer", meta["type"])));
        }
        let groups = meta["groups"].as_array().ok_or_else(|| bad("no groups".into()))?;
        let saved_names: Vec<Vec<String>> = groups
            .iter()
            .map(|g| serde_json::from_value(g["params"].clone()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(format!("group parameter names: {e}")))?;
        if saved_names != self.group_names() {
            return Err(bad(format!(
                "the groups hold other parameters: saved {saved_names:?}, here {:?}",
                self.group_names()
            )));
        }
        let opts: Vec<R::Options> = groups
            .iter()
            .map(|g| serde_json::from_value(g["options"].clone()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad(format!("hyperparameters: {e}")))?;
        opts.iter().try_for_each(|o| o.validate(R::NAME))?;
        let mut new_state: BTreeMap<String, ParamState> = BTreeMap::new();
        let steps = meta["steps"].as_object().ok_or_else(|| bad("no step counts".into()))?;
        for (name, step) in steps {
            self.param_named(name).ok_or_else(|| bad(format!("unknown parameter {name:?}")))?;
            let step = step.as_u64().ok_or_else(|| bad(format!("step of {name:?} is {step}")))?;
            new_state.insert(name.clone(), ParamState { step, buffers: BTreeMap::new() });
        }
        for (full, t) in &state.tensors {
            let (name, key) = full
                .strip_prefix("state.")
                .and_then(|rest| rest.rsplit_once('.'))
                .ok_or_else(|| bad(format!("unexpected tensor {full:?}")))?;
            let (Some(st), Some(p)) = (new_state.get_mut(name), self.param_named(name)) else {
                return Err(bad(format!("tensor {full:?} belongs to no parameter with a step count")));
            };
            let leaf = p.leaf();
            if t.shape() != leaf.shape() {
                return Err(Error::shape(op, leaf.shape(), t.shape()));
            }
            st.buffers.insert(key.to_string(), t.to_dtype(leaf.dtype())?.to_device(leaf.device())?.contiguous()?);
        }
        for (g, o) in self.groups.iter_mut().zip(opts) {
            g.opts = o;
        }
        self.state = new_state;
        Ok(())
    }

    fn param_names(&self) -> Vec<String> {
        self.group_names().concat()
    }

    fn param_state(&self, name: &str) -> Option<&ParamState> {
        self.state.get(name)
    }

    fn param_state_mut(&mut self, name: &str) -> Option<&mut ParamState> {
        self.state.get_mut(name)
    }

    fn mask_state(&mut self, name: &str, keep: &Tensor) -> Result<()> {
        let shape = self.known_param("mask_state", name)?.leaf().shape().to_vec();
        if keep.shape() != shape {
            return Err(Error::invalid(
                R::NAME,
                format!("mask_state: the mask for {name:?} has shape {:?}, the parameter {shape:?}", keep.shape()),
            ));
        }
        let Some(st) = self.state.get_mut(name) else { return Ok(()) };
        no_grad(|| {
            for (key, buf) in st.buffers.iter_mut() {
                let k = keep.detach().to_dtype(buf.dtype())?.to_device(buf.device())?;
                *buf = buf
                    .mul(&k)
                    .and_then(|b| b.contiguous())
                    .map_err(|e| Error::invalid(R::NAME, format!("mask_state: {name:?} {key}: {e}")))?;
            }
            Ok(())
        })
    }

    fn reset_state(&mut self, name: &str) -> Result<()> {
        self.known_param("reset_state", name)?;
        self.state.remove(name);
        Ok(())
    }

    fn group_info(&self) -> Vec<GroupInfo> {
        self.groups
            .iter()
            .zip(self.group_names())
            .map(|(g, names)| GroupInfo { names, lr: g.opts.lr(), weight_decay: g.opts.weight_decay() })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, AdamOptions, Sgd, SgdOptions};

    fn params() -> Vec<(String, Param)> {
        vec![
            ("a.weight".into(), Param::new(Tensor::randn(&[3, 2], 1).unwrap())),
            ("a.bias".into(), Param::new(Tensor::randn(&[3], 2).unwrap())),
        ]
    }

    fn set_grads(ps: &[(String, Param)], seed: u64) {
        for (i, (_, p)) in ps.iter().enumerate() {
            p.leaf().set_grad(Some(Tensor::randn(p.leaf().shape(), seed * 10 + i as u64).unwrap())).unwrap();
        }
    }

    fn values(ps: &[(String, Param)]) -> Vec<Vec<u32>> {
        ps.iter().map(|(_, p)| p.leaf().to_vec::<f32>().unwrap().iter().map(|v| v.to_bits()).collect()).collect()
    }

    #[test]
    fn frozen_and_gradless_parameters_are_skipped() {
        let ps = params();
        let mut opt = Sgd::new(vec![ParamGroup::new(ps.clone())], SgdOptions::new(0.1).momentum(0.9)).unwrap();
        let before = values(&ps);
        set_grads(&ps, 0);
        ps[0].1.set_trainable(false); // also clears its gradient
        ps[0].1.leaf().set_grad(Some(Tensor::ones(&[3, 2]))).unwrap();
        opt.step().unwrap();
        let after = values(&ps);
        assert_eq!(after[0], before[0], "frozen parameter untouched");
        assert_ne!(after[1], before[1]);
        assert!(opt.param_state("a.weight").is_none() && opt.param_state("a.bias").unwrap().step == 1);
        ps[0].1.set_trainable(true);
        opt.zero_grad();
        opt.step().unwrap();
        assert_eq!(values(&ps), after, "no gradients, no update");
    }

    #[test]
    fn state_round_trip_resumes_exactly() {
        for adam in [false, true] {
            let make = |ps: &[(String, Param)]| -> Box<dyn Optimizer> {
                let groups = split_weight_decay(ps.to_vec(), 0.1);
                if adam {
                    Box::new(Adam::new(groups, AdamOptions::adamw(1e-2).amsgrad(true)).unwrap())
                } else {
                    Box::new(Sgd::new(groups, SgdOptions::new(0.1).momentum(0.9).nesterov(true)).unwrap())
                }
            };
            let (ps, qs) = (params(), params());
            let (mut a, mut b) = (make(&ps), make(&qs));
            for s in 0..2 {
                set_grads(&ps, s);
                a.step().unwrap();
            }
            a.set_lr(1, 0.3f64.sqrt() / 7.0).unwrap(); // an lr whose JSON round trip must be exact
            for ((_, p), (_, q)) in ps.iter().zip(&qs) {
                q.set_data(&p.leaf()).unwrap();
            }
            let saved = a.state_dict().unwrap();
            let n = if adam { 6 } else { 2 };
            assert_eq!(saved.tensors.len(), n, "{:?}", saved.tensors.iter().map(|t| &t.0).collect::<Vec<_>>());
            assert!(saved
                .tensors
                .iter()
                .any(|(k, _)| k == "state.a.weight.momentum_buffer" || k == "state.a.weight.exp_avg"));
            b.load_state_dict(&saved).unwrap();
            assert_eq!(b.lrs(), a.lrs());
            for s in 2..4 {
                set_grads(&ps, s);
                set_grads(&qs, s);
                a.step().unwrap();
                b.step().unwrap();
            }
            assert_eq!(values(&ps), values(&qs), "adam {adam}");
        }
    }

    #[test]
    fn bad_groups_and_states_are_errors() {
        let ps = params();
        let twice = vec![ParamGroup::new(ps.clone()), ParamGroup::new(vec![("other".into(), ps[0].1.clone())])];
        assert!(Sgd::new(twice, SgdOptions::new(0.1)).unwrap_err().to_string().contains("twice"));
        let e = Sgd::new(vec![ParamGroup::new(ps.clone())], SgdOptions::new(0.1).nesterov(true)).unwrap_err();
        assert!(e.to_string().contains("Nesterov"), "{e}");
        assert!(Adam::new(vec![ParamGroup::new(ps.clone())], AdamOptions::adam(1e-3).betas(1.0, 0.9)).is_err());
        let mut sgd = Sgd::new(vec![ParamGroup::new(ps.clone())], SgdOptions::new(0.1).momentum(0.5)).unwrap();
        assert!(sgd.set_lr(1, 0.1).unwrap_err().to_string().contains("no parameter group 1"));
        set_grads(&ps, 0);
        sgd.step().unwrap();
        let state = sgd.state_dict().unwrap();
        let mut adam = Adam::new(vec![ParamGroup::new(ps.clone())], AdamOptions::adam(1e-3)).unwrap();
        assert!(adam.load_state_dict(&state).unwrap_err().to_string().contains("SGD"));
        let mut other = Sgd::new(vec![ParamGroup::new(ps[..1].to_vec())], SgdOptions::new(0.1)).unwrap();
        assert!(other.load_state_dict(&state).unwrap_err().to_string().contains("other parameters"));
        let mut wrong = state.clone();
        wrong.tensors[0].1 = Tensor::zeros(&[7]);
        assert!(sgd.load_state_dict(&wrong).is_err());
    }
}
