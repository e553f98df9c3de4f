/**
 * In-graph optimizers (AdamW, AdamWeightDecay, SGD) and the builders of train-step, gradient-accumulation and
 * evaluation graphs.
 */
package dev.pet.onnx.optim;
