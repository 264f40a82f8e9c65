"""A model of your own for prh: `source: "py:docs/examples/my_model.py:build"`.

build() returns a prh Embedder: load() puts the weights on a device, then
embed_batch() takes a list of PIL images and returns one pooled (B, D)
tensor per layer. Here a timm ResNet with weights from a local file.
"""
import timm
import torch
from timm.data import create_transform, resolve_data_config

from prh.models.base import BatchFeatures, Embedder, count_params


class MyResNet(Embedder):
    modality = "vision"
    pools = ("mean",)

    def __init__(self, weights: str, arch: str):
        super().__init__(f"my_{arch}")
        self.net = timm.create_model(arch, pretrained=False)
        self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        self.transform = create_transform(**resolve_data_config({}, model=self.net))

    def load(self, device, dtype=torch.float32):
        self.device, self.dtype = device, dtype
        self.net.to(device=device, dtype=dtype).eval()

    @property
    def layer_names(self):
        return [info["module"] for info in self.net.feature_info]

    @property
    def param_count(self):
        return count_params(self.net)

    def embed_batch(self, images):
        x = torch.stack([self.transform(im) for im in images]).to(self.device, self.dtype)
        stages = self.net.forward_intermediates(x, intermediates_only=True)
        return BatchFeatures([s.mean((2, 3)).float() for s in stages])


def build(weights: str, arch: str = "resnet18") -> Embedder:
    return MyResNet(weights, arch)
