mod layer;
mod method;
