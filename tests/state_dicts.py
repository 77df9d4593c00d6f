"""ImageNet state dicts in torchvision's and timm's key layouts, written by hand from their model
definitions (torchvision.models.resnet / vgg, timm.models.vgg), so tests need neither package
nor a download. Key counts and parameter totals are checked against torchvision's own."""

import torch

VGG_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
# torchvision's numbers: len(model.state_dict()), sum(p.numel() for p in model.parameters())
TORCHVISION_KEYS = {"resnet18": 122, "resnet50": 320, "vgg11": 22, "vgg19": 38}
TORCHVISION_PARAMETERS = {"resnet18": 11_689_512, "resnet50": 25_557_032,
                          "vgg11": 132_863_336, "vgg19": 143_667_240}


def _bn(prefix: str, c: int) -> dict:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def resnet_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """torchvision.models.resnet18/50 (timm's resnet18/50 use the same names)."""
    bottleneck, depths = {"resnet18": (False, (2, 2, 2, 2)), "resnet50": (True, (3, 4, 6, 3))}[arch]
    shapes = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    cin = 64
    for i, depth in enumerate(depths, 1):
        width = 64 * 2 ** (i - 1)
        cout = width * (4 if bottleneck else 1)
        for j in range(depth):
            p = f"layer{i}.{j}."
            convs = ([(cin, width, 1), (width, width, 3), (width, cout, 1)] if bottleneck
                     else [(cin, width, 3), (width, cout, 3)])
            for n, (a, b, k) in enumerate(convs, 1):
                shapes[f"{p}conv{n}.weight"] = (b, a, k, k)
                shapes.update(_bn(f"{p}bn{n}", b))
            if j == 0 and (i > 1 or cin != cout):
                shapes[f"{p}downsample.0.weight"] = (cout, cin, 1, 1)
                shapes.update(_bn(f"{p}downsample.1", cout))
            cin = cout
    shapes["fc.weight"], shapes["fc.bias"] = (1000, cin), (1000,)
    return shapes


def vgg_shapes(arch: str, *, batch_norm: bool = False, timm: bool = False) -> dict:
    """torchvision.models.vgg11/19 (`_bn`: with batch norm); timm's vgg keeps the features and
    names its classifier pre_logits.fc1/fc2 (convolutions) and head.fc."""
    shapes, i, cin = {}, 0, 3
    for v in VGG_CONFIGS[arch]:
        if v == "M":
            i += 1
            continue
        shapes[f"features.{i}.weight"], shapes[f"features.{i}.bias"] = (v, cin, 3, 3), (v,)
        if batch_norm:
            shapes.update(_bn(f"features.{i + 1}", v))
        i, cin = i + (3 if batch_norm else 2), v
    if timm:
        shapes.update({"pre_logits.fc1.weight": (4096, 512, 7, 7), "pre_logits.fc1.bias": (4096,),
                       "pre_logits.fc2.weight": (4096, 4096, 1, 1), "pre_logits.fc2.bias": (4096,),
                       "head.fc.weight": (1000, 4096), "head.fc.bias": (1000,)})
    else:
        shapes.update({"classifier.0.weight": (4096, 25088), "classifier.0.bias": (4096,),
                       "classifier.3.weight": (4096, 4096), "classifier.3.bias": (4096,),
                       "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,)})
    return shapes


def imagenet_shapes(arch: str, **kwargs) -> dict[str, tuple[int, ...]]:
    return resnet_shapes(arch) if arch.startswith("resnet") else vgg_shapes(arch, **kwargs)


def make_state(shapes: dict, seed: int = 0, *, lean_head: bool = True) -> dict:
    """Random tensors of these shapes. With `lean_head`, tensors of over 4M values (VGG's
    classifier) are one zero broadcast to the shape: the loader reads only their shapes."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif lean_head and torch.Size(shape).numel() > 4_000_000:
            state[key] = torch.zeros(()).expand(shape)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        else:
            state[key] = torch.randn(shape, generator=g) * 0.05
    return state
