#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora and dictionaries (tests/fuzz/README.md).

    python3 tests/fuzz/make_corpus.py build/tools/cli/aimc

The RPU configs and checkpoint metadata come from real checkpoints that the
aimc binary writes (short trainings on 64 samples); the safetensors and IDX
seeds are small files in the layouts aimc reads. The output is the same for a given aimc version up
to the training times recorded in the run state (aimc.training).
"""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
DICT = os.path.join(HERE, "dict")


def safetensors_bytes(tensors, metadata=None):
    """tensors: list of (name, dtype code, shape, raw bytes), in data order."""
    header, offset = {}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def write(kind, name, data):
    os.makedirs(os.path.join(CORPUS, kind), exist_ok=True)
    with open(os.path.join(CORPUS, kind, name), "wb") as f:
        f.write(data)


def json_keys(value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(k)
            json_keys(v, out)
    elif isinstance(value, list):
        for v in value:
            json_keys(v, out)
    elif isinstance(value, str):
        out.add(value)


def write_dict(kind, words):
    os.makedirs(DICT, exist_ok=True)
    with open(os.path.join(DICT, kind + ".dict"), "w") as f:
        for w in sorted(words):
            f.write(json.dumps(w) + "\n")


def onnx_corpus():
    """Small ONNX models (the onnx package's helper; skipped without it): every
    operator the importer reads appears in one of them, with tiny weights."""
    try:
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        print("onnx/numpy not installed: the onnx corpus is left as it is")
        return
    N = helper.make_node
    rng = np.random.default_rng(7)
    words = {"ai.onnx", "N", "x", "y"}

    def save(name, nodes, inits, sample, opset=17):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + list(sample))
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        g = helper.make_graph(nodes, name, [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_corpus")
        m.ir_version = 8
        for n in nodes:
            words.add(n.op_type)
            words.update(a.name for a in n.attribute)
        write("onnx", name, m.SerializeToString())

    f = lambda *s: rng.standard_normal(s).astype(np.float32)
    i64 = lambda *v: np.array(v, dtype=np.int64)
    save("mlp", [N("Flatten", ["x"], ["f"]), N("Gemm", ["f", "w", "b"], ["h"], transB=1, alpha=0.5),
                 N("LeakyRelu", ["h"], ["r"], alpha=0.1), N("MatMul", ["r", "w2"], ["o"]),
                 N("LogSoftmax", ["o"], ["y"], axis=1)],
         {"w": f(3, 8), "b": f(3), "w2": f(3, 2)}, [2, 2, 2])
    save("conv", [N("Conv", ["x", "k", "kb"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], group=1),
                  N("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], epsilon=1e-5, momentum=0.9),
                  N("Relu", ["n"], ["r"]), N("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                  N("AveragePool", ["p"], ["a"], kernel_shape=[1, 1]), N("Add", ["a", "p"], ["s2"]),
                  N("GlobalAveragePool", ["s2"], ["g"]), N("Shape", ["g"], ["sh"]),
                  N("Gather", ["sh", "zero"], ["n0"], axis=0), N("Unsqueeze", ["n0", "ax0"], ["nu"]),
                  N("Concat", ["nu", "m1"], ["shape"], axis=0), N("Reshape", ["g", "shape"], ["y"])],
         {"k": f(2, 1, 3, 3), "kb": f(2), "s": f(2), "b": f(2), "m": f(2), "v": np.abs(f(2)) + 1,
          "zero": np.array(0, dtype=np.int64), "ax0": i64(0), "m1": i64(-1)}, [1, 4, 4])
    save("attention", [N("MatMul", ["x", "wq"], ["q"]), N("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),
                       N("MatMul", ["q", "qt"], ["s"]), N("Div", ["s", "d"], ["sd"]), N("Softmax", ["sd"], ["p"], axis=-1),
                       N("MatMul", ["p", "x"], ["a"]), N("Sub", ["a", "x"], ["r"]), N("Pow", ["r", "two"], ["r2"]),
                       N("Sqrt", ["r2"], ["rs"]), N("Erf", ["rs"], ["e"]), N("Mul", ["e", "x"], ["m"]),
                       N("LayerNormalization", ["m", "g", "bb"], ["ln"], axis=-1, epsilon=1e-5),
                       N("Gelu", ["ln"], ["ge"]), N("Split", ["ge", "split"], ["s0", "s1"], axis=2),
                       N("Concat", ["s1", "s0"], ["c"], axis=2),
                       N("Slice", ["c", "st", "en", "axs"], ["sl"]), N("Tanh", ["sl"], ["t"]),
                       N("Sigmoid", ["t"], ["sg"]), N("ReduceMean", ["sg", "axs"], ["rm"], keepdims=1),
                       N("Squeeze", ["rm", "axs"], ["sq"]), N("Unsqueeze", ["sq", "axs"], ["us"]),
                       N("Identity", ["us"], ["id"]), N("Dropout", ["id"], ["y"])],
         {"wq": f(4, 4), "d": np.array(2, dtype=np.float32), "two": np.array(2, dtype=np.float32), "g": f(4),
          "bb": f(4), "split": i64(1, 3), "st": i64(0), "en": i64(3), "axs": i64(2)}, [3, 4], opset=20)
    words.update({"value", "value_float", "value_ints", "auto_pad", "NOTSET", "VALID", "count_include_pad",
                  "ceil_mode", "dilations", "transA", "transB", "beta", "num_outputs", "approximate", "none",
                  "to", "start", "end", "allowzero", "stash_type", "training_mode", "noop_with_empty_axes",
                  "ConvTranspose", "output_padding", "output_shape", "Cast", "Constant", "ConstantOfShape",
                  "ReduceSum", "Exp", "Neg"})
    write_dict("onnx", words)


def main():
    aimc = sys.argv[1]
    f32 = lambda *v: struct.pack("<%df" % len(v), *v)

    # safetensors: the dtypes, an empty tensor, a scalar, metadata.
    write("safetensors", "two_tensors_metadata", safetensors_bytes(
        [("a", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), ("b", "I32", [2], struct.pack("<2i", 7, -8))], {"k": "v"}))
    write("safetensors", "f64_scalar_i64", safetensors_bytes(
        [("s", "F64", [], struct.pack("<d", 0.5)), ("i", "I64", [3], struct.pack("<3q", 1, -2, 3))]))
    write("safetensors", "empty_tensor", safetensors_bytes([("e", "F32", [0, 3], b"")]))

    # IDX (first byte: 0 images, 1 labels; then the file, raw or gzip).
    images = struct.pack(">IIII", 0x803, 3, 4, 4) + bytes(range(48))
    labels = struct.pack(">II", 0x801, 3) + bytes([0, 9, 4])
    write("idx", "images_raw", b"\x00" + images)
    write("idx", "labels_raw", b"\x01" + labels)
    write("idx", "images_gz", b"\x00" + gzip.compress(images, mtime=0))
    write("idx", "labels_gz", b"\x01" + gzip.compress(labels, mtime=0))

    # Real checkpoints of short trainings: their RPU configs seed the config
    # target; their metadata (with the tensors dropped, so the files stay
    # small and the load fails only after the model is rebuilt) and one whole
    # lenet5 checkpoint seed the checkpoint target.
    # lenet5 (60k weights) rebuilds fastest, which the fuzzer's speed needs.
    runs = [
        ("lenet5", "InferenceRPUConfig", "sgd"),
        ("lenet5", "StandardHWATrainingPreset", "sgd"),
        ("lenet5", "TorchInferenceRPUConfig", "sgd"),
        ("lenet5", "FloatingPointRPUConfig", "adam"),
        ("lenet5", "SingleRPUConfig", "sgd"),
        ("lenet5", "ReRamSBPreset", "sgd"),
        ("lenet5", "TikiTakaReRamSBPreset", "sgd"),
        ("lenet5", "MixedPrecisionReRamSBPreset", "sgd"),
        ("lenet5", "MixedPrecisionPCMPreset", "sgd"),
        ("mlp", "InferenceRPUConfig", "sgd"),
    ]
    config_words, checkpoint_words = set(), {"aimc.model", "aimc.optimizer", "aimc.version", "__metadata__",
                                             "dtype", "shape", "data_offsets", "F32", "F64", "I32", "I64"}
    # Architecture values (json_keys below collects the keys): module types and graph ops.
    checkpoint_words |= {"Graph", "Sequential", "BasicBlock", "Linear", "Conv2d", "BatchNorm2d", "ReLU", "Flatten",
                         "MaxPool2d", "AnalogLinear", "AnalogConv2d", "add", "matmul", "relu", "softmax", "reshape",
                         "transpose", "concat", "nodes", "inputs", "outputs", "op", "module", "attributes",
                         "constants", "axis", "perm"}
    with tempfile.TemporaryDirectory() as tmp:
        for model, config, optimizer in runs:
            out = os.path.join(tmp, model + "_" + config + ".safetensors")
            subprocess.run([aimc, "train", "--model", model, "--rpu-config", config, "--optimizer", optimizer,
                            "--epochs", "1", "--batch-size", "32", "--limit-train", "64", "--limit-test", "32",
                            "--threads", "1", "--out", out], check=True, stdout=subprocess.DEVNULL)
            header, data = read_safetensors(out)
            metadata = header["__metadata__"]
            description = json.loads(metadata["aimc.model"])
            for key, value in metadata.items():  # the model, optimizer and run state
                checkpoint_words.add(key)
                if value.startswith("{"):
                    json_keys(json.loads(value), checkpoint_words)
            if "rpu_config" in description:
                json_keys(description["rpu_config"], config_words)
                write("rpu_config", config, json.dumps(description["rpu_config"], indent=1).encode())
            write("checkpoint", model + "_" + config + "_metadata",
                  safetensors_bytes([("x", "F32", [1], f32(0))], metadata))
            if model == "lenet5" and config == "InferenceRPUConfig":
                with open(out, "rb") as f:
                    write("checkpoint", "lenet5_whole", f.read())
    write_dict("rpu_config", config_words)
    write_dict("checkpoint", checkpoint_words)
    write_dict("safetensors", {"dtype", "shape", "data_offsets", "__metadata__", "F32", "F64", "I32", "I64"})
    onnx_corpus()


if __name__ == "__main__":
    main()
