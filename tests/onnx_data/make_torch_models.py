"""Writes the PyTorch-exported ONNX models that test_onnx reads (run once by
hand; the tests need neither PyTorch nor onnx):
    python3 make_torch_models.py        # needs torch and onnx
Each model NAME gets NAME.onnx (torch.onnx.export, TorchScript exporter,
opset 17, dynamic batch), NAME.input and NAME.expected (float32, raw: a batch
of 3 and PyTorch's own outputs), listed in models.txt as
"NAME in_dims... ; out_dims...". They carry the patterns of real exports:
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains, Mod/Slice/Cast shape
arithmetic, and nn.TransformerEncoderLayer's attention, which moves the batch
to dim 1."""
import torch
import torch.nn as nn

torch.manual_seed(0)
torch.backends.mha.set_fastpath_enabled(False)  # the exportable (unfused) attention


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 5, padding=2)
        self.c2 = nn.Conv2d(4, 8, 5)
        self.bn = nn.BatchNorm2d(8)
        self.f1 = nn.Linear(200, 32)
        self.f2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.bn(self.c2(x))), 2)
        x = x.view(x.size(0), -1)
        return self.f2(nn.functional.gelu(self.f1(x)))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, activation="gelu")

    def forward(self, x):
        return self.layer(x)


lines = []
for name, model, x in [("torch_cnn", SmallCNN(), torch.randn(3, 1, 28, 28)),
                       ("torch_encoder", Encoder(), torch.randn(3, 5, 16))]:
    model.eval()
    if name == "torch_cnn":  # running statistics away from 0 and 1
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
    with torch.no_grad():
        torch.onnx.export(model, x, name + ".onnx", opset_version=17, dynamo=False, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        y = model(x)
    x.numpy().tofile(name + ".input")
    y.numpy().tofile(name + ".expected")
    lines.append("%s %s ; %s" % (name, " ".join(map(str, x.shape)), " ".join(map(str, y.shape))))
with open("models.txt", "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
