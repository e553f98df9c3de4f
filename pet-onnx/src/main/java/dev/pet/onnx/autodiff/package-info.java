/**
 * Reverse-mode automatic differentiation over ONNX graphs: {@link dev.pet.onnx.autodiff.Autodiff} appends a
 * backward graph of standard ONNX ops, rule by rule from a {@link dev.pet.onnx.autodiff.GradientRegistry}.
 */
package dev.pet.onnx.autodiff;
