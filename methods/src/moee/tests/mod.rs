//! The spec's tests (§1.4) at the method level: extraction by cumulative variance, capture on a
//! tiny ViT, one expert of every neuron equals the dense model, plans applied and rebuilt from
//! the method state, and the lifecycle through the trainer on generated CIFAR-format data.

mod extract;
mod lifecycle;
mod model;
