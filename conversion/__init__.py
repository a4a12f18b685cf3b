"""Model toolchain: train, quantize and verify the attribute model (TensorFlow imported lazily)."""
