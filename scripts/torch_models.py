"""The benchmark models of ../shared/DESIGN.md section 5 in PyTorch, layer for layer
as vkanchor builds them (same parameter order), for golden files and benchmarks."""
import torch
import torch.nn as nn


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class CNN(nn.Module):
    """Four conv3x3 (no bias) + BN + ReLU (32, 32, 64, 64), 2x2 max-pool after the
    2nd and 4th, global average pool, linear."""

    def __init__(self, in_ch, classes):
        super().__init__()
        chans = [32, 32, 64, 64]
        layers, c = [], in_ch
        for i, k in enumerate(chans):
            layers += [conv3x3(c, k), nn.BatchNorm2d(k), nn.ReLU()]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2, 2))
            c = k
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout), nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:  # 1x1 conv + BN projection where the shape changes
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    def __init__(self, in_ch, classes, stem, stages, blocks, strides):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(in_ch, stem), nn.BatchNorm2d(stem)
        layers, c = [], stem
        for width, n, s in zip(stages, blocks, strides):
            for b in range(n):
                layers.append(BasicBlock(c, width, s if b == 0 else 1))
                c = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(self.layers(x).mean(dim=(2, 3)))


def build(name, in_ch, classes):
    if name == "cnn":
        return CNN(in_ch, classes)
    if name == "resnet20":
        return ResNet(in_ch, classes, 16, [16, 32, 64], [3, 3, 3], [1, 2, 2])
    if name == "resnet18":
        return ResNet(in_ch, classes, 64, [64, 128, 256, 512], [2, 2, 2, 2], [1, 2, 2, 2])
    raise ValueError(name)


def anchored_input(x, ref_index, masked):
    """[ref or zeros, x - ref] along channels (DESIGN.md section 1)."""
    ref = x[ref_index]
    return torch.cat([torch.zeros_like(ref) if masked else ref, x - ref], dim=1)
