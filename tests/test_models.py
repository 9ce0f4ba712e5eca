"""Model registry: every model builds and maps tiny inputs to [N, num_classes] logits; weights and layer names."""

from __future__ import annotations

import functools

import pytest
import torch

from medlib.config import ModelConfig
from medlib.learn.models import (MultiViewNet, VGG3D, ZeroPadShortcut, available_models, build_from_config,
                                 build_model, default_cam_layer, get_layer, vit_patch_size, vit_reshape_transform)
from medlib.learn.weights import _fix_densenet_keys, imagenet_weights_file


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "densenet121", "simplevit"])
def test_2d_single_view(name):
    model = build_model(name, in_channels=1, num_classes=2, spatial_dims=2, image_size=(32, 32))
    assert _forward(model, torch.randn(4, 1, 32, 32)).shape == (4, 2)
    assert isinstance(get_layer(model, default_cam_layer(model)), torch.nn.Module)


@pytest.mark.parametrize("name", ["resnet18", "simplevit"])
@pytest.mark.parametrize("mode", ["separate", "shared"])
def test_2d_multi_view(name, mode):
    model = build_model(name, in_channels=2, num_classes=3, image_size=(32, 32), multiview=mode)
    assert isinstance(model, MultiViewNet)
    assert len(model.backbones) == (2 if mode == "separate" else 1)
    assert _forward(model, torch.randn(4, 2, 32, 32)).shape == (4, 3)
    assert default_cam_layer(model).startswith("backbones.0.")
    get_layer(model, default_cam_layer(model))


def test_multi_view_views_are_not_mixed_up():
    """With separate backbones, view 1's input changes the output only through backbone 1."""
    torch.manual_seed(0)
    model = build_model("resnet18", in_channels=2, image_size=(32, 32)).eval()
    x = torch.randn(2, 2, 32, 32)
    x2 = x.clone()
    x2[:, 1] = torch.randn(2, 32, 32)
    with torch.no_grad():
        f0 = model.backbones[0](x[:, :1])
        assert torch.equal(f0, model.backbones[0](x2[:, :1]))
        assert not torch.allclose(model(x), model(x2))


def test_multi_view_rejects_wrong_view_count():
    model = build_model("resnet18", in_channels=2, image_size=(32, 32))
    with pytest.raises(ValueError, match=r"expects x of shape \[N, 2, H, W\]"):
        model(torch.randn(2, 3, 32, 32))


def test_2d_multichannel_without_multiview_is_one_backbone():
    model = build_model("resnet18", in_channels=3, multiview=None)
    assert not isinstance(model, MultiViewNet) and model.conv1.in_channels == 3
    assert _forward(model, torch.randn(2, 3, 32, 32)).shape == (2, 2)


@pytest.mark.parametrize("name, layer", [("resnet10", "layer4"), ("resnet18", "layer4"), ("vgg16", "features.4")])
def test_3d_models(name, layer):
    model = build_model(name, in_channels=3, num_classes=2, spatial_dims=3)
    assert _forward(model, torch.randn(4, 3, 16, 16, 16)).shape == (4, 2)
    assert default_cam_layer(model) == layer
    get_layer(model, layer)


@pytest.mark.parametrize("name, dims, shape, layer", [
    ("resnet18", 2, (1, 224, 224), "layer4"),   # 7 x 7 at stride 32: the usual layer
    ("resnet18", 2, (1, 64, 64), "layer2"),     # layer4 2 x 2, layer3 4 x 4, layer2 8 x 8 >= 7
    ("resnet18", 2, (1, 28, 28), "layer1"),     # MedMNIST: layer2 is 4 x 4, layer1 7 x 7
    ("resnet10", 3, (3, 32, 32, 32), "layer2"),  # the glioma demo: layer3 2^3, layer2 4^3
    ("resnet18", 3, (1, 128, 128, 128), "layer4"),  # 4^3 at stride 32
    ("vgg16", 3, (3, 32, 32, 32), "features.2"),  # 16, 8, 4: the third block's pool gives 4^3
    ("vgg16", 3, (3, 16, 16, 16), "features.1"),  # 8, 4
    ("densenet121", 2, (1, 64, 64), "features.denseblock2"),  # features 2 x 2, denseblock3 4 x 4, denseblock2 8 x 8
])
def test_default_cam_layer_reaches_the_minimum_map(name, dims, shape, layer):
    model = build_model(name, in_channels=shape[0], spatial_dims=dims).train()
    assert default_cam_layer(model, shape) == layer
    assert model.training  # the probe leaves the model's mode as it was
    multi = build_model(name, in_channels=2, spatial_dims=2) if dims == 2 else None
    if multi is not None:
        assert default_cam_layer(multi, (2, *shape[1:])) == f"backbones.0.{layer}"


def _study(models, size, *, explain=True):
    from medlib.config import config_from_dict

    return config_from_dict({"study": {"name": "t", "title": "t", "question": "q", "population": "p", "unit": "case",
                                       "positive": "yes", "negative": "no"},
                             "image": {"size": list(size)}, "models": models, "explain": {"enabled": explain}})


def test_size_check_refuses_densenet121_at_28_px_before_any_work():
    from medlib.learn.sizes import check_input_sizes

    cfg = _study([{"name": "resnet18"}, {"name": "densenet121", "label": "DenseNet121"}], (28, 28))
    with pytest.raises(ValueError) as err:
        check_input_sizes(cfg, source="params/x.yaml")
    text = str(err.value)
    # the model, the size, and the smallest size that works, by hand: conv0 (7, stride 2, pad 3) and pool0
    # (3, stride 2, pad 1) take 28 → 14 → 7, transitions 1-3 halve (floor) 7 → 3 → 1 → 0: no output. 29 → 15 → 8
    # → 4 → 2 → 1 runs, and denseblock1's map (8 x 8) reaches the 7 x 7 minimum.
    assert "params/x.yaml: models[1] (DenseNet121: densenet121, 2D) at image.size [28, 28]" in text
    assert "cannot run" in text and "smallest size that works with a Grad-CAM map is 29 x 29" in text
    assert "set image.size to at least [29, 29]" in text
    layers = check_input_sizes(_study([{"name": "densenet121"}], (32, 32)))
    assert layers["densenet121"].layer == "features.denseblock1" and layers["densenet121"].cells == (8, 8)


def test_size_check_refuses_a_size_without_a_fine_enough_map_and_chooses_earlier_layers():
    from medlib.learn.sizes import check_input_sizes

    # a 3D ResNet at 8^3 runs, but its finest layer (layer1, stride 4) is 2^3 < 4^3; 13^3 gives 4^3
    cfg = _study([{"name": "resnet10", "spatial_dims": 3}], (8, 8, 8))
    with pytest.raises(ValueError, match=r"finest Grad-CAM layer \(layer1\) gives a 2 × 2 × 2 map.*"
                                         r"smallest size that works with a Grad-CAM map is 13 x 13 x 13"):
        check_input_sizes(cfg)
    assert check_input_sizes(_study([{"name": "resnet10", "spatial_dims": 3}], (8, 8, 8), explain=False)) == \
        {"resnet10": None}  # without Grad-CAM the network alone decides
    layers = check_input_sizes(_study([{"name": "resnet18"}, {"name": "simplevit"}], (64, 64)))
    resnet = layers["resnet18"]
    assert (resnet.layer, resnet.cells, resnet.automatic) == ("layer2", (8, 8), True)
    assert resnet.describe() == ("layer2 (8 × 8 map; layer4 would give 2 × 2 at this input size, under the 7 × 7 "
                                 "minimum: an earlier layer was chosen automatically; HiResCAM maps)")
    assert resnet.method == "hirescam"
    assert layers["simplevit"].cells == (8, 8)  # patch 8 at 64 px
    with pytest.raises(KeyError, match="models\\[0\\].cam_layer"):
        check_input_sizes(_study([{"name": "resnet18", "cam_layer": "layer9"}], (64, 64)))
    explicit = check_input_sizes(_study([{"name": "resnet18", "cam_layer": "layer4"}], (64, 64)))["resnet18"]
    assert explicit.describe() == "layer4 (2 × 2 map; models[].cam_layer)" and explicit.method == "gradcam"
    earlier = check_input_sizes(_study([{"name": "resnet18", "cam_layer": "layer3"}], (64, 64)))["resnet18"]
    assert earlier.method == "hirescam" and earlier.describe().endswith("models[].cam_layer; HiResCAM maps)")


def test_medicalnet_layout():
    model = build_model("resnet10", in_channels=3, spatial_dims=3)
    assert model.conv1.kernel_size == (7, 7, 7) and model.conv1.stride == (2, 2, 2)
    assert model.layer2[0].downsample is not None  # shortcut B: 1x1x1 conv + BN
    vgg = build_model("vgg16", in_channels=1, spatial_dims=3)
    assert isinstance(vgg, VGG3D)
    assert sum(isinstance(m, torch.nn.Conv3d) for m in vgg.modules()) == 13
    assert sum(isinstance(m, torch.nn.BatchNorm3d) for m in vgg.modules()) == 13


def test_3d_resnet_width_scales_its_channels():
    half = build_model("resnet18", in_channels=3, spatial_dims=3, width=0.5)
    full = build_model("resnet18", in_channels=3, spatial_dims=3)
    assert half.conv1.out_channels == 32 and full.conv1.out_channels == 64
    assert half.fc.in_features == 256 and half(torch.zeros(2, 3, 32, 32, 32)).shape == (2, 2)


def test_vgg16_width_scales_every_block():
    full = build_model("vgg16", in_channels=3, spatial_dims=3)
    half = build_from_config(ModelConfig(name="vgg16", spatial_dims=3, width=0.5), in_channels=3,
                             image_size=(16, 16, 16))
    widths = lambda m: [c.out_channels for c in m.modules() if isinstance(c, torch.nn.Conv3d)]  # noqa: E731
    assert widths(half) == [w // 2 for w in widths(full)] and widths(half)[0] == 16
    assert len(widths(half)) == 13 and half.head[-1].in_features == 128
    assert _forward(half, torch.randn(2, 3, 16, 16, 16)).shape == (2, 2)
    n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 0.2 < n_params(half) / n_params(full) < 0.3  # convolution weights scale with width squared


def test_unknown_model_lists_available():
    with pytest.raises(KeyError, match=r"Unknown 3D model 'densenet121'.*resnet10.*vgg16"):
        build_model("densenet121", in_channels=1, spatial_dims=3)
    with pytest.raises(KeyError, match=r"Available 2D models: \['densenet121', 'resnet18', 'resnet50', 'simplevit'\]"):
        build_model("vgg19", in_channels=1)
    assert available_models(3) == ["resnet10", "resnet18", "vgg16"]
    assert "simplevit (2D)" in available_models()


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="resnet18", in_channels=0), "in_channels >= 1"),
    (dict(name="resnet18", in_channels=1, multiview="both"), "multiview must be"),
    (dict(name="resnet18", in_channels=1, spatial_dims=1), "spatial_dims must be"),
    (dict(name="simplevit", in_channels=1), "simplevit needs image_size"),
    (dict(name="simplevit", in_channels=1, image_size=(32, 32), pretrained=True), "no ImageNet weights"),
    (dict(name="vgg16", in_channels=1, spatial_dims=3, pretrained=True), "weights_path"),
    (dict(name="resnet18", in_channels=1, width=0.5), r"width 0.5 is not supported by the 2D model 'resnet18'"),
    (dict(name="densenet121", in_channels=1, width=2.0), r"only \['3D resnet10', '3D resnet18', '3D vgg16'\]"),
    (dict(name="vgg16", in_channels=1, spatial_dims=3, width=0.0), "width must be > 0"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


@pytest.mark.parametrize("size, patch", [((224, 224), 16), ((64, 64), 8), ((32, 32), 4), ((64, 32), 4),
                                         ((28, 28), 4), ((14, 14), 2)])
def test_vit_patch_size(size, patch):
    assert vit_patch_size(size) == patch


def test_vit_patch_size_error():
    with pytest.raises(ValueError, match=r"got image_size \(15, 15\)"):
        vit_patch_size((15, 15))
    with pytest.raises(ValueError, match="at least 14 pixels"):
        vit_patch_size((12, 12))


def test_vit_reshape_transform():
    tokens = torch.randn(2, 16, 8)
    out = vit_reshape_transform(tokens)
    assert out.shape == (2, 8, 4, 4)
    assert torch.equal(out[1, :, 2, 3], tokens[1, 2 * 4 + 3])
    assert functools.partial(vit_reshape_transform, grid=(2, 8))(tokens).shape == (2, 8, 2, 8)
    with pytest.raises(ValueError, match="do not form a 3x3 grid"):
        vit_reshape_transform(tokens, grid=(3, 3))


def test_get_layer_unknown_lists_names():
    model = build_model("resnet18", in_channels=1)
    assert get_layer(model, "layer4.1") is model.layer4[1]
    with pytest.raises(KeyError, match=r"Unknown layer 'layer5'.*'layer4'.*'fc'"):
        get_layer(model, "layer5")


def test_build_from_config():
    single = build_from_config(ModelConfig(name="resnet18"), in_channels=1, image_size=(32, 32))
    assert single.conv1.in_channels == 1
    multi = build_from_config(ModelConfig(name="resnet18", multiview="shared"), in_channels=2, image_size=(32, 32))
    assert isinstance(multi, MultiViewNet) and multi.shared
    vol = build_from_config(ModelConfig(name="resnet10", spatial_dims=3), in_channels=3, image_size=(16, 16, 16))
    assert not isinstance(vol, MultiViewNet) and vol.conv1.in_channels == 3
    vit = build_from_config(ModelConfig(name="simplevit"), in_channels=1, image_size=(32, 32))
    assert _forward(vit, torch.randn(2, 1, 32, 32)).shape == (2, 2)


def test_pretrained_missing_file_names_file_and_setting(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        build_model("resnet50", in_channels=1, pretrained=True)
    message = str(err.value)
    assert "resnet50-0676ba61.pth" in message
    assert str(tmp_path / "checkpoints") in message
    assert "models[].pretrained" in message
    assert "torchvision.models.resnet50(weights='IMAGENET1K_V1')" in message


def test_pretrained_loads_local_file_and_sums_rgb_kernel(monkeypatch, tmp_path):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None).state_dict()
    path = imagenet_weights_file("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(reference, path)
    model = build_model("resnet18", in_channels=1, pretrained=True)
    torch.testing.assert_close(model.conv1.weight, reference["conv1.weight"].sum(dim=1, keepdim=True))
    torch.testing.assert_close(model.layer4[1].conv2.weight, reference["layer4.1.conv2.weight"])
    assert model.fc.out_features == 2
    multi = build_model("resnet18", in_channels=2, pretrained=True, multiview="separate")
    torch.testing.assert_close(multi.backbones[1].layer1[0].conv1.weight, reference["layer1.0.conv1.weight"])


def test_densenet_old_keys_are_renamed():
    old = {"features.denseblock1.denselayer1.norm.1.weight": 1, "features.conv0.weight": 2,
           "features.denseblock2.denselayer3.conv.2.weight": 3}
    assert _fix_densenet_keys(old) == {"features.denseblock1.denselayer1.norm1.weight": 1,
                                       "features.conv0.weight": 2,
                                       "features.denseblock2.denselayer3.conv2.weight": 3}


def test_weights_path_medicalnet_style(tmp_path):
    source = build_model("resnet10", in_channels=1, spatial_dims=3)  # MedicalNet files are 1-channel
    state = {f"module.{k}": v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    state["module.conv_seg.0.weight"] = torch.zeros(3)
    path = tmp_path / "resnet_10_23dataset.pth"
    torch.save({"state_dict": state}, path)
    with pytest.warns(UserWarning, match=r"missing from the file: \['fc.weight', 'fc.bias'\].*conv_seg.0.weight"):
        model = build_model("resnet10", in_channels=3, spatial_dims=3, weights_path=path)
    torch.testing.assert_close(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    torch.testing.assert_close(model.conv1.weight, source.conv1.weight.repeat(1, 3, 1, 1, 1) / 3)


def test_resnet18_3d_shortcut_a_passes_the_gradient_and_keeps_monais_values():
    """MONAI's shortcut "A" concatenates ``out.data`` (no gradient through the identity at a downsampling block);
    medlib's ``ZeroPadShortcut`` gives the same outputs and state dict (MedicalNet files load) with the gradient."""
    from monai.networks.nets import resnet

    torch.manual_seed(0)
    ours = build_model("resnet18", in_channels=2, num_classes=2, spatial_dims=3)
    theirs = resnet.resnet18(spatial_dims=3, n_input_channels=2, num_classes=2, conv1_t_size=7, conv1_t_stride=2,
                             shortcut_type="A", bias_downsample=True)
    theirs.load_state_dict(ours.state_dict())  # strict: the same parameters and buffers
    x = torch.randn(2, 2, 21, 20, 19)
    assert torch.equal(_forward(ours, x), _forward(theirs, x))
    block = ours.layer2[0]
    assert isinstance(block.downsample, ZeroPadShortcut)
    inner = torch.randn(2, block.conv1.in_channels, 6, 5, 4, requires_grad=True)
    block.downsample(inner).sum().backward()
    # the identity path alone: each input voxel kept by the stride-2 sampling gets gradient 1, the others 0
    assert inner.grad[:, :, ::2, ::2, ::2].eq(1).all() and inner.grad.sum() == inner.grad[:, :, ::2, ::2, ::2].numel()


def test_weights_path_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.pth \(models\[\].weights_path\)"):
        build_model("resnet10", in_channels=1, spatial_dims=3, weights_path=tmp_path / "nope.pth")
