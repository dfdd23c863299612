#!/usr/bin/env python3
"""Writes tests/bad_inputs/: files a user could hand to aimc by mistake or
that another tool could corrupt. tests/test_bad_inputs.cpp runs every
subcommand on each and expects exit 2, one line on stderr naming the file,
field or flag, and no output file.

    python3 tests/bad_inputs/make_bad_inputs.py
"""
import gzip
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.join(HERE, "..", "fuzz", "corpus")


def safetensors_bytes(header, data=b""):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def put(kind, name, data):
    os.makedirs(os.path.join(HERE, kind), exist_ok=True)
    with open(os.path.join(HERE, kind, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    for kind in ("checkpoints", "configs", "datasets"):
        shutil.rmtree(os.path.join(HERE, kind), ignore_errors=True)
    with open(os.path.join(FUZZ, "checkpoint", "lenet5_InferenceRPUConfig_metadata"), "rb") as f:
        good = f.read()
    (n,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + n])
    meta = header["__metadata__"]
    one = {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}

    # Checkpoints.
    put("checkpoints", "empty.safetensors", b"")
    put("checkpoints", "truncated_header.safetensors", good[: 8 + n // 2])
    put("checkpoints", "truncated_data.safetensors", good[:-2])
    put("checkpoints", "huge_header_length.safetensors", struct.pack("<Q", 1 << 62) + good[8:])
    put("checkpoints", "not_json_header.safetensors", struct.pack("<Q", 8) + b"{{{{{{{{" + b"\0" * 4)
    put("checkpoints", "zero_dim_beside_huge.safetensors",
        safetensors_bytes({"x": {"dtype": "F32", "shape": [0, 1 << 32, 1 << 32], "data_offsets": [0, 0]}}))
    put("checkpoints", "unknown_dtype.safetensors",
        safetensors_bytes({"x": {"dtype": "Q8", "shape": [1], "data_offsets": [0, 1]}}, b"\0"))
    put("checkpoints", "no_aimc_metadata.safetensors", safetensors_bytes(one, b"\0" * 4))
    for name, change in [
        ("unknown_model", lambda d: d.update(model="resnet9000")),
        ("analog_seed_string", lambda d: d.update(analog_seed="seven")),
        ("analog_seed_negative", lambda d: d.update(analog_seed=-1)),
        ("rpu_config_out_of_range", lambda d: d["rpu_config"].setdefault("forward", {}).update(out_noise=-1)),
        ("rpu_config_unknown_family", lambda d: d["rpu_config"].update(family="QuantumRPUConfig")),
        ("rpu_config_nested_3000", None),
    ]:
        d = json.loads(meta["aimc.model"])
        if change:
            change(d)
            text = json.dumps(d)
        else:
            text = json.dumps(d)[:-1] + ', "deep": ' + "[" * 3000 + "]" * 3000 + "}"
        put("checkpoints", name + ".safetensors", safetensors_bytes(dict(one, __metadata__=dict(meta, **{"aimc.model": text})), b"\0" * 4))
    # The training run state (aimc.training) that --resume continues from.
    for name, text in [
        ("run_state_not_json", "{epoch: 1"),
        ("run_state_epoch_beyond_run", json.dumps(dict(json.loads(meta["aimc.training"]), epoch=7))),
        ("run_state_negative_step", json.dumps(dict(json.loads(meta["aimc.training"]), global_step=-3))),
    ]:
        put("checkpoints", name + ".safetensors",
            safetensors_bytes(dict(one, __metadata__=dict(meta, **{"aimc.training": text})), b"\0" * 4))
    put("checkpoints", "tensors_of_another_model.safetensors",
        safetensors_bytes(dict(one, __metadata__=meta), b"\0" * 4))

    # RPU configs.
    put("configs", "empty.json", "")
    put("configs", "malformed.json", '{"family": "InferenceRPUConfig", ')
    put("configs", "not_an_object.json", "[1, 2, 3]")
    put("configs", "unknown_family.json", '{"family": "QuantumRPUConfig"}')
    put("configs", "unknown_field.json", '{"family": "InferenceRPUConfig", "forward": {"out_nosie": 0.1}}')
    put("configs", "out_of_range.json", '{"family": "InferenceRPUConfig", "forward": {"out_noise": -1}}')
    put("configs", "wrong_type.json", '{"family": "InferenceRPUConfig", "forward": 3}')
    put("configs", "overflowing_number.json", '{"family": "InferenceRPUConfig", "forward": {"out_noise": 1e999}}')
    put("configs", "nested_3000.json", '{"family": "InferenceRPUConfig", "drift_compensation": ' + "[" * 3000 + "]" * 3000 + "}")
    put("configs", "pulsed_bad_device.json", '{"family": "SingleRPUConfig", "device": {"type": "ConstantStepDevice", "dw_min": -0.001}}')
    put("configs", "pulsed_unknown_device.json", '{"family": "SingleRPUConfig", "device": {"type": "WarpDriveDevice"}}')

    # Datasets (each a directory with train and t10k splits, 28x28).
    def images(count, pixels=None):
        body = bytes(pixels if pixels is not None else [128] * (count * 784))
        return struct.pack(">IIII", 0x803, count, 28, 28) + body

    def labels(values):
        return struct.pack(">II", 0x801, len(values)) + bytes(values)

    def dataset(name, train_images, train_labels, test_images=None, test_labels=None, gz=False):
        for split, im, lb in (("train", train_images, train_labels),
                              ("t10k", test_images or train_images, test_labels or train_labels)):
            suffix = ".gz" if gz else ""
            put("datasets/" + name, split + "-images-idx3-ubyte" + suffix, gzip.compress(im, mtime=0) if gz else im)
            put("datasets/" + name, split + "-labels-idx1-ubyte" + suffix, gzip.compress(lb, mtime=0) if gz else lb)

    dataset("label_out_of_range", images(4), labels([0, 1, 12, 3]))
    dataset("truncated_images", images(4)[:-100], labels([0, 1, 2, 3]))
    dataset("counts_disagree", images(4), labels([0, 1, 2]))
    dataset("empty_test_split", images(4), labels([0, 1, 2, 3]), images(0, []), labels([]))
    dataset("claims_gigabytes", struct.pack(">IIII", 0x803, 2500000, 28, 28) + bytes(100), labels([0, 1]))
    dataset("corrupt_gzip", images(4), labels([0, 1, 2, 3]), gz=True)
    path = os.path.join(HERE, "datasets", "corrupt_gzip", "t10k-images-idx3-ubyte.gz")
    with open(path, "r+b") as f:
        f.seek(30)
        f.write(b"\xde\xad\xbe\xef" * 8)
    dataset("wrong_magic", struct.pack(">IIII", 0x802, 4, 28, 28) + bytes(4 * 784), labels([0, 1, 2, 3]))


if __name__ == "__main__":
    main()
