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


if __name__ == "__main__":
    main()
