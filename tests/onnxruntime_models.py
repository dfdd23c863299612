"""Writes ONNX models built with the onnx package, random inputs and
onnxruntime's outputs into a directory, for test_onnx's [.onnxruntime] case:
  python3 onnxruntime_models.py DIR
Each model NAME gets NAME.onnx, NAME.input (float32, raw), NAME.expected
(float32, raw) and a line "NAME in_dims... ; out_dims..." in DIR/models.txt.
Exit 77 when onnx, onnxruntime or numpy is missing."""
import sys

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import onnxruntime as ort
except ImportError as e:
    print("onnx/onnxruntime/numpy not installed: skipped (%s)" % e)
    sys.exit(77)

out_dir = sys.argv[1]
rng = np.random.default_rng(1234)


def w(*shape, scale=None):
    s = scale if scale is not None else 1.0 / np.sqrt(np.prod(shape[1:]) if len(shape) > 1 else 1)
    return (rng.standard_normal(shape) * s).astype(np.float32)


def model(name, nodes, inits, sample, out_shape, opset=17, out_name="y"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + list(sample))
    y = helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)
    g = helper.make_graph(nodes, name, [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnxruntime_models.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    path = "%s/%s.onnx" % (out_dir, name)
    onnx.save(m, path)
    xin = rng.standard_normal([3] + list(sample)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    yout = sess.run(None, {"x": xin})[0].astype(np.float32)
    xin.tofile("%s/%s.input" % (out_dir, name))
    yout.tofile("%s/%s.expected" % (out_dir, name))
    with open("%s/models.txt" % out_dir, "a") as f:
        f.write("%s %s ; %s\n" % (name, " ".join(map(str, xin.shape)), " ".join(map(str, yout.shape))))


N = helper.make_node

# MLP: Flatten, Gemm (transB), Relu, Gemm, LogSoftmax.
model("mlp", [N("Flatten", ["x"], ["f"]), N("Gemm", ["f", "w1", "b1"], ["h"], transB=1), N("Relu", ["h"], ["r"]),
              N("Gemm", ["r", "w2", "b2"], ["o"], transB=1), N("LogSoftmax", ["o"], ["y"], axis=1)],
      {"w1": w(32, 784), "b1": w(32, scale=0.1), "w2": w(10, 32), "b2": w(10, scale=0.1)}, [1, 28, 28], ["N", 10])

# LeNet-5 with PyTorch's flatten chain (Shape -> Gather -> Unsqueeze -> Concat -> Reshape).
model("lenet5", [
    N("Conv", ["x", "c1w", "c1b"], ["c1"], kernel_shape=[5, 5]), N("Tanh", ["c1"], ["t1"]),
    N("MaxPool", ["t1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
    N("Conv", ["p1", "c2w", "c2b"], ["c2"], kernel_shape=[5, 5]), N("Tanh", ["c2"], ["t2"]),
    N("MaxPool", ["t2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
    N("Shape", ["p2"], ["s"]), N("Gather", ["s", "zero"], ["n"], axis=0), N("Unsqueeze", ["n", "ax0"], ["nu"]),
    N("Concat", ["nu", "m1"], ["shape"], axis=0), N("Reshape", ["p2", "shape"], ["fl"]),
    N("Gemm", ["fl", "f1w", "f1b"], ["f1"], transB=1), N("Tanh", ["f1"], ["t3"]),
    N("Gemm", ["t3", "f2w", "f2b"], ["y"], transB=1)],
    {"c1w": w(16, 1, 5, 5), "c1b": w(16, scale=0.1), "c2w": w(32, 16, 5, 5), "c2b": w(32, scale=0.1),
     "f1w": w(128, 512), "f1b": w(128, scale=0.1), "f2w": w(10, 128), "f2b": w(10, scale=0.1),
     "zero": np.array(0, dtype=np.int64), "ax0": np.array([0], dtype=np.int64),
     "m1": np.array([-1], dtype=np.int64)}, [1, 28, 28], ["N", 10])

# Residual block: Conv-BN-Relu-Conv-BN, + x, Relu, GlobalAveragePool.
c = 8
model("resblock", [
    N("Conv", ["x", "k1"], ["a1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    N("BatchNormalization", ["a1", "s1", "b1", "m1", "v1"], ["n1"], epsilon=1e-5),
    N("Relu", ["n1"], ["r1"]),
    N("Conv", ["r1", "k2"], ["a2"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    N("BatchNormalization", ["a2", "s2", "b2", "m2", "v2"], ["n2"], epsilon=1e-5),
    N("Add", ["n2", "x"], ["sum"]), N("Relu", ["sum"], ["r"]), N("GlobalAveragePool", ["r"], ["y"])],
    {"k1": w(c, c, 3, 3), "k2": w(c, c, 3, 3), "s1": w(c, scale=1), "b1": w(c, scale=0.1), "m1": w(c, scale=0.1),
     "v1": np.abs(w(c, scale=1)) + 0.5, "s2": w(c, scale=1), "b2": w(c, scale=0.1), "m2": w(c, scale=0.1),
     "v2": np.abs(w(c, scale=1)) + 0.5}, [c, 7, 7], ["N", c, 1, 1])

# Transformer encoder block: two-head attention (MatMul, Reshape, Transpose, Softmax), LayerNorm, GELU.
S, D, H, F = 5, 16, 2, 32
hd = D // H
model("encoder", [
    N("MatMul", ["x", "wq"], ["q0"]), N("MatMul", ["x", "wk"], ["k0"]), N("MatMul", ["x", "wv"], ["v0"]),
    N("Reshape", ["q0", "heads"], ["q1"]), N("Transpose", ["q1"], ["q"], perm=[0, 2, 1, 3]),
    N("Reshape", ["k0", "heads"], ["k1"]), N("Transpose", ["k1"], ["kt"], perm=[0, 2, 3, 1]),
    N("Reshape", ["v0", "heads"], ["v1"]), N("Transpose", ["v1"], ["v"], perm=[0, 2, 1, 3]),
    N("MatMul", ["q", "kt"], ["s"]), N("Div", ["s", "sqrt_d"], ["ss"]), N("Softmax", ["ss"], ["p"], axis=-1),
    N("MatMul", ["p", "v"], ["a0"]), N("Transpose", ["a0"], ["a1"], perm=[0, 2, 1, 3]),
    N("Reshape", ["a1", "merge"], ["a"]), N("MatMul", ["a", "wo"], ["o"]), N("Add", ["x", "o"], ["r1"]),
    N("LayerNormalization", ["r1", "g1", "be1"], ["y1"], axis=-1, epsilon=1e-5),
    N("MatMul", ["y1", "w1"], ["h0"]), N("Add", ["h0", "bb1"], ["h1"]), N("Gelu", ["h1"], ["h2"]),
    N("MatMul", ["h2", "w2"], ["f0"]), N("Add", ["f0", "bb2"], ["f1"]), N("Add", ["y1", "f1"], ["r2"]),
    N("LayerNormalization", ["r2", "g2", "be2"], ["y"], axis=-1, epsilon=1e-5)],
    {"wq": w(D, D), "wk": w(D, D), "wv": w(D, D), "wo": w(D, D), "w1": w(D, F), "bb1": w(F, scale=0.1),
     "w2": w(F, D), "bb2": w(D, scale=0.1), "g1": w(D, scale=1), "be1": w(D, scale=0.1), "g2": w(D, scale=1),
     "be2": w(D, scale=0.1), "heads": np.array([0, S, H, hd], dtype=np.int64),
     "merge": np.array([0, S, D], dtype=np.int64), "sqrt_d": np.array(np.sqrt(hd), dtype=np.float32)},
    [S, D], ["N", S, D], opset=20)
# Decoder: ConvTranspose (stride 2, padding, output_padding, bias) and a 1-D one, Sigmoid.
model("deconv", [
    N("ConvTranspose", ["x", "t1", "tb"], ["u"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
      output_padding=[1, 1]),
    N("Relu", ["u"], ["r"]), N("ConvTranspose", ["r", "t2"], ["v"], kernel_shape=[2, 2], dilations=[2, 2]),
    N("Sigmoid", ["v"], ["y"])],
    {"t1": w(4, 3, 3, 3), "tb": w(3, scale=0.1), "t2": w(3, 2, 2, 2)}, [4, 5, 5], ["N", 2, 12, 12])

# ResNet-20 (He et al. 2016, CIFAR form, on a 1x28x28 input as aimc's resnet20): conv3x3(16)-BN-Relu, three
# stages of three basic blocks (16/32/64 channels, stride 2 at the start of stages 2 and 3; a 1x1 conv + BN
# shortcut where the shape changes, the residual Add otherwise), GlobalAveragePool, Flatten, Gemm 64 -> 10.
rn_nodes, rn_inits = [], {}


def conv_bn(name, x, cin, cout, k, stride, relu):
    rn_inits[name + ".w"] = w(cout, cin, k, k, scale=np.sqrt(2.0 / (cin * k * k)))
    rn_inits[name + ".s"] = (0.5 + 0.5 * np.abs(w(cout, scale=1))).astype(np.float32)
    rn_inits[name + ".b"] = w(cout, scale=0.1)
    rn_inits[name + ".m"] = w(cout, scale=0.1)
    rn_inits[name + ".v"] = (np.abs(w(cout, scale=1)) + 0.5).astype(np.float32)
    rn_nodes.append(N("Conv", [x, name + ".w"], [name + "_c"], kernel_shape=[k, k], strides=[stride, stride],
                      pads=[k // 2] * 4))
    rn_nodes.append(N("BatchNormalization", [name + "_c"] + [name + s for s in (".s", ".b", ".m", ".v")],
                      [name + "_n"], epsilon=1e-5))
    if not relu:
        return name + "_n"
    rn_nodes.append(N("Relu", [name + "_n"], [name + "_r"]))
    return name + "_r"


h = conv_bn("stem", "x", 1, 16, 3, 1, True)
cin = 16
for stage in range(3):
    cout = 16 << stage
    for blk in range(3):
        name = "s%d.b%d" % (stage, blk)
        stride = 2 if (blk == 0 and stage > 0) else 1
        a = conv_bn(name + ".1", h, cin, cout, 3, stride, True)
        b = conv_bn(name + ".2", a, cout, cout, 3, 1, False)
        sc = conv_bn(name + ".sc", h, cin, cout, 1, stride, False) if (stride != 1 or cin != cout) else h
        rn_nodes.append(N("Add", [b, sc], [name + "_sum"]))
        rn_nodes.append(N("Relu", [name + "_sum"], [name + "_out"]))
        h, cin = name + "_out", cout
rn_nodes += [N("GlobalAveragePool", [h], ["gap"]), N("Flatten", ["gap"], ["flat"]),
             N("Gemm", ["flat", "fc.w", "fc.b"], ["y"], transB=1)]
rn_inits["fc.w"] = w(10, 64)
rn_inits["fc.b"] = w(10, scale=0.1)
model("resnet20", rn_nodes, rn_inits, [1, 28, 28], ["N", 10])

# Two graph inputs (for the command line's --input-shape per input; not in models.txt): a [N, 3, 4], b [N, K].
ga = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, 4])
gb = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", "K"])
gy = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 2])
g2 = helper.make_graph([N("Unsqueeze", ["b", "axis1"], ["bu"]), N("Concat", ["a", "bu"], ["cat"], axis=1),
                        N("MatMul", ["cat", "w2in"], ["y"])], "two_inputs", [ga, gb], [gy],
                       [numpy_helper.from_array(w(4, 2), "w2in"), numpy_helper.from_array(np.array([1]), "axis1")])
m2 = helper.make_model(g2, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnxruntime_models.py")
m2.ir_version = 8
onnx.checker.check_model(m2)
onnx.save(m2, "%s/two_inputs.onnx" % out_dir)
print("wrote models to", out_dir)
