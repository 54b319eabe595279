"""The PyTorch walkthrough of README.md and docs/models.md: train a small CNN on the digits edgekit ships
and export it with torch's default exporter (dynamo, opset 18+, weights in digits_cnn.onnx.data).

    pip install -e ".[torch]"
    python examples/torch_export.py
    edgekit export digits_cnn.onnx --dataset digits --target tflite --target tflite-int8 --out runs/torch-cnn
"""
import torch
import torch.nn as nn

import edgekit

ds = edgekit.load_dataset("digits")  # 28x28 grey digits, (N, H, W, C) float32 in [0, 1]
x = torch.from_numpy(ds.x_train.transpose(0, 3, 1, 2))  # PyTorch takes (N, C, H, W)
y = torch.from_numpy(ds.y_train)
torch.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
opt = torch.optim.Adam(model.parameters(), 3e-3)
for epoch in range(10):
    for i in torch.randperm(len(x)).split(64):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[i]), y[i]).backward()
        opt.step()
model.eval()
torch.onnx.export(model, (x[:1],), "digits_cnn.onnx")  # torch's default exporter (dynamo, opset 18+)
